"""The shared upstream authentication against a real registry in token-auth mode, on both
backends (Debian's ``docker-registry`` and its container: tests/integration/conftest.py).

The registry checks every token itself (signature, issuer, audience, lifetime, access), so this
is the Bearer flow end to end: the real challenge, our token request, the real verdict
(``tests/support/token_registry.py``). Basic auth against the real registry (htpasswd) is
covered by ``test_cosign_registry.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint
from connaisseur.application.settings import AuthSettings, Credentials
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference
from tests.support.containers import Backend
from tests.support.fakes import FakeClock
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer, registry_server, serving
from tests.support.tls import TlsFiles, make_tls, server_context
from tests.support.token_registry import SERVICE, TokenService, token_auth

pytestmark = pytest.mark.integration

LAYER = b"a layer of the token-protected image"
CONFIG = b"{}"
ALICE = Credentials(username="alice", password="alice-password")


@dataclass(frozen=True)
class Stack:
    registry: RegistryServer
    tokens: TokenService
    tls: TlsFiles
    digest: str


def manifest() -> bytes:
    def descriptor(media_type: str, data: bytes) -> dict[str, object]:
        return {
            "mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", CONFIG),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", LAYER)],
        }
    ).encode()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Path:
    return tmp_path_factory.mktemp(f"token-registry-{backend}")


@pytest.fixture(scope="module")
def tls(workdir: Path) -> TlsFiles:
    return make_tls(workdir / "tls")


@pytest.fixture(scope="module")
def pushed(workdir: Path, tls: TlsFiles, backend: Backend) -> Path:
    """The working directory of a registry that stored ``team/app:1`` (pushed anonymously): the
    token-auth registry serves it."""

    async def push(registry: RegistryServer) -> None:
        async with aiohttp.ClientSession() as session:
            pusher = Pusher(session, registry.url, ca_pem=tls.ca_pem)
            await pusher.blob("team/app", CONFIG)
            await pusher.blob("team/app", LAYER)
            await pusher.manifest(
                "team/app", "1", manifest(), "application/vnd.oci.image.manifest.v1+json"
            )

    with registry_server(workdir / "registry", tls, backend=backend) as registry:
        asyncio.run(push(registry))
    return workdir / "registry"


@pytest.fixture
async def stack(
    workdir: Path, tls: TlsFiles, pushed: Path, backend: Backend
) -> AsyncIterator[Stack]:
    tokens = TokenService(
        users={"alice": ALICE.password}, grants={"alice": frozenset({"team/app"})}
    )
    bundle = workdir / "token-bundle.pem"
    bundle.write_bytes(tokens.bundle_pem())
    async with serving(tokens.app(), server_context(tls.cert_file, tls.key_file)) as realm_base:
        auth = token_auth(f"{realm_base}/token", bundle)
        with registry_server(pushed, tls, backend=backend, token=auth) as registry:
            print(f"registry backend: {registry.backend} (token auth)")
            yield Stack(registry, tokens, tls, "sha256:" + hashlib.sha256(manifest()).hexdigest())


@pytest.fixture
async def client() -> AsyncIterator[AiohttpRegistryClient]:
    async with aiohttp.ClientSession() as session:
        yield AiohttpRegistryClient(HttpClient(session), FakeClock())


def endpoint(stack: Stack, creds: Credentials | None) -> Endpoint:
    credentials = ((stack.registry.host, creds),) if creds else ()
    return Endpoint(auth=AuthSettings(credentials=credentials), ca_pem=stack.tls.ca_pem)


async def resolve(client: AiohttpRegistryClient, stack: Stack, creds: Credentials | None) -> str:
    image = ImageReference.parse(f"{stack.registry.host}/team/app:1")
    return await client.resolve(image, endpoint(stack, creds), Deadline.after(FakeClock(), 10))


async def test_the_real_registry_accepts_our_token_flow_and_the_token_is_reused(
    client: AiohttpRegistryClient, stack: Stack
) -> None:
    assert await resolve(client, stack, ALICE) == stack.digest
    image = ImageReference.parse(f"{stack.registry.host}/team/app:1")
    layer = "sha256:" + hashlib.sha256(LAYER).hexdigest()
    deadline = Deadline.after(FakeClock(), 10)
    assert (
        await client.blob(image, BlobRef(digest=layer), endpoint(stack, ALICE), deadline) == LAYER
    )
    ((query, user),) = stack.tokens.requests  # one token for the resolve and the blob
    assert user == "alice"
    assert f"service={SERVICE}" in query
    assert "scope=repository:team/app:pull" in query


async def test_the_real_registry_refuses_an_anonymous_token_and_none_is_borrowed(
    client: AiohttpRegistryClient, stack: Stack
) -> None:
    assert await resolve(client, stack, ALICE) == stack.digest
    with pytest.raises(VerificationError) as info:
        await resolve(client, stack, None)
    assert info.value.category is Category.UNAUTHORIZED
    assert [user for _, user in stack.tokens.requests] == ["alice", None]


async def test_wrong_credentials_are_refused_by_the_token_service(
    client: AiohttpRegistryClient, stack: Stack
) -> None:
    wrong = Credentials(username="alice", password="guess")
    with pytest.raises(VerificationError) as info:
        await resolve(client, stack, wrong)
    assert info.value.category is Category.UNAUTHORIZED
    assert "refused the credentials" in info.value.message
