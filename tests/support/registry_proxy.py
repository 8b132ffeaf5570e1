"""A small aiohttp proxy in front of a real registry: injected latency, request counting, and
an optional Bearer token challenge (a stand-in token service: the Debian registry only does
Basic auth natively); :class:`PairingProxy` also shows that requests were sent together."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.support.servers import serving
from tests.support.tls import TlsFiles, server_context

_HOP_HEADERS = {"host", "authorization", "transfer-encoding", "content-length", "connection"}
TOKEN = "proxy-token-1"


@dataclass
class RegistryProxy:
    upstream: str
    latency_seconds: float = 0.0
    bearer: bool = False
    token_lifetime_seconds: int = 300
    requests: list[tuple[str, str]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self._token)
        app.router.add_route("*", "/{path:.*}", self._forward)
        app.on_cleanup.append(self._close)
        return app

    def reset(self) -> None:
        self.requests.clear()
        self.token_requests.clear()

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _token(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.latency_seconds)
        self.token_requests.append(request.query_string)
        return web.json_response({"token": TOKEN, "expires_in": self.token_lifetime_seconds})

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.latency_seconds)
        self.requests.append((request.method, request.path_qs))
        if self.bearer and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f"{request.scheme}://{request.host}/token"
            challenge = f'Bearer realm="{realm}",service="proxy"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(
                status=resp.status, headers=out, body=body if request.method != "HEAD" else None
            )


@dataclass
class PairingProxy(RegistryProxy):
    """Holds each request for a path in ``together`` until all of them have arrived (at most
    2 s, then 504): requests sent one after the other never get past it."""

    together: frozenset[str] = frozenset()
    _arrived: set[str] = field(default_factory=set)
    _all_here: asyncio.Event = field(default_factory=asyncio.Event)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.together:
            self._arrived.add(request.path)
            if self._arrived >= self.together:
                self._all_here.set()
            try:
                await asyncio.wait_for(self._all_here.wait(), timeout=2)
            except TimeoutError:
                return web.Response(status=504)
        return await super()._forward(request)


@dataclass(frozen=True)
class Proxied:
    """A :class:`PairingProxy` demanding a Bearer token, served over HTTPS, as a client
    reaches it."""

    proxy: PairingProxy
    host: str
    ca_pem: str


@contextlib.asynccontextmanager
async def pairing_proxy(upstream: str, tls: TlsFiles) -> AsyncIterator[Proxied]:
    proxy = PairingProxy(upstream, bearer=True)
    async with serving(proxy.app(), server_context(tls.cert_file, tls.key_file)) as url:
        yield Proxied(proxy=proxy, host=url.removeprefix("https://"), ca_pem=tls.ca_pem)


def now() -> float:
    return time.perf_counter()
