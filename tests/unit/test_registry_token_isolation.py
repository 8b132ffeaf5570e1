"""Bearer tokens are cached per identity: one validator's credentials never serve another."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connaisseur.adapters.clock import SystemClock
from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings, Credentials
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def private_registry() -> web.Application:
    """A registry whose repository only alice's token may read (token service included)."""

    async def token(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        user = "anonymous"
        if auth.startswith("Basic "):
            user = base64.b64decode(auth[6:]).decode().partition(":")[0]
        return web.json_response({"token": f"token-of-{user}", "expires_in": 300})

    async def manifest(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer token-of-alice":
            realm = f"http://{request.host}/token"
            challenge = f'Bearer realm="{realm}",service="test",scope="repository:team/app:pull"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        headers = {
            "Docker-Content-Digest": DIGEST,
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        }
        return web.Response(body=MANIFEST, headers=headers)

    app = web.Application()
    app.router.add_get("/token", token)
    app.router.add_route("*", "/v2/team/app/manifests/{ref}", manifest)
    return app


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    srv = TestServer(private_registry(), host="127.0.0.1")
    async with srv:  # ``__aenter__`` is typed as returning the base class
        yield srv


async def test_regression_anonymous_validator_does_not_reuse_another_validators_token(
    server: TestServer,
) -> None:
    host = f"127.0.0.1:{server.port}"
    image = ImageReference.parse(f"{host}/team/app:1")
    alice = Endpoint(
        auth=AuthSettings(credentials=((host, Credentials(username="alice", password="pw")),))
    )
    anonymous = Endpoint(auth=AuthSettings())
    clock = SystemClock()
    async with aiohttp.ClientSession() as session:
        registry = AiohttpRegistryClient(HttpClient(session), clock)
        deadline = Deadline.after(clock, 10)
        assert await registry.resolve(image, alice, deadline) == DIGEST
        with pytest.raises(VerificationError) as denied:
            await registry.resolve(image, anonymous, deadline)
        assert denied.value.category is Category.UNAUTHORIZED
        # alice's token is still reused for alice: no second token request needed
        assert await registry.resolve(image, alice, deadline) == DIGEST
