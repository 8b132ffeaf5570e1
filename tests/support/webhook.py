"""The webhook's low-level server under aiohttp's test client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient

from connaisseur.config.container import Container, running
from connaisseur.entrypoints.webhook import webhook_server


class WebhookTestServer(BaseTestServer):
    """Serves a ``web.Server`` on a free port (aiohttp's ``TestServer`` takes applications)."""

    def __init__(self, server: web.Server, **kwargs: Any) -> None:
        self._server = server
        super().__init__(**kwargs)

    async def _make_runner(self, **kwargs: Any) -> web.ServerRunner:
        return web.ServerRunner(self._server, **kwargs)


@contextlib.asynccontextmanager
async def webhook_client(container: Container) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of the webhook over plain HTTP, the container running as ``serve`` runs
    it (outbound session open, closed afterwards)."""
    async with running(container):
        client: TestClient[Any, Any] = TestClient(WebhookTestServer(webhook_server(container)))
        async with client:
            yield client
