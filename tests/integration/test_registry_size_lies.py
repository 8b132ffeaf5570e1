"""A registry that lies about a layer's size serves content that is wrong: the denial is
``malformed_trust_data`` (permanent), not ``fetch_failed`` (transient, as if the registry were
down), and a blob is read no further than its descriptor says
(docs/decisions/0009-transient-vs-permanent.md).

The lying descriptors are pushed to a REAL registry (Debian's ``docker-registry``, or
``registry:2`` in a container): it stores a signature manifest whose layer says another size
than the blob it names, as cosign's own client would refuse to read. Before, such a layer was
read whole (under the 64 KiB payload cap) and its signature trusted, or, over the cap, denied
as ``fetch_failed``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint
from connaisseur.application.settings import AuthSettings, Credentials
from connaisseur.domain.cosign_layout import MAX_PAYLOAD_BYTES
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import Layout, Signer, image_manifest, payload, sha256, sign_layout
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer, serving
from tests.support.settings import validator_settings

pytestmark = pytest.mark.integration
CLOCK = FakeClock()
OPTIONS = RuleOptions(verify_in_transparency_log=False)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def declaring(layout: Layout, size: int) -> Layout:
    """The layout with its (single) signature layer claiming ``size`` bytes."""
    manifest = json.loads(layout.manifest)
    manifest["layers"][0]["size"] = size
    return Layout(manifest=json.dumps(manifest).encode(), blobs=layout.blobs)


async def push(
    registry: RegistryServer,
    session: aiohttp.ClientSession,
    signer: Signer,
    repo: str,
    declared: int | None,
    padding: int = 0,
) -> tuple[ImageReference, bytes]:
    """An image signed by ``signer`` whose signature layer declares ``declared`` bytes
    (``None``: the truth); ``padding`` spaces make the payload longer (still valid JSON)."""
    pusher = Pusher(session, registry.url)
    manifest, blobs = image_manifest(repo)
    digest = await pusher.image(repo, "1", manifest, blobs)
    body = payload(digest, f"{registry.host}/{repo}") + b" " * padding
    layout = sign_layout([(body, signer.sign(body), {})])
    await pusher.signatures(
        repo, digest, layout if declared is None else declaring(layout, declared)
    )
    return ImageReference.parse(f"{registry.host}/{repo}:1"), body


def validator(session: aiohttp.ClientSession, signer: Signer) -> CosignValidator:
    roots = [{"name": "default", "key": signer.public_pem}]
    settings = validator_settings({"name": "cosign", "type": "cosign", "trustRoots": roots})
    registry = AiohttpRegistryClient(HttpClient(session), CLOCK)
    return CosignValidator(settings, registry, unreachable_transparency_log(), CLOCK)


async def denial(session: aiohttp.ClientSession, signer: Signer, image: ImageReference) -> Any:
    with pytest.raises(ConnaisseurError) as denied:
        await validator(session, signer).validate(image, OPTIONS, Deadline.after(CLOCK, 10))
    return denied.value


async def test_the_truth_verifies(
    plain_registry: RegistryServer, session: aiohttp.ClientSession, signer: Signer
) -> None:
    image, _ = await push(plain_registry, session, signer, "lies/none", None)
    result = await validator(session, signer).validate(image, OPTIONS, Deadline.after(CLOCK, 10))
    assert result.digest is not None


async def test_registry_lying_about_a_layer_size_over_the_payload_cap_is_malformed(
    plain_registry: RegistryServer, session: aiohttp.ClientSession, signer: Signer
) -> None:
    """The issue's case: a layer declared small whose blob is larger than any payload may be.
    It was ``fetch_failed`` (transient: never cached, retried on every admission)."""
    image, _ = await push(plain_registry, session, signer, "lies/over", 300, MAX_PAYLOAD_BYTES)
    error = await denial(session, signer, image)
    assert error.category is Category.MALFORMED_TRUST_DATA
    assert "declares 300" in error.message
    assert not error.transient


@pytest.mark.parametrize("delta", [-1, +1], ids=["declared-smaller", "declared-larger"])
async def test_registry_lying_about_a_layer_size_is_malformed(
    plain_registry: RegistryServer, session: aiohttp.ClientSession, signer: Signer, delta: int
) -> None:
    """A payload whose size differs from its descriptor by one byte was trusted before."""
    repo = f"lies/by{'minus' if delta < 0 else 'plus'}one"
    truth = len(payload("sha256:" + "0" * 64, f"{plain_registry.host}/{repo}"))
    image, body = await push(plain_registry, session, signer, repo, truth + delta)
    assert len(body) == truth
    error = await denial(session, signer, image)
    assert error.category is Category.MALFORMED_TRUST_DATA
    assert f"declares {len(body) + delta}" in error.message


async def pushed_blob(
    registry: RegistryServer, session: aiohttp.ClientSession, repo: str, blob: bytes
) -> tuple[AiohttpRegistryClient, ImageReference, str]:
    """``blob`` pushed to ``repo``: a client of the registry, an image of the repository and
    the blob's digest."""
    digest = await Pusher(session, registry.url).blob(repo, blob)
    client = AiohttpRegistryClient(HttpClient(session), CLOCK)
    return client, ImageReference.parse(f"{registry.host}/{repo}:1"), digest


