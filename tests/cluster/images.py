"""Images in the session's registry: pushed, signed with the session's cosign key, unsigned.

Everything goes through the distribution API of a real registry; signatures are cosign's
``sha256-<hex>.sig`` layout (``tests/support/cosign.py``).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import aiohttp

from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer

#: Images every test may use (repository:tag under ``<registry>/team/``).
SIGNED, SIGNED_TOO, UNSIGNED = "app:signed", "app:v2", "app:unsigned"


@dataclass
class Images:
    registry: RegistryServer
    signer: Signer
    digests: dict[str, str] = field(default_factory=dict)  # reference → manifest digest

    @property
    def public_pem(self) -> str:
        return self.signer.public_pem

    def ref(self, name: str) -> str:
        """``<registry>/team/<name>`` as a workload writes it."""
        return f"{self.registry.host}/team/{name}"

    def pinned(self, name: str) -> str:
        """The reference the webhook pins ``name`` to (tag kept, digest added)."""
        return f"{self.ref(name)}@{self.digests[self.ref(name)]}"

    def push(self, name: str, *, signed: bool) -> str:
        """Push a new image ``team/<repo>:<tag>`` (signed or not); returns its reference."""
        asyncio.run(self._push(name, signed=signed))
        return self.ref(name)

    def remove_signature(self, name: str) -> None:
        """Delete the image's signature manifest: verification now finds no trust data."""
        asyncio.run(self._unsign(name))

    async def _push(self, name: str, *, signed: bool) -> None:
        repo, tag = f"team/{name}".split(":")
        async with aiohttp.ClientSession() as session:
            push = Pusher(session, self.registry.url, ca_pem=self.registry.ca_pem)
            manifest, blobs = image_manifest(f"cluster {name}")
            digest = await push.image(repo, tag, manifest, blobs)
            self.digests[self.ref(name)] = digest
            if signed:
                body = payload(digest, f"{self.registry.host}/{repo}")
                layout = sign_layout([(body, self.signer.sign(body), {})])
                await push.signatures(repo, digest, layout)

    async def _unsign(self, name: str) -> None:
        repo = f"team/{name}".split(":")[0]
        tag = self.digests[self.ref(name)].replace(":", "-") + ".sig"
        base = f"{self.registry.url}/v2/{repo}/manifests"
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        context = ssl.create_default_context(cadata=self.registry.ca_pem)
        async with aiohttp.ClientSession() as session:
            async with session.head(f"{base}/{tag}", headers=accept, ssl=context) as resp:
                assert resp.status == 200, resp.status
                digest = resp.headers["Docker-Content-Digest"]
            async with session.delete(f"{base}/{digest}", ssl=context) as resp:
                assert resp.status == 202, await resp.text()


def publish_images(registry: RegistryServer, signer: Signer) -> Images:
    images = Images(registry, signer)
    for name, signed in ((SIGNED, True), (SIGNED_TOO, True), (UNSIGNED, False)):
        images.push(name, signed=signed)
    return images
