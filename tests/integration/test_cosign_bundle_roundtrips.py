"""Which requests a cosign verification sends to find a Sigstore bundle, and in what order,
against a REAL registry (docs/decisions/0040-cosign-signature-formats.md).

Backend: Debian's ``docker-registry`` (distribution 2.8: no referrers API, so cosign v3 writes
the ``sha256-<hex>`` referrers tag) on 127.0.0.1, then the same in a container (the
``backend`` fixture); in front of it the counting proxy of ``tests/support/registry_proxy.py``
over HTTPS, demanding a Bearer token. Requests are counted and ordered, never timed
(``bench/cosign_bundle_roundtrips.py`` measures the latency). Requests asserted as a group went
out together: the proxy holds each of a group until all have arrived, so a client sending them
one after the other fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import Signer, image_manifest
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.oci_push import Pusher
from tests.support.registry_proxy import PairingProxy, Proxied
from tests.support.servers import RegistryServer
from tests.support.settings import validator_settings
from tests.support.sigstore_bundles import Signing, dsse_bundle, push_bundle_to, statement

pytestmark = pytest.mark.integration
CLOCK = FakeClock()
REPO = "rt/bundle"
NO_LOG = RuleOptions(verify_in_transparency_log=False)


@dataclass(frozen=True)
class Signed:
    digest: str
    referrer: str
    public_pem: str


@pytest.fixture
async def signed(plain_registry: RegistryServer, session: aiohttp.ClientSession) -> Signed:
    pusher = Pusher(session, plain_registry.url)
    manifest, blobs = image_manifest("cosign bundle round trips")
    digest = await pusher.image(REPO, "1.0", manifest, blobs)
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    referrer = await push_bundle_to(
        pusher, REPO, digest, dsse_bundle(Signing(signer), statement(digest))
    )
    return Signed(digest, referrer, signer.public_pem)


def validator(proxied: Proxied, session: aiohttp.ClientSession, signed: Signed) -> CosignValidator:
    entry = {
        "name": "rt",
        "type": "cosign",
        "cert": proxied.ca_pem,
        "trustRoots": [{"name": "default", "key": signed.public_pem}],
    }
    client = AiohttpRegistryClient(HttpClient(session), CLOCK)
    no_log = unreachable_transparency_log("no transparency log in these cases")
    return CosignValidator(validator_settings(entry), client, no_log, CLOCK)


async def verify(v: CosignValidator, image: str) -> str | None:
    evidence = await v.validate(ImageReference.parse(image), NO_LOG, Deadline.after(CLOCK, 10))
    return evidence.digest


def paths(proxy: PairingProxy) -> list[str]:
    return [f"{method} {path.partition('?')[0]}" for method, path in proxy.requests]


def expected(signed: Signed) -> dict[str, str]:
    digest = signed.digest
    schema = digest.replace(":", "-")
    return {
        "tag": f"HEAD /v2/{REPO}/manifests/1.0",
        "image": f"HEAD /v2/{REPO}/manifests/{digest}",
        "classic": f"GET /v2/{REPO}/manifests/{schema}.sig",
        "referrers api": f"GET /v2/{REPO}/referrers/{digest}",
        "referrers tag": f"GET /v2/{REPO}/manifests/{schema}",
        "referrer": f"GET /v2/{REPO}/manifests/{signed.referrer}",
    }


def together(*requests: str) -> frozenset[str]:
    return frozenset(r.partition(" ")[2] for r in requests)


def without_bundle_blob(sent: list[str]) -> tuple[list[str], list[str]]:
    """The requests before the last, and the last (the bundle's blob, whose digest the
    referrer manifest names)."""
    assert sent[-1].startswith(f"GET /v2/{REPO}/blobs/sha256:"), sent
    return sent[:-1], sent[-1:]


async def test_warm_by_digest_is_three_round_trips_listings_together(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> None:
    v = validator(proxied, session, signed)
    image = f"{proxied.host}/{REPO}@{signed.digest}"
    assert await verify(v, image) == signed.digest  # cold: token, the registry's routes learnt
    want = expected(signed)
    proxied.proxy.reset()
    proxied.proxy.together = together(want["image"], want["classic"], want["referrers tag"])
    assert await verify(v, image) == signed.digest
    sent, blob = without_bundle_blob(paths(proxied.proxy))
    first = sorted([want["image"], want["classic"], want["referrers tag"]])
    assert sorted(sent[:3]) == first  # 1: the image, the classic tag, the referrers (no API)
    assert sent[3:] == [want["referrer"]]  # 2: the referrer manifest; 3: its blob
    assert len(blob) == 1
    assert proxied.proxy.token_requests == []


async def test_warm_by_tag_adds_only_the_tag(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> None:
    v = validator(proxied, session, signed)
    image = f"{proxied.host}/{REPO}:1.0"
    assert await verify(v, image) == signed.digest
    want = expected(signed)
    proxied.proxy.reset()
    proxied.proxy.together = together(want["classic"], want["referrers tag"])
    assert await verify(v, image) == signed.digest
    sent, _ = without_bundle_blob(paths(proxied.proxy))
    assert sent[0] == want["tag"]
    assert sorted(sent[1:3]) == sorted([want["classic"], want["referrers tag"]])
    assert sent[3:] == [want["referrer"]]


async def test_cold_by_digest_probes_the_referrers_api_with_the_other_listings(
    proxied: Proxied, session: aiohttp.ClientSession, signed: Signed
) -> None:
    want = expected(signed)
    first = [want["image"], want["classic"], want["referrers api"], want["referrers tag"]]
    proxied.proxy.together = together(*first)
    v = validator(proxied, session, signed)
    assert await verify(v, f"{proxied.host}/{REPO}@{signed.digest}") == signed.digest
    sent, _ = without_bundle_blob(paths(proxied.proxy))
    assert sorted(set(sent[:-1])) == sorted(first)  # each once unauthorised, once with the token
    assert sent[-1] == want["referrer"]
    assert len(proxied.proxy.token_requests) == 1
