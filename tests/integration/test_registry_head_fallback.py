"""Resolving a tag when the registry (or a proxy in front of it) refuses HEAD.

Regression, named after the bug: a registry answering HEAD with 405 Method Not Allowed made
``resolve`` fail with ``fetch_failed`` although the Go clients (and we
now) fall back to GET.
The real registry (Debian ``docker-registry`` or ``registry:2``) sits behind a proxy that
refuses HEAD.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Middleware

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from tests.support.cosign import image_manifest
from tests.support.fakes import FakeClock
from tests.support.oci_push import Pusher
from tests.support.registry_proxy import RegistryProxy
from tests.support.servers import RegistryServer

pytestmark = pytest.mark.integration
CLOCK = FakeClock()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusing_head(status: int) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=status)
        return await handler(request)

    return middleware


async def resolve_through_proxy(
    registry: RegistryServer, session: aiohttp.ClientSession, tag: str, head_status: int
) -> tuple[str, RegistryProxy]:
    proxy = RegistryProxy(registry.url)
    app = proxy.app()
    app.middlewares.append(refusing_head(head_status))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = AiohttpRegistryClient(HttpClient(session), CLOCK)
        image = ImageReference.parse(f"127.0.0.1:{server.port}/team/nohead:{tag}")
        digest = await client.resolve(
            image, Endpoint(auth=AuthSettings()), Deadline.after(CLOCK, 10)
        )
        return digest, proxy
    finally:
        await server.close()


@pytest.mark.parametrize("head_status", [405, 501])
async def test_regression_head_refused_falls_back_to_get(
    plain_registry: RegistryServer, session: aiohttp.ClientSession, head_status: int
) -> None:
    manifest, blobs = image_manifest("no head")
    digest = await Pusher(session, plain_registry.url).image("team/nohead", "1.0", manifest, blobs)
    resolved, proxy = await resolve_through_proxy(plain_registry, session, "1.0", head_status)
    assert resolved == digest
    assert [m for m, _ in proxy.requests] == ["GET"]  # the refused HEAD never reached it


async def test_missing_tag_is_still_not_found_when_head_is_refused(
    plain_registry: RegistryServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(ConnaisseurError) as info:
        await resolve_through_proxy(plain_registry, session, "absent", 405)
    assert info.value.category is Category.IMAGE_NOT_FOUND
