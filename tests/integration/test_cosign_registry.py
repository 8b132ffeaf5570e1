"""The registry adapter and the cosign validator against a REAL registry.

Backend: Debian's ``docker-registry`` (CNCF distribution 2.8) started on 127.0.0.1 with a free
port, and the same in a container (the ``backend`` fixture; the registry's
``backend`` says which ran; it is printed in the test report). Once over plain HTTP (reached
through the loopback HTTPS→HTTP fallback), once over HTTPS with a test CA and htpasswd Basic
auth (bcrypt hashes from the ``bcrypt`` PyPI package). Images and cosign-layout signatures are
pushed by the tests through the distribution API. The Bearer token flow is exercised through a
token-guarding proxy in front of the real registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint
from connaisseur.application.settings import AuthSettings
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.containers import Backend
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.oci_push import Pusher
from tests.support.registry_proxy import RegistryProxy
from tests.support.servers import RegistryServer, secure_registry_server
from tests.support.settings import validator_settings

pytestmark = pytest.mark.integration
CLOCK = FakeClock()
NO_TLOG = RuleOptions(verify_in_transparency_log=False)


@pytest.fixture(scope="module")
def secure_registry(
    tmp_path_factory: pytest.TempPathFactory, backend: Backend
) -> Iterator[RegistryServer]:
    work = tmp_path_factory.mktemp("secure")
    with secure_registry_server(work, "alice", "s3cret", backend=backend) as server:
        yield server


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def validator(
    registry: AiohttpRegistryClient,
    signer: Signer,
    *,
    cert: str | None = None,
    auth: Mapping[str, str] | None = None,
) -> CosignValidator:
    roots = [{"name": "default", "key": signer.public_pem}]
    entry: dict[str, Any] = {"name": "cosign", "type": "cosign", "trustRoots": roots}
    optional = {"cert": cert, "auth": auth}
    settings = validator_settings(entry | {k: v for k, v in optional.items() if v})
    return CosignValidator(settings, registry, unreachable_transparency_log(), CLOCK)


async def denial(v: CosignValidator, image: str) -> ConnaisseurError:
    """The error ``v`` denies ``image`` with (no transparency log)."""
    with pytest.raises(ConnaisseurError) as err:
        await v.validate(ImageReference.parse(image), NO_TLOG, deadline())
    return err.value


async def push_signed(pusher: Pusher, host: str, repo: str, tag: str, signer: Signer | None) -> str:
    manifest, blobs = image_manifest(f"{repo}:{tag}")
    digest = await pusher.image(repo, tag, manifest, blobs)
    if signer is not None:
        body = payload(digest, f"{host}/{repo}")
        await pusher.signatures(repo, digest, sign_layout([(body, signer.sign(body), {})]))
    return digest


def deadline() -> Deadline:
    return Deadline.after(CLOCK, 10)


def registry_client(session: aiohttp.ClientSession) -> AiohttpRegistryClient:
    """The adapter under test, over the test's session."""
    return AiohttpRegistryClient(HttpClient(session), CLOCK)


# ------------------------------------------------------------------ plain HTTP


