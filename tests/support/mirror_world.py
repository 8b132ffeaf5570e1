"""One set of signed images, published once and read three ways: from the registry they were
published to, through a pull-through cache of it, and from a second registry filled by
``skopeo sync`` — with the cases every way must decide alike
(docs/decisions/0050-registry-mirrors.md).

* ``origin``: Debian's ``docker-registry`` holding the content. Images are *named* after
  ``front``, a counting proxy in front of it (``tests/support/registry_proxy.py``), so a test
  sees every request the verifier sends to the source — and that a mirror column sends none.
* ``cache``: ``docker-registry`` as a pull-through cache (``proxy.remoteurl``) of the origin,
  over plain HTTP.
* ``synced``: ``docker-registry`` over HTTPS (its own CA) with htpasswd, filled by
  ``skopeo sync --all --preserve-digests`` under the prefix ``mirror/``. Debian's skopeo (1.9)
  cannot copy a referrers-tag index unchanged (with ``--preserve-digests`` it refuses; without,
  it drops every descriptor's ``artifactType``), so those tags are copied verbatim, as
  ``crane copy`` or ``oras copy`` would.
* the content: cosign with a key (current and older release, a wrong key, unsigned), keyless
  cosign under a private Sigstore (its ``trusted_root.json``), Notation (referrers tag schema),
  Notary v1 (a real notary-server, when its binaries are there), and cosign signatures kept in
  a separate signature repository.

:meth:`MirrorWorld.config` writes the application config a user would, with or without
``mirrors``; :func:`verdicts` runs it through the composed application (loader, container,
VerifyImage), or from an offline bundle (tests/integration/test_three_ways.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.clock import FixedClock
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import build_settings
from connaisseur.domain.cosign_layout import BUNDLE_ANNOTATION
from tests.support.containers import Backend
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.notary_stack import NotaryCli, NotaryStack, notary_stack
from tests.support.notation_oci import (
    JWS,
    OCI_INDEX,
    OCI_MANIFEST,
    Subject,
    push_signatures,
    referrers_tag,
    signature_artifact,
)
from tests.support.notation_signing import Signer as NotationSigner
from tests.support.notation_signing import issue, make_ca, sign_jws, target
from tests.support.oci_push import Pusher
from tests.support.private_sigstore import PrivateSigstore
from tests.support.registry_proxy import RegistryProxy
from tests.support.servers import RegistryServer, registry_server
from tests.support.threaded_server import serve_in_thread
from tests.support.tls import make_tls
from tests.support.tools import find_tool

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SYNCED_PREFIX = "mirror"
SYNC_USER, SYNC_PASSWORD = "mirror", "mirr0r-pw"
KEYLESS_EMAIL = "release@internal"
SIGNATURE_REPOSITORY = "signatures/team"
#: repositories under ``team/`` on the origin
REPOSITORIES = (
    "cosign-key",
    "cosign-other",
    "cosign-wrong-key",
    "unsigned",
    "cosign-keyless",
    "notation",
    "notary",
    "signed-elsewhere",
)


@dataclass(frozen=True)
class Case:
    """One image and what every way of reading it must decide: the trusted ``digest`` or the
    denial ``category``."""

    name: str
    image: str
    validator: str
    digest: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What the application decided for an image."""

    allowed: bool
    digest: str | None
    category: str | None
    message: str | None = None

    def matches(self, case: Case) -> bool:
        if case.digest is not None:
            return self.allowed and self.digest == case.digest
        return not self.allowed and self.category == case.category


