"""Push images and cosign signature layouts to a real registry through the distribution API."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping

import aiohttp

from tests.support.cosign import Layout, sha256


class Pusher:
    """Monolithic blob uploads and manifest PUTs, optionally with Basic auth and a test CA."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        ca_pem: str | None = None,
        basic: tuple[str, str] | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cadata=ca_pem) if ca_pem else False
        )
        self._headers: dict[str, str] = {}
        if basic:
            token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"

    async def blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        url = f"{self._base}/v2/{repo}/blobs/uploads/"
        async with self._session.post(url, headers=self._headers, ssl=self._ssl) as resp:
            assert resp.status == 202, await resp.text()
            location = resp.headers["Location"]
        if location.startswith("/"):
            location = self._base + location
        sep = "&" if "?" in location else "?"
        async with self._session.put(
            f"{location}{sep}digest={digest}",
            data=data,
            headers={**self._headers, "Content-Type": "application/octet-stream"},
            ssl=self._ssl,
        ) as resp:
            assert resp.status == 201, await resp.text()
        return digest

    async def manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        async with self._session.put(
            f"{self._base}/v2/{repo}/manifests/{reference}",
            data=body,
            headers={**self._headers, "Content-Type": media_type},
            ssl=self._ssl,
        ) as resp:
            assert resp.status == 201, await resp.text()
        return sha256(body)

    async def image(self, repo: str, tag: str, manifest: bytes, blobs: Mapping[str, bytes]) -> str:
        for data in blobs.values():
            await self.blob(repo, data)
        return await self.manifest(
            repo, tag, manifest, "application/vnd.docker.distribution.manifest.v2+json"
        )

    async def signatures(self, repo: str, digest: str, layout: Layout) -> None:
        for data in layout.blobs.values():
            await self.blob(repo, data)
        tag = digest.replace(":", "-") + ".sig"
        await self.manifest(
            repo, tag, layout.manifest, "application/vnd.oci.image.manifest.v1+json"
        )