async def test_plain_http_signed_image_verifies_and_pins_the_tag(
    plain_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    digest = await push_signed(pusher, plain_registry.host, "team/app", "1.0", signer)
    client = registry_client(session)
    image = ImageReference.parse(f"{plain_registry.host}/team/app:1.0")
    result = await validator(client, signer).validate(image, NO_TLOG, deadline())
    assert result.digest == digest


async def test_plain_http_unsigned_and_missing_images(
    plain_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    await push_signed(pusher, plain_registry.host, "team/unsigned", "1.0", None)
    v = validator(registry_client(session), signer)
    unsigned = await denial(v, f"{plain_registry.host}/team/unsigned:1.0")
    assert unsigned.category is Category.NO_TRUST_DATA
    missing = await denial(v, f"{plain_registry.host}/team/unsigned:nope")
    assert missing.category is Category.IMAGE_NOT_FOUND


async def test_plain_http_signed_by_another_key(
    plain_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    other = Signer(ec.generate_private_key(ec.SECP256R1()))
    await push_signed(pusher, plain_registry.host, "team/other", "1.0", other)
    v = validator(registry_client(session), signer)
    denied = await denial(v, f"{plain_registry.host}/team/other:1.0")
    assert denied.category is Category.SIGNATURE_INVALID


async def test_registry_manifest_and_blob_are_digest_checked(
    plain_registry: RegistryServer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    manifest, blobs = image_manifest("direct")
    digest = await pusher.image("team/direct", "v1", manifest, blobs)
    client = registry_client(session)
    image = ImageReference.parse(f"{plain_registry.host}/team/direct:v1")
    endpoint = Endpoint(auth=AuthSettings())
    assert await client.resolve(image, endpoint, deadline()) == digest
    fetched = await client.manifest(image, digest, endpoint, deadline())
    assert fetched.body == manifest
    assert fetched.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    config_digest, config = next(iter(blobs.items()))
    assert await client.blob(image, BlobRef(digest=config_digest), endpoint, deadline()) == config


async def test_referrers_fall_back_to_the_tag_schema(
    plain_registry: RegistryServer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    digest = await push_signed(pusher, plain_registry.host, "team/ref", "v1", None)
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": 1,
                "artifactType": "application/vnd.cncf.notary.signature",
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": 1,
                "artifactType": "application/other",
            },
        ],
    }
    await pusher.manifest(
        "team/ref", digest.replace(":", "-"), json.dumps(index).encode(), index["mediaType"]
    )
    client = registry_client(session)
    image = ImageReference.parse(f"{plain_registry.host}/team/ref@{digest}")
    endpoint = Endpoint(auth=AuthSettings())
    notary = "application/vnd.cncf.notary.signature"
    found = await client.referrers(image, notary, endpoint, deadline())
    assert [d.artifact_type for d in found] == [notary]
    unsigned = image.with_digest("sha256:" + "0" * 64)
    none = await client.referrers(unsigned, "x", endpoint, deadline())
    assert none == []


# ------------------------------------------------------------------ HTTPS + Basic


def alice(host: str, password: str) -> dict[str, str]:
    """Inline credentials as a values file writes them."""
    return {"username": "alice", "password": password, "registry": host}


async def test_https_basic_auth_with_the_validator_cert(
    secure_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(
        session, secure_registry.url, ca_pem=secure_registry.ca_pem, basic=("alice", "s3cret")
    )
    digest = await push_signed(pusher, secure_registry.host, "team/app", "2.0", signer)
    client = registry_client(session)
    v = validator(
        client, signer, cert=secure_registry.ca_pem, auth=alice(secure_registry.host, "s3cret")
    )
    image = ImageReference.parse(f"{secure_registry.host}/team/app:2.0")
    assert (await v.validate(image, NO_TLOG, deadline())).digest == digest


async def test_https_registry_refuses_wrong_credentials(
    secure_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    client = registry_client(session)
    v = validator(
        client, signer, cert=secure_registry.ca_pem, auth=alice(secure_registry.host, "wrong")
    )
    with pytest.raises(ConnaisseurError) as err:
        await v.validate(
            ImageReference.parse(f"{secure_registry.host}/team/app:2.0"), NO_TLOG, deadline()
        )
    assert err.value.category is Category.UNAUTHORIZED
    assert "wrong" not in err.value.message


async def test_https_without_the_ca_is_not_trusted(
    secure_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    client = registry_client(session)
    v = validator(client, signer, auth=alice(secure_registry.host, "s3cret"))
    with pytest.raises(ConnaisseurError) as err:
        await v.validate(
            ImageReference.parse(f"{secure_registry.host}/team/app:2.0"), NO_TLOG, deadline()
        )
    assert err.value.category in (Category.FETCH_FAILED, Category.UNAUTHORIZED)


# ------------------------------------------------------------------ Bearer, down, slow


async def test_bearer_token_flow_reuses_the_token(
    plain_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    digest = await push_signed(pusher, plain_registry.host, "team/tok", "1.0", signer)
    proxy = RegistryProxy(plain_registry.url, bearer=True)
    server = TestServer(proxy.app(), host="127.0.0.1")
    await server.start_server()
    try:
        host = f"127.0.0.1:{server.port}"
        v = validator(registry_client(session), signer)
        opts = RuleOptions(verify_in_transparency_log=False, ignore_reference=True)
        image = ImageReference.parse(f"{host}/team/tok:1.0")
        assert (await v.validate(image, opts, deadline())).digest == digest
        assert len(proxy.token_requests) == 1
        assert "scope=repository:team/tok:pull" in proxy.token_requests[0]
        before = len(proxy.requests)
        await v.validate(image, opts, deadline())
        assert len(proxy.token_requests) == 1  # reused within its lifetime
        hex_digest = digest.removeprefix("sha256:")
        # resolve, the .sig manifest, the referrers (this registry has no referrers API: the
        # tag schema, then the API once more before concluding "none"), and the one blob
        assert sorted(path for _, path in proxy.requests[before:]) == sorted(
            [
                "/v2/team/tok/manifests/1.0",
                f"/v2/team/tok/manifests/sha256-{hex_digest}.sig",
                f"/v2/team/tok/manifests/sha256-{hex_digest}",
                f"/v2/team/tok/referrers/{digest}",
                next(path for _, path in proxy.requests[before:] if "/blobs/" in path),
            ]
        )
    finally:
        await server.close()


async def test_registry_down_is_transient(signer: Signer, session: aiohttp.ClientSession) -> None:
    from tests.support.servers import free_port

    v = validator(registry_client(session), signer)
    with pytest.raises(ConnaisseurError) as err:
        await v.validate(
            ImageReference.parse(f"127.0.0.1:{free_port()}/team/app:1"), NO_TLOG, deadline()
        )
    assert err.value.category is Category.FETCH_FAILED
    assert err.value.transient


async def test_registry_slow_times_out_within_the_budget(
    plain_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    proxy = RegistryProxy(plain_registry.url, latency_seconds=2.0)
    server = TestServer(proxy.app(), host="127.0.0.1")
    await server.start_server()
    try:
        v = validator(registry_client(session), signer)
        image = ImageReference.parse(f"127.0.0.1:{server.port}/team/app:1.0")
        with pytest.raises(ConnaisseurError) as err:
            await v.validate(image, NO_TLOG, Deadline.after(CLOCK, 0.5))
        assert err.value.category is Category.TIMEOUT
    finally:
        await server.close()


async def test_retry_after_is_honoured_within_the_budget(
    plain_registry: RegistryServer, signer: Signer, session: aiohttp.ClientSession
) -> None:
    pusher = Pusher(session, plain_registry.url)
    digest = await push_signed(pusher, plain_registry.host, "team/busy", "1.0", signer)
    limited = {"left": 1}

    async def throttle(request: aiohttp.web.Request, handler):  # type: ignore[no-untyped-def]
        if limited["left"]:
            limited["left"] -= 1
            return aiohttp.web.Response(status=429, headers={"Retry-After": "1"})
        return await handler(request)

    proxy = RegistryProxy(plain_registry.url)
    app = proxy.app()
    app.middlewares.append(aiohttp.web.middleware(throttle))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        v = validator(registry_client(session), signer)
        image = ImageReference.parse(f"127.0.0.1:{server.port}/team/busy:1.0")
        opts = RuleOptions(verify_in_transparency_log=False, ignore_reference=True)
        assert (await v.validate(image, opts, deadline())).digest == digest
        limited["left"] = 1
        with pytest.raises(ConnaisseurError) as err:  # Retry-After longer than the budget
            await v.validate(image, opts, Deadline.after(CLOCK, 0.8))
        assert err.value.category is Category.RATE_LIMITED
    finally:
        await server.close()
