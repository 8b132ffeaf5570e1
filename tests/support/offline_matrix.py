"""The signed world the three-way matrix runs in (direct, through a mirror, from a bundle with
every upstream stopped): a real registry and a real Notary stack on 127.0.0.1, images signed
with cosign keys, cosign keyless (a test Fulcio, Rekor entries in the signature's bundle),
Notation (JWS) and Notary v1 (the real ``notary`` client, with a delegation), and one
configuration whose policy sends each repository to its validator. The servers run on either
backend (tests/support/containers.py).

:func:`signed_world` yields it while the servers run; the caller stops them by leaving the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.clock import FixedClock
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import load_settings
from tests.support.containers import Backend
from tests.support.cosign import FakeRekor, Signer, image_manifest, payload, sign_layout
from tests.support.fulcio import FakeFulcio
from tests.support.notary_stack import NotaryCli, NotaryStack, notary_stack
from tests.support.notation_oci import JWS, Subject, push_signatures, signature_artifact
from tests.support.notation_signing import REAL_NOW, issue, make_ca, sign_jws, target
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer, registry_server

#: The wall clock every column verifies at (certificates are issued around it).
NOW = REAL_NOW + dt.timedelta(seconds=30)
ISSUER = "https://issuer.example"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass(frozen=True)
class Case:
    """One image of the matrix and the verdict it must get."""

    name: str
    image: str  # repository:tag under the world's registry
    allowed: bool
    category: str | None = None


CASES = (
    Case("cosign key: signed", "cosign/signed:1.0", True),
    Case("cosign key: unsigned", "cosign/unsigned:1.0", False, "no_trust_data"),
    Case("cosign key: another key", "cosign/stranger:1.0", False, "signature_invalid"),
    Case("cosign key: missing tag", "cosign/signed:nope", False, "image_not_found"),
    Case("cosign keyless: signed, Rekor bundle", "keyless/signed:1.0", True),
    Case("cosign keyless: another identity", "keyless/bob:1.0", False, "identity_mismatch"),
    Case("notation: signed", "notation/signed:1.0", True),
    Case("notation: untrusted signer", "notation/stranger:1.0", False, "signature_invalid"),
    Case("notary v1: signed", "notary/app:1.0", True),
    Case("notary v1: unsigned tag", "notary/app:2.0", False, "reference_not_found"),
    Case("notary v1: required delegation", "notary/delegated:1.0", True),
)


@dataclass
class World:
    """Everything a column needs: where the servers were, the configuration, the digests."""

    registry: RegistryServer
    notary: NotaryStack
    config: Path
    digests: dict[str, str] = field(default_factory=dict)
    #: when each Notation signature's chain stops being valid (its earliest ``notAfter``)
    notation_ends: list[dt.datetime] = field(default_factory=list)
    #: the key the ``cosign-key`` validator trusts (for images a test adds)
    signer: Signer = field(default_factory=lambda: Signer(ec.generate_private_key(ec.SECP256R1())))

    def image(self, case: Case) -> str:
        return f"{self.registry.host}/{case.image}"

    def images(self) -> list[str]:
        return [self.image(c) for c in CASES]


@contextlib.contextmanager
def signed_world(workdir: Path, backend: Backend | None = None) -> Iterator[World]:
    """Start the servers on ``backend``, sign everything, write the configuration; stop when the
    block ends."""
    with (
        registry_server(workdir / "registry", backend=backend) as registry,
        notary_stack(workdir / "notary", backend) as notary,
    ):
        world = World(registry=registry, notary=notary, config=workdir / "config.yaml")
        material = asyncio.run(_sign_registry_content(world))
        notary_root = _sign_notary_content(world, workdir)
        world.config.write_text(yaml.safe_dump(_configuration(world, material, notary_root)))
        yield world


@dataclass(frozen=True)
class _Material:
    cosign_key: str
    fulcio_ca: str
    rekor_key: str
    notation_root: str


async def _sign_registry_content(world: World) -> _Material:
    host = world.registry.host
    trusted, stranger = world.signer, Signer(ec.generate_private_key(ec.SECP256R1()))
    fulcio, rekor = FakeFulcio(REAL_NOW), FakeRekor()
    root, other_ca = make_ca("matrix-root"), make_ca("matrix-stranger")
    async with aiohttp.ClientSession() as session:
        push = Pusher(session, world.registry.url)

        async def image(repo: str, tag: str = "1.0") -> str:
            manifest, blobs = image_manifest(f"{repo}:{tag}")
            digest = await push.image(repo, tag, manifest, blobs)
            world.digests[f"{repo}:{tag}"] = digest
            return digest

        async def cosign(repo: str, signer: Signer) -> None:
            digest = await image(repo)
            body = payload(digest, f"{host}/{repo}")
            await push.signatures(repo, digest, sign_layout([(body, signer.sign(body), {})]))

        async def keyless(repo: str, email: str) -> None:
            digest = await image(repo)
            issued = fulcio.issue(ISSUER, email)
            body = payload(digest, f"{host}/{repo}")
            signature = Signer(issued.key).sign(body)
            entry = rekor.entry(body, signature, issued.cert_pem, int(REAL_NOW.timestamp()))
            annotations = {
                "dev.sigstore.cosign/certificate": issued.cert_pem,
                "dev.sigstore.cosign/bundle": FakeRekor.bundle(entry),
            }
            await push.signatures(repo, digest, sign_layout([(body, signature, annotations)]))

        async def notation(repo: str, signer_ca: Any, name: str) -> None:
            manifest, blobs = image_manifest(f"{repo}:1.0")
            digest = await push.image(repo, "1.0", manifest, blobs)
            world.digests[f"{repo}:1.0"] = digest
            subject = Subject(digest=digest, size=len(manifest), media_type=DOCKER)
            leaf = issue(signer_ca, name)
            world.notation_ends.append(min(c.not_valid_after_utc for c in leaf.chain))
            envelope = sign_jws(leaf, target(digest, len(manifest), DOCKER))
            artifact = signature_artifact(subject, envelope, JWS, leaf.chain)
            await push_signatures(push, repo, subject, [artifact])

        await cosign("cosign/signed", trusted)
        await image("cosign/unsigned")
        await cosign("cosign/stranger", stranger)
        await keyless("keyless/signed", "alice@example.com")
        await keyless("keyless/bob", "bob@example.com")
        await notation("notation/signed", root, "matrix-signer")
        await notation("notation/stranger", other_ca, "matrix-stranger")
    return _Material(
        cosign_key=trusted.public_pem,
        fulcio_ca=fulcio.ca.public_bytes(serialization.Encoding.PEM).decode(),
        rekor_key=rekor.public_pem,
        notation_root=root.pem(),
    )


def _sign_notary_content(world: World, workdir: Path) -> str:
    """Trust data for notary/app (1.0 signed) and notary/delegated (1.0 signed by the
    ``targets/releases`` delegation); returns the pinned root key."""
    cli = NotaryCli(world.notary, workdir / "notary-trust")
    host = world.registry.host
    app, delegated = f"{host}/notary/app", f"{host}/notary/delegated"
    app_digest = _fake_digest("notary app 1.0")
    delegated_digest = _fake_digest("notary delegated 1.0")
    world.digests["notary/app:1.0"] = app_digest
    world.digests["notary/delegated:1.0"] = delegated_digest
    cli.init(app)
    cli.addhash(app, "1.0", app_digest)
    cli.init(delegated)
    cli.add_delegation(delegated, "targets/releases", workdir / "delegation-keys")
    cli.addhash(delegated, "1.0", delegated_digest, "targets/releases")
    root = cli.root_public_pem(app)
    if root != cli.root_public_pem(delegated):
        raise AssertionError("the notary client gave the two repositories different root keys")
    return root


def _fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _configuration(world: World, material: _Material, notary_root: str) -> dict[str, Any]:
    host = world.registry.host
    return {
        "validators": [
            {"name": "deny", "type": "static", "approve": False},
            {
                "name": "cosign-key",
                "type": "cosign",
                "trustRoots": [{"name": "default", "key": material.cosign_key}],
            },
            {
                "name": "cosign-keyless",
                "type": "cosign",
                "host": {
                    "rekorPubkey": material.rekor_key,
                    "fulcioCert": material.fulcio_ca,
                    "ctLogPubkey": material.rekor_key,
                },
                "trustRoots": [
                    {
                        "name": "default",
                        "keyless": {"issuer": ISSUER, "subject": "alice@example.com"},
                    }
                ],
            },
            {
                "name": "notation",
                "type": "notation",
                "trustRoots": [{"name": "default", "cert": material.notation_root}],
            },
            {
                "name": "notary",
                "type": "notaryv1",
                "host": world.notary.url,
                "cert": world.notary.ca_pem,
                "trustRoots": [{"name": "default", "key": notary_root}],
            },
        ],
        "policy": [
            {"pattern": "*:*", "validator": "deny"},
            {
                "pattern": f"{host}/cosign/*:*",
                "validator": "cosign-key",
                "with": {"verifyInTransparencyLog": False},
            },
            {
                "pattern": f"{host}/keyless/*:*",
                "validator": "cosign-keyless",
                "with": {"verifySCT": False},
            },
            {"pattern": f"{host}/notation/*:*", "validator": "notation"},
            {"pattern": f"{host}/notary/*:*", "validator": "notary"},
            {
                "pattern": f"{host}/notary/delegated:*",
                "validator": "notary",
                "with": {"delegations": ["releases"]},
            },
        ],
        "features": {"cache": {"expirySeconds": 0}},
    }


def verdicts(config: Path, images: Sequence[str], offline: Path | None = None) -> list[Any]:
    """Each image's verdict as ``verify`` gives it (in process, at :data:`NOW`)."""
    settings = load_settings(config, secrets_dir=None, offline=offline)
    container = build_container(settings, FixedClock(NOW))

    async def run() -> list[Any]:
        async with running(container):
            verify = container.verify_image()
            deadline = Deadline.after(container.clock(), 25)
            return [await verify.execute(VerifyImageCommand(image=i), deadline) for i in images]

    return asyncio.run(run())


def outcome(allowed: bool, digest: str | None, category: str | None) -> tuple[Any, ...]:
    """What must agree between columns: admitted or not, the digest pinned, the category."""
    return (allowed, digest, None if allowed else category)
