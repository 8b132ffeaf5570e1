"""Which requests a Notation verification sends, and in what order, against a REAL registry.

Backend: Debian's ``docker-registry`` (distribution 2.8: no referrers API) on 127.0.0.1, then the
same in a container (the ``backend`` fixture); in front of it the counting
proxy of ``tests/support/registry_proxy.py`` over HTTPS (test CA = the validator's ``cert``),
demanding a Bearer token. Requests are counted and ordered, never timed (the fewest
sequential round trips, docs/decisions/0018-performance-targets.md;
``bench/notation_roundtrips.py`` measures the latency).

Each request listed here depends on the answer to the one before (tag → digest → referrers →
signature manifest → envelope blob), except those asserted as a pair: the proxy holds each of
a pair until the other has arrived too, so a client sending them one after the other fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import image_manifest, sha256
from tests.support.fakes import FakeClock
from tests.support.notation_oci import (
    JWS,
    SignatureArtifact,
    Subject,
    push_signatures,
    referrers_tag,
    signature_artifact,
)
from tests.support.notation_signing import REAL_NOW, issue, make_ca, sign_jws, target
from tests.support.oci_push import Pusher
from tests.support.registry_proxy import Proxied, RegistryProxy
from tests.support.servers import RegistryServer
from tests.support.settings import validator_settings

pytestmark = pytest.mark.integration
CLOCK = FakeClock(REAL_NOW)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REPO = "rt/app"


@dataclass(frozen=True)
class Signed:
    subject: Subject
    artifact: SignatureArtifact
    envelope_digest: str
    root_pem: str


@pytest.fixture
async def signed(plain_registry: RegistryServer, session: aiohttp.ClientSession) -> Signed:
    push = Pusher(session, plain_registry.url)
    manifest, blobs = image_manifest("notation round trips")
    digest = await push.image(REPO, "1.0", manifest, blobs)
    subject = Subject(digest=digest, size=len(manifest), media_type=DOCKER_MANIFEST)
    root = make_ca("rt-root")
    leaf = issue(root, "rt-signer")
    envelope = sign_jws(leaf, target(subject.digest, subject.size, subject.media_type))
    artifact = signature_artifact(subject, envelope, JWS, leaf.chain)
    await push_signatures(push, REPO, subject, [artifact])
    return Signed(subject, artifact, sha256(envelope), root.pem())


def validator(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> NotationValidator:
    roots = [{"name": "default", "cert": signed.root_pem}]
    entry = {"name": "rt", "type": "notation", "cert": proxied.ca_pem, "trustRoots": roots}
    settings = validator_settings(entry)
    return NotationValidator(settings, AiohttpRegistryClient(HttpClient(session), CLOCK), CLOCK)


async def verify(v: NotationValidator, image: str) -> str | None:
    evidence = await v.validate(
        ImageReference.parse(image), RuleOptions(), Deadline.after(CLOCK, 10)
    )
    return evidence.digest


def paths(proxy: RegistryProxy) -> list[str]:
    """``GET /v2/...`` lines, the query string left out (the referrers artifactType filter)."""
    return [f"{method} {path.partition('?')[0]}" for method, path in proxy.requests]


def pair(*requests: str) -> frozenset[str]:
    return frozenset(r.removeprefix("GET ") for r in requests)


def expected(signed: Signed) -> dict[str, str]:
    digest = signed.subject.digest
    return {
        "tag": f"GET /v2/{REPO}/manifests/1.0",
        "image": f"GET /v2/{REPO}/manifests/{digest}",
        "referrers api": f"GET /v2/{REPO}/referrers/{digest}",
        "referrers tag": f"GET /v2/{REPO}/manifests/{referrers_tag(digest)}",
        "signature": f"GET /v2/{REPO}/manifests/{signed.artifact.digest}",
        "envelope": f"GET /v2/{REPO}/blobs/{signed.envelope_digest}",
    }


async def test_warm_verification_by_tag_is_four_requests_each_needing_the_one_before(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> None:
    v = validator(proxied, session, signed)
    image = f"{proxied.host}/{REPO}:1.0"
    assert await verify(v, image) == signed.subject.digest  # cold: token, registry learnt
    proxied.proxy.reset()
    assert await verify(v, image) == signed.subject.digest
    want = expected(signed)
    # No HEAD before the GET, no second GET of the image by digest, no referrers API probe
    # (remembered as absent), one signature manifest, one envelope blob.
    assert paths(proxied.proxy) == [
        want["tag"],
        want["referrers tag"],
        want["signature"],
        want["envelope"],
    ]
    assert proxied.proxy.token_requests == []


async def test_cold_verification_by_tag_asks_the_referrers_api_and_tag_at_once(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> None:
    want = expected(signed)
    proxied.proxy.together = pair(want["referrers api"], want["referrers tag"])
    v = validator(proxied, session, signed)
    assert await verify(v, f"{proxied.host}/{REPO}:1.0") == signed.subject.digest
    sent = paths(proxied.proxy)
    assert sent[:2] == [want["tag"], want["tag"]]  # 401 Bearer challenge, then with the token
    assert sorted(sent[2:4]) == sorted([want["referrers api"], want["referrers tag"]])
    assert sent[4:] == [want["signature"], want["envelope"]]
    assert len(proxied.proxy.token_requests) == 1


async def test_warm_verification_by_digest_fetches_manifest_and_referrers_together(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> None:
    v = validator(proxied, session, signed)
    image = f"{proxied.host}/{REPO}@{signed.subject.digest}"
    assert await verify(v, image) == signed.subject.digest
    proxied.proxy.reset()
    want = expected(signed)
    proxied.proxy.together = pair(want["image"], want["referrers tag"])
    assert await verify(v, image) == signed.subject.digest
    sent = paths(proxied.proxy)
    assert sorted(sent[:2]) == sorted([want["image"], want["referrers tag"]])
    assert sent[2:] == [want["signature"], want["envelope"]]