async def test_a_blob_over_the_callers_cap_is_not_read(
    plain_registry: RegistryServer, session: aiohttp.ClientSession
) -> None:
    """A cosign signature payload is read up to its own 64 KiB, never the 4 MiB document cap."""
    big = b"x" * (MAX_PAYLOAD_BYTES + 1)
    client, image, digest = await pushed_blob(plain_registry, session, "team/big", big)
    endpoint = Endpoint(auth=AuthSettings())
    deadline = Deadline.after(CLOCK, 10)
    capped = BlobRef(digest=digest, max_bytes=MAX_PAYLOAD_BYTES)
    with pytest.raises(ConnaisseurError) as err:
        await client.blob(image, capped, endpoint, deadline)
    assert err.value.category is Category.FETCH_FAILED
    assert str(MAX_PAYLOAD_BYTES) in err.value.message
    # without a cap of its own, the configured document cap applies
    assert await client.blob(image, BlobRef(digest=digest), endpoint, deadline) == big


async def test_a_blob_is_read_no_further_than_its_declared_size(
    plain_registry: RegistryServer, session: aiohttp.ClientSession, signer: Signer
) -> None:
    big = b"x" * (256 * 1024)
    client, image, digest = await pushed_blob(plain_registry, session, "lies/big", big)
    endpoint = Endpoint(auth=AuthSettings())
    deadline = Deadline.after(CLOCK, 10)
    with pytest.raises(ConnaisseurError) as lied:
        await client.blob(image, BlobRef(digest=digest, size=100), endpoint, deadline)
    assert lied.value.category is Category.MALFORMED_TRUST_DATA
    with pytest.raises(ConnaisseurError) as capped:  # no declared size: the cap, as before
        await client.blob(image, BlobRef(digest=digest, max_bytes=1000), endpoint, deadline)
    assert capped.value.category is Category.FETCH_FAILED
    ref = BlobRef(digest=digest, size=len(big))
    assert await client.blob(image, ref, endpoint, deadline) == big


async def test_an_error_answer_longer_than_the_declared_size_is_still_read(
    session: aiohttp.ClientSession,
) -> None:
    """The declared size bounds the blob, not the registry's other answers: a 401 whose body
    is longer than a small blob still leads to the credentials being sent."""
    blob = b"tiny blob"
    digest = sha256(blob)

    async def serve(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") is None:
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "detail": "x" * 2000}]})
            challenge = {"WWW-Authenticate": 'Basic realm="registry"'}
            return web.Response(status=401, text=body, headers=challenge)
        return web.Response(body=blob)

    app = web.Application()
    app.router.add_get("/v2/team/app/blobs/{digest}", serve)
    async with serving(app) as url:
        host = url.removeprefix("http://")
        endpoint = Endpoint(
            auth=AuthSettings(credentials=((host, Credentials(username="u", password="p")),))
        )
        client = AiohttpRegistryClient(HttpClient(session), CLOCK)
        image = ImageReference.parse(f"{host}/team/app:1")
        ref = BlobRef(digest=digest, size=len(blob))
        fetched = await client.blob(image, ref, endpoint, Deadline.after(CLOCK, 10))
    assert fetched == blob
