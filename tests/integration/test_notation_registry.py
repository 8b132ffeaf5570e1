"""The Notation validator with the real registry adapter against a REAL registry over HTTPS.

Backend: Debian's ``docker-registry`` (CNCF distribution 2.8) on 127.0.0.1 with a free port,
TLS from a per-module test CA (given to the validator as its ``cert``, the only roots) and
htpasswd Basic auth — once as Debian's binary and once in a container (``backend`` fixture)
(the fixture prints which backend ran). Distribution 2.8 has no referrers API: the tests check
that it answers 404 there and that signatures are found through the referrers tag schema
(``sha256-<hex>`` holding an OCI index), which the tests push themselves together with the
image and the signature manifests (JWS and COSE envelopes signed with per-session PKI).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.containers import Backend
from tests.support.cosign import image_manifest
from tests.support.fakes import FakeClock
from tests.support.notation_oci import (
    COSE,
    JWS,
    Subject,
    push_signatures,
    signature_artifact,
)
from tests.support.notation_signing import (
    DAY,
    REAL_NOW,
    Signer,
    issue,
    make_ca,
    sign_cose,
    sign_jws,
    target,
)
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer, secure_registry_server
from tests.support.settings import validator_settings

pytestmark = pytest.mark.integration
CLOCK = FakeClock(REAL_NOW)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
USER, PASSWORD = "notation", "n0tary-pw"


@dataclass(frozen=True)
class Pki:
    root: Signer  # the trust root "default"
    leaf: Signer  # code signing certificate issued by root
    expired: Signer  # issued by root, expired before REAL_NOW
    stranger: Signer  # issued by a CA that is no trust root


@pytest.fixture(scope="module")
def pki() -> Pki:
    root, other = make_ca("integ-root"), make_ca("integ-stranger-ca")
    return Pki(
        root=root,
        leaf=issue(root, "integ-signer"),
        expired=issue(root, "integ-expired", start=REAL_NOW - 20 * DAY, end=REAL_NOW - 2 * DAY),
        stranger=issue(other, "integ-stranger"),
    )


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, backend: Backend
) -> Iterator[RegistryServer]:
    work = tmp_path_factory.mktemp("notation-registry")
    with secure_registry_server(work, USER, PASSWORD, backend) as server:
        yield server


def pusher(registry: RegistryServer, session: aiohttp.ClientSession) -> Pusher:
    return Pusher(session, registry.url, ca_pem=registry.ca_pem, basic=(USER, PASSWORD))


def validator(
    registry: RegistryServer, session: aiohttp.ClientSession, pki: Pki
) -> NotationValidator:
    settings = validator_settings(
        {
            "name": "notation",
            "type": "notation",
            "cert": registry.ca_pem,
            "auth": {"username": USER, "password": PASSWORD, "registry": registry.host},
            "trustRoots": [{"name": "default", "cert": pki.root.pem()}],
        }
    )
    return NotationValidator(settings, AiohttpRegistryClient(HttpClient(session), CLOCK), CLOCK)


async def push_image(push: Pusher, repo: str, tag: str) -> Subject:
    manifest, blobs = image_manifest(f"notation {repo}:{tag}")
    digest = await push.image(repo, tag, manifest, blobs)
    return Subject(digest=digest, size=len(manifest), media_type=DOCKER_MANIFEST)


def jws_for(subject: Subject, signer: Signer, signing_time: dt.datetime = REAL_NOW) -> bytes:
    payload = target(subject.digest, subject.size, subject.media_type)
    return sign_jws(signer, payload, signing_time=signing_time)


def cose_for(subject: Subject, signer: Signer) -> bytes:
    return sign_cose(signer, target(subject.digest, subject.size, subject.media_type))


async def attach(
    push: Pusher,
    repo: str,
    subject: Subject,
    envelope: bytes,
    by: Signer,
    envelope_type: str = JWS,
    *,
    oci11: bool = True,
) -> None:
    """Push ``envelope`` (signed by ``by``) as the one signature of ``subject``."""
    artifact = signature_artifact(subject, envelope, envelope_type, by.chain, oci11=oci11)
    await push_signatures(push, repo, subject, [artifact])


async def validate(v: NotationValidator, image: str, **options: str) -> str | None:
    evidence = await v.validate(
        ImageReference.parse(image),
        RuleOptions(**options),  # type: ignore[arg-type]
        Deadline.after(CLOCK, 10),
    )
    return evidence.digest


async def denial(v: NotationValidator, image: str) -> ConnaisseurError:
    with pytest.raises(ConnaisseurError) as info:
        await validate(v, image)
    return info.value


async def denied_as(
    registry: RegistryServer,
    session: aiohttp.ClientSession,
    pki: Pki,
    repo: str,
    category: Category,
) -> ConnaisseurError:
    """The denial of ``<repo>:1.0``: of ``category``, one sentence naming image and roots."""
    image = f"{registry.host}/{repo}:1.0"
    error = await denial(validator(registry, session, pki), image)
    assert error.category is category, error.message
    assert_one_sentence_naming(error.message, image)
    return error


def assert_one_sentence_naming(message: str, image: str) -> None:
    assert message.startswith(f"notation: image {image} (trust roots: default): "), message
    assert "\n" not in message
    assert ". " not in message.rstrip("."), f"more than one sentence: {message}"


# ------------------------------------------------------------------ discovery


async def test_distribution_has_no_referrers_api_so_the_tag_schema_is_used(
    registry: RegistryServer, session: aiohttp.ClientSession, pki: Pki
) -> None:
    push = pusher(registry, session)
    subject = await push_image(push, "team/probe", "1.0")
    await attach(push, "team/probe", subject, jws_for(subject, pki.leaf), pki.leaf)
    context = ssl.create_default_context(cadata=registry.ca_pem)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    api = f"{registry.url}/v2/team/probe/referrers/{subject.digest}"
    async with session.get(api, ssl=context, headers=auth) as resp:
        assert resp.status == 404  # the adapter must fall back
    tag = f"{registry.url}/v2/team/probe/manifests/{subject.digest.replace(':', '-')}"
    headers = {**auth, "Accept": "application/vnd.oci.image.index.v1+json"}
    async with session.get(tag, ssl=context, headers=headers) as resp:
        assert resp.status == 200
        index = json.loads(await resp.read())
    assert [m["artifactType"] for m in index["manifests"]] == [
        "application/vnd.cncf.notary.signature"
    ]


# ------------------------------------------------------------------ admitted


@pytest.mark.parametrize(
    ("envelope_type", "oci11"),
    [pytest.param(JWS, True, id="jws"), pytest.param(COSE, False, id="cose-notation-1.0-style")],
)
async def test_signed_image_is_admitted_and_pinned_to_its_digest(
    registry: RegistryServer,
    session: aiohttp.ClientSession,
    pki: Pki,
    envelope_type: str,
    oci11: bool,
) -> None:
    """A JWS signature in an OCI 1.1 manifest (``artifactType``), and a COSE one in notation
    1.0's manifest style (the artifact type as the config's media type)."""
    push = pusher(registry, session)
    repo = "team/jws" if envelope_type == JWS else "team/cose"
    subject = await push_image(push, repo, "1.0")
    envelope = jws_for(subject, pki.leaf) if envelope_type == JWS else cose_for(subject, pki.leaf)
    await attach(push, repo, subject, envelope, pki.leaf, envelope_type, oci11=oci11)
    v = validator(registry, session, pki)
    by_tag = f"{registry.host}/{repo}:1.0"
    assert await validate(v, by_tag) == subject.digest
    pinned = ImageReference.parse(by_tag).with_digest(subject.digest).name
    assert pinned == f"{registry.host}/{repo}:1.0@{subject.digest}"
    assert await validate(v, f"{registry.host}/{repo}@{subject.digest}") == subject.digest


async def test_a_good_signature_wins_over_a_stranger_signature(
    registry: RegistryServer, session: aiohttp.ClientSession, pki: Pki
) -> None:
    push = pusher(registry, session)
    subject = await push_image(push, "team/both", "1.0")
    stranger = signature_artifact(subject, jws_for(subject, pki.stranger), JWS, pki.stranger.chain)
    good = signature_artifact(subject, cose_for(subject, pki.leaf), COSE, pki.leaf.chain)
    await push_signatures(push, "team/both", subject, [stranger, good])
    v = validator(registry, session, pki)
    assert await validate(v, f"{registry.host}/team/both:1.0") == subject.digest


# ------------------------------------------------------------------ denied


async def test_unsigned_image_has_no_trust_data(
    registry: RegistryServer, session: aiohttp.ClientSession, pki: Pki
) -> None:
    push = pusher(registry, session)
    await push_image(push, "team/unsigned", "1.0")
    await denied_as(registry, session, pki, "team/unsigned", Category.NO_TRUST_DATA)


@pytest.mark.parametrize(
    ("certificate", "signed_at", "category"),
    [
        pytest.param("stranger", REAL_NOW, Category.SIGNATURE_INVALID, id="untrusted-is-invalid"),
        # Signed while the certificate was valid; without a timestamp it must be valid *now*.
        pytest.param("expired", REAL_NOW - 10 * DAY, Category.EXPIRED, id="expired-is-expired"),
    ],
)
async def test_signature_by_a_certificate_that_does_not_count_is_refused(
    registry: RegistryServer,
    session: aiohttp.ClientSession,
    pki: Pki,
    certificate: str,
    signed_at: dt.datetime,
    category: Category,
) -> None:
    push = pusher(registry, session)
    repo = f"team/{certificate}"
    subject = await push_image(push, repo, "1.0")
    signer: Signer = getattr(pki, certificate)
    await attach(push, repo, subject, jws_for(subject, signer, signing_time=signed_at), signer)
    await denied_as(registry, session, pki, repo, category)


async def test_envelope_for_another_digest_is_a_digest_mismatch(
    registry: RegistryServer, session: aiohttp.ClientSession, pki: Pki
) -> None:
    push = pusher(registry, session)
    subject = await push_image(push, "team/swapped", "1.0")
    other = await push_image(push, "team/swapped", "2.0")
    # A valid signature of image 2.0, attached to (listed as a referrer of) image 1.0.
    await attach(push, "team/swapped", subject, jws_for(other, pki.leaf), pki.leaf)
    error = await denied_as(registry, session, pki, "team/swapped", Category.DIGEST_MISMATCH)
    assert other.digest in error.message
    assert subject.digest in error.message


async def test_missing_tag_is_image_not_found(
    registry: RegistryServer, session: aiohttp.ClientSession, pki: Pki
) -> None:
    error = await denial(validator(registry, session, pki), f"{registry.host}/team/jws:nope")
    assert error.category is Category.IMAGE_NOT_FOUND
