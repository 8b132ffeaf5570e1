"""Upstreams that misbehave on purpose, reachable under any host name, all on 127.0.0.1.

:class:`NamedHosts` is an aiohttp resolver that answers 127.0.0.1 for every name, so a test can
give one local server a non-loopback name (``registry.test``) — the policies under test judge
names, and nothing leaves the machine. :class:`Upstream` is one aiohttp server (HTTPS with the
test CA, or plain HTTP) whose routes a test scripts, and which records every request it gets.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.support.servers import serving
from tests.support.tls import TlsFiles, make_tls, server_context

#: The names the test CA's server certificate covers.
NAMES = ("registry.test", "cdn.test", "auth.test", "notary.test", "127.0.0.1", "localhost")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NamedHosts(AbstractResolver):
    """Resolves every host name to 127.0.0.1."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


@contextlib.asynccontextmanager
async def named_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose resolver is :class:`NamedHosts`."""
    connector = aiohttp.TCPConnector(resolver=NamedHosts())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def tls_for_names(directory: Path) -> TlsFiles:
    return make_tls(directory, NAMES)


@dataclass
class Seen:
    """One request as the server got it."""

    host: str
    path_qs: str
    authorization: str | None


@dataclass
class Upstream:
    """One scripted server: ``routes`` maps a path to a handler; everything else is a 404."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.host, request.path_qs, request.headers.get("Authorization")))
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app


@contextlib.asynccontextmanager
async def running(upstream: Upstream, tls: TlsFiles | None) -> AsyncIterator[Upstream]:
    """Serve ``upstream`` (over HTTPS when ``tls`` is given); sets its ``port``."""
    context = server_context(tls.cert_file, tls.key_file) if tls else None
    async with serving(upstream.app(), context) as base:
        upstream.port = int(base.rsplit(":", 1)[1])
        yield upstream


def challenge(scheme: str, **params: str) -> dict[str, str]:
    """A ``WWW-Authenticate`` header."""
    rendered = ",".join(f'{k}="{v}"' for k, v in params.items())
    return {"WWW-Authenticate": f"{scheme} {rendered}".strip()}


def redirect(location: str, status: int = 307) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


def respond(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, headers=headers or {})

    return handler
