"""The registry adapter's HTTPS → plain-HTTP fallback for loopback registries, against a real
HTTPS server (the conformance ``notation_registry`` mock with its own CA).

Regressions, named after the bugs:
* an HTTPS outage of a loopback registry pinned it to plain HTTP for the life of the process,
  so it stayed unreachable after it came back;
* an untrusted TLS certificate triggered the plain-HTTP fallback, whose failure
  ("cannot reach …: ServerDisconnectedError") hid the real cause.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from tests.support.conformance import DATA, NOTATION_CLOCK
from tests.support.fakes import FakeClock
from tests.support.notation_tree_registry import NotationTreeRegistry
from tests.support.servers import free_port
from tests.support.threaded_server import serve_in_thread
from tests.support.tls import server_context

pytestmark = pytest.mark.integration
NOTATION = DATA / "notation"
CA = (NOTATION / "ca.pem").read_text()
SIGNED = "sse-secure-systems/testimage:notation-sign"
SIGNED_DIGEST = "sha256:a136cc4e785798e5e8483047cf621cf0a0300a93d47703a3f066c340c070f5cf"


def tls_context() -> ssl.SSLContext:
    return server_context(NOTATION / "server-cert.pem", NOTATION / "server-key.pem")


@pytest.fixture
async def client() -> AsyncIterator[AiohttpRegistryClient]:
    async with aiohttp.ClientSession() as session:
        yield AiohttpRegistryClient(HttpClient(session), FakeClock(NOTATION_CLOCK))


async def resolve(client: AiohttpRegistryClient, port: int, ca_pem: str | None) -> str:
    image = ImageReference.parse(f"127.0.0.1:{port}/{SIGNED}")
    endpoint = Endpoint(auth=AuthSettings(), ca_pem=ca_pem)
    return await client.resolve(image, endpoint, Deadline.after(FakeClock(NOTATION_CLOCK), 5))


async def test_regression_https_outage_pinned_loopback_registry_to_http(
    client: AiohttpRegistryClient,
) -> None:
    port = free_port()
    with pytest.raises(ConnaisseurError) as info:  # nothing listens yet: HTTPS and HTTP refused
        await resolve(client, port, CA)
    assert info.value.category is Category.FETCH_FAILED
    with serve_in_thread(NotationTreeRegistry(NOTATION).app, ssl_context=tls_context(), port=port):
        assert await resolve(client, port, CA) == SIGNED_DIGEST


async def test_regression_untrusted_certificate_is_reported_not_downgraded(
    client: AiohttpRegistryClient,
) -> None:
    registry = NotationTreeRegistry(NOTATION)
    with serve_in_thread(registry.app, ssl_context=tls_context()) as port:
        with pytest.raises(ConnaisseurError) as info:
            await resolve(client, port, None)  # the mock's CA is not a system root
        assert info.value.category is Category.FETCH_FAILED
        assert "TLS certificate" in info.value.message
        assert f"127.0.0.1:{port}" in info.value.message
        assert registry.requests == []  # no request got through, over TLS or otherwise
        assert await resolve(client, port, CA) == SIGNED_DIGEST  # the right root: HTTPS works


async def test_plain_http_loopback_registry_is_still_reached_through_the_fallback(
    client: AiohttpRegistryClient,
) -> None:
    registry = NotationTreeRegistry(NOTATION)
    with serve_in_thread(registry.app) as port:
        assert await resolve(client, port, None) == SIGNED_DIGEST
        assert await resolve(client, port, None) == SIGNED_DIGEST
    assert len(registry.requests) == 2  # the second request went straight to HTTP