@dataclass
class MirrorWorld:
    """The registries, the signing material and the cases (see the module docstring)."""

    origin: RegistryServer
    front: str
    front_proxy: RegistryProxy
    cache: RegistryServer
    synced: RegistryServer
    notary: NotaryStack | None
    cosign_signer: Signer
    sigstore: PrivateSigstore
    notation_root: NotationSigner
    now: datetime
    digests: dict[str, str] = field(default_factory=dict)
    notary_root_pem: str = ""

    @property
    def cases(self) -> tuple[Case, ...]:
        d = self.digests
        pinned = self.image("cosign-key", d["cosign-key"])
        missing = self.image("cosign-key", tag="nope")
        table = [  # name, image, validator, trusted digest or denial category
            ("cosign key", self.image("cosign-key"), "cosign-key", d["cosign-key"]),
            ("cosign pinned", pinned, "cosign-key", d["cosign-key"]),
            ("cosign wrong key", self.image("cosign-wrong-key"), "cosign-key", "signature_invalid"),
            ("cosign unsigned", self.image("unsigned"), "cosign-key", "no_trust_data"),
            ("missing image", missing, "cosign-key", "image_not_found"),
            ("cosign keyless", self.image("cosign-keyless"), "cosign-keyless", d["cosign-keyless"]),
            ("notation", self.image("notation"), "notation", d["notation"]),
            ("notation unsigned", self.image("unsigned"), "notation", "no_trust_data"),
            (
                "signature repository",
                self.image("signed-elsewhere"),
                "cosign-elsewhere",
                d["signed-elsewhere"],
            ),
        ]
        if self.notary is not None:
            table.append(("notary v1", self.image("notary"), "notary", d["notary"]))
        return tuple(
            Case(
                name,
                image,
                validator,
                digest=want if want.startswith("sha256:") else None,
                category=None if want.startswith("sha256:") else want,
            )
            for name, image, validator, want in table
        )

    def image(self, repository: str, digest: str = "", tag: str = "1.0") -> str:
        """The name of ``team/<repository>`` (by digest when given)."""
        base = f"{self.front}/team/{repository}"
        return f"{base}@{digest}" if digest else f"{base}:{tag}"

    def config(self, mirrors: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The application config of every case's validator; ``mirrors`` as a user writes it."""
        validators = [
            {"name": "deny", "type": "static", "approve": False},
            self._cosign("cosign-key"),
            self._cosign(
                "cosign-elsewhere", signatureRepository=f"{self.front}/{SIGNATURE_REPOSITORY}"
            ),
            {
                "name": "cosign-keyless",
                "type": "cosign",
                "host": {"trustedRoot": self.sigstore.trusted_root()},
                "trustRoots": [
                    {
                        "name": "default",
                        "keyless": {"issuer": "https://dex.internal", "subject": KEYLESS_EMAIL},
                    }
                ],
            },
            {
                "name": "notation",
                "type": "notation",
                "trustRoots": [{"name": "default", "cert": self.notation_root.pem()}],
            },
        ]
        if self.notary is not None:
            validators.append(
                {
                    "name": "notary",
                    "type": "notaryv1",
                    "host": self.notary.url,
                    "cert": self.notary.ca_pem,
                    "trustRoots": [{"name": "default", "key": self.notary_root_pem}],
                }
            )
        return {
            "validators": validators,
            "policy": [{"pattern": "*:*", "validator": "deny"}],
            "features": {"cache": {"expirySeconds": 0}},
            **({"mirrors": list(mirrors)} if mirrors else {}),
        }

    def _cosign(self, name: str, **extra: Any) -> dict[str, Any]:
        roots = [{"name": "default", "key": self.cosign_signer.public_pem}]
        host = {"trustedRoot": self.sigstore.trusted_root()}  # its Rekor vouches for the bundles
        return {"name": name, "type": "cosign", "host": host, "trustRoots": roots, **extra}

    def through_cache(self, *, fallback: bool = False) -> list[dict[str, Any]]:
        """``mirrors``: the origin read through the pull-through cache."""
        endpoint = {"url": f"http://{self.cache.host}"}
        return [{"source": self.front, "endpoints": [endpoint], "fallbackToSource": fallback}]

    def synced_endpoint(self, **extra: Any) -> dict[str, Any]:
        """The synced registry as a ``mirrors`` endpoint: its path, CA and credentials."""
        return {
            "url": f"https://{self.synced.host}/{SYNCED_PREFIX}",
            "cert": self.synced.ca_pem,
            "auth": {"username": SYNC_USER, "password": SYNC_PASSWORD},
            **extra,
        }

    def through_synced(self, *, fallback: bool = False) -> list[dict[str, Any]]:
        """``mirrors``: the origin read from the synced registry."""
        endpoint = self.synced_endpoint()
        return [{"source": self.front, "endpoints": [endpoint], "fallbackToSource": fallback}]

    def rule(self, case: Case, **options: Any) -> dict[str, Any]:
        """The policy rule that sends ``case``'s image to its validator."""
        pattern = case.image.split("@")[0].rsplit(":", 1)[0] + "*"
        with_ = {"verifySCT": False, **options} if case.validator == "cosign-keyless" else options
        return {
            "pattern": pattern,
            "validator": case.validator,
            **({"with": with_} if with_ else {}),
        }


def with_rules(
    config: Mapping[str, Any], images: Sequence[tuple[str, Mapping[str, Any]]]
) -> dict[str, Any]:
    """``config`` with the rule given for each image in front of its own."""
    document = dict(config)
    document["policy"] = [rule for _, rule in images] + list(config["policy"])
    return document


async def verdicts(
    config: Mapping[str, Any],
    images: Sequence[tuple[str, Mapping[str, Any]]],
    now: datetime,
    offline: Path | None = None,
) -> list[Outcome]:
    """Each image decided by the application composed from ``config`` with the rule given for
    it (:func:`with_rules`), at the wall-clock time ``now``; from the bundle ``offline`` when
    given (``--offline``)."""
    settings = build_settings(with_rules(config, images), secrets_dir=None, env={}, offline=offline)
    container = build_container(settings, FixedClock(now))
    async with running(container):
        verify = container.verify_image()
        deadline = Deadline.after(container.clock(), 20)
        found = await asyncio.gather(
            *(verify.execute(VerifyImageCommand(image=image), deadline) for image, _ in images)
        )
    return [
        Outcome(
            allowed=v.allowed,
            digest=v.digest,
            category=None if v.allowed else str(v.category),
            message=v.message,
        )
        for v in found
    ]


@contextlib.contextmanager
def mirror_world(workdir: Path, backend: Backend | None = None) -> Iterator[MirrorWorld]:
    """Start the registries (and Notary, when available), publish and sync the content."""
    htpasswd = workdir / "htpasswd"
    workdir.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(SYNC_PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{SYNC_USER}:{hashed}\n")
    tls = make_tls(workdir / "tls")
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(registry_server(workdir / "origin", backend=backend))
        cache = stack.enter_context(
            registry_server(workdir / "cache", backend=backend, proxy_remote=origin.url)
        )
        synced = stack.enter_context(
            registry_server(workdir / "synced", tls=tls, htpasswd=htpasswd, backend=backend)
        )
        proxy = RegistryProxy(origin.url)
        port = stack.enter_context(serve_in_thread(proxy.app))
        notary = None
        if find_tool("notary") is not None and find_tool("notary-server") is not None:
            notary = stack.enter_context(notary_stack(workdir / "notary", backend=backend))
        world = MirrorWorld(
            origin=origin,
            front=f"127.0.0.1:{port}",
            front_proxy=proxy,
            cache=cache,
            synced=synced,
            notary=notary,
            cosign_signer=Signer(ec.generate_private_key(ec.SECP256R1())),
            sigstore=PrivateSigstore(datetime.now(UTC).replace(microsecond=0)),
            notation_root=make_ca("notation root"),
            now=datetime.now(UTC).replace(microsecond=0),
        )
        asyncio.run(_publish(world))
        if notary is not None:
            _publish_notary(world, NotaryCli(notary, workdir / "notary-trust"))
        _sync(world, workdir / "sync-certs", tls.ca_pem)
        asyncio.run(_copy_referrers_tags(world))
        proxy.reset()
        yield world


async def _publish(world: MirrorWorld) -> None:
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(session, world.origin.url)
        other = Signer(ec.generate_private_key(ec.SECP256R1()))
        for repository in REPOSITORIES:
            world.digests[repository] = await _push_image(pusher, repository, "1.0", repository)
        world.digests["cosign-key:0.9"] = await _push_image(pusher, "cosign-key", "0.9", "old")
        signers = {"cosign-key": world.cosign_signer, "cosign-key:0.9": world.cosign_signer}
        signers |= {"cosign-other": world.cosign_signer, "cosign-wrong-key": other}
        for key, signer in signers.items():
            repository = key.split(":")[0]
            await _cosign_sign(pusher, world, repository, world.digests[key], signer)
        digest = world.digests["cosign-keyless"]
        signed = world.sigstore.sign(digest, f"{world.front}/team/cosign-keyless", KEYLESS_EMAIL)
        await pusher.signatures("team/cosign-keyless", digest, sign_layout([signed]))
        await _notation_sign(pusher, world)
        digest = world.digests["signed-elsewhere"]
        layout = sign_layout([_logged(world, digest, "signed-elsewhere", world.cosign_signer)])
        await pusher.signatures(SIGNATURE_REPOSITORY, digest, layout)


async def _push_image(pusher: Pusher, repository: str, tag: str, seed: str) -> str:
    manifest, blobs = image_manifest(f"{repository}:{seed}")
    return await pusher.image(f"team/{repository}", tag, manifest, blobs)


async def _cosign_sign(
    pusher: Pusher, world: MirrorWorld, repository: str, digest: str, signer: Signer
) -> None:
    await pusher.signatures(
        f"team/{repository}", digest, sign_layout([_logged(world, digest, repository, signer)])
    )


def _logged(
    world: MirrorWorld, digest: str, repository: str, signer: Signer
) -> tuple[bytes, bytes, dict[str, str]]:
    """A key signature of ``team/<repository>`` with its Rekor bundle (the private log)."""
    body = payload(digest, f"{world.front}/team/{repository}")
    signature = signer.sign(body)
    rekor = world.sigstore.rekor
    entry = rekor.entry(body, signature, signer.public_pem, int(world.now.timestamp()))
    return body, signature, {BUNDLE_ANNOTATION: rekor.bundle(entry)}


async def _notation_sign(pusher: Pusher, world: MirrorWorld) -> None:
    digest = world.digests["notation"]
    manifest, _ = image_manifest("notation:notation")
    leaf = issue(world.notation_root, "notation signer")
    subject = Subject(digest=digest, size=len(manifest), media_type=DOCKER_MANIFEST)
    envelope = sign_jws(leaf, target(digest, len(manifest), DOCKER_MANIFEST))
    artifact = signature_artifact(subject, envelope, JWS, leaf.chain)
    await push_signatures(pusher, "team/notation", subject, [artifact])


def _publish_notary(world: MirrorWorld, cli: NotaryCli) -> None:
    gun = f"{world.front}/team/notary"
    cli.init(gun)
    cli.addhash(gun, "1.0", world.digests["notary"])
    world.notary_root_pem = cli.root_public_pem(gun)


def _sync(world: MirrorWorld, cert_dir: Path, ca_pem: str | None) -> None:
    """``skopeo sync`` every repository into the synced registry, digests preserved; tags it
    cannot copy unchanged (referrers-tag indexes) are left to :func:`_copy_referrers_tags`."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / "ca.crt").write_text(ca_pem or "")
    sources = [f"team/{r}" for r in REPOSITORIES] + [SIGNATURE_REPOSITORY]
    for source in sources:
        destination = f"{world.synced.host}/{SYNCED_PREFIX}/{source.rsplit('/', 1)[0]}"
        subprocess.run(
            [
                *("skopeo", "sync", "--all", "--preserve-digests", "--keep-going"),
                *("--src", "docker", "--dest", "docker", "--src-tls-verify=false"),
                *("--dest-cert-dir", str(cert_dir)),
                *("--dest-creds", f"{SYNC_USER}:{SYNC_PASSWORD}"),
                f"{world.origin.host}/{source}",
                destination,
            ],
            check=False,  # --keep-going: exit 1 for the tags it could not copy
            capture_output=True,
            timeout=120,
        )


async def _copy_referrers_tags(world: MirrorWorld) -> None:
    """Copy ``sha256-<hex>`` referrers-tag indexes and what they list, byte for byte."""
    repository = "team/notation"
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(
            session, world.synced.url, ca_pem=world.synced.ca_pem, basic=(SYNC_USER, SYNC_PASSWORD)
        )
        tag = referrers_tag(world.digests["notation"])
        index = await _get(
            session, f"{world.origin.url}/v2/{repository}/manifests/{tag}", OCI_INDEX
        )
        for descriptor in json.loads(index)["manifests"]:
            url = f"{world.origin.url}/v2/{repository}/manifests/{descriptor['digest']}"
            manifest = await _get(session, url, OCI_MANIFEST)
            parsed = json.loads(manifest)
            for blob in [parsed["config"], *parsed["layers"]]:
                data = await _get(
                    session, f"{world.origin.url}/v2/{repository}/blobs/{blob['digest']}", "*/*"
                )
                await pusher.blob(f"{SYNCED_PREFIX}/{repository}", data)
            await pusher.manifest(
                f"{SYNCED_PREFIX}/{repository}", descriptor["digest"], manifest, OCI_MANIFEST
            )
        await pusher.manifest(f"{SYNCED_PREFIX}/{repository}", tag, index, OCI_INDEX)


async def _get(session: aiohttp.ClientSession, url: str, accept: str) -> bytes:
    async with session.get(url, headers={"Accept": accept}) as resp:
        assert resp.status == 200, f"{url}: {resp.status}"
        return await resp.read()
