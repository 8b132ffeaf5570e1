"""The conformance ``notary`` mock server (cases.yaml ``mock_servers.notary``), in aiohttp.

Serves the byte-exact bodies under ``notaryv1/served/`` with the Bearer token flow of the
upstream mock: ``/v2/`` answers 401 with a challenge pointing at ``/token``; ``alice-image``
needs Basic ``test``/``test`` at the token endpoint; trust data needs ``Bearer a.b.c``.
It can also serve any in-memory ``{path: bytes}`` map (the simulator's files).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.support.servers import free_port

TOKEN = "a.b.c"
TRUNCATED_ROLE = "return-invalid-response-body-please"


@dataclass
class NotaryMock:
    """A running mock; ``requests`` records ``METHOD path`` of every request in order."""

    url: str
    host: str
    requests: list[str] = field(default_factory=list)


def _authorised(request: web.Request) -> bool:
    return request.headers.get("Authorization") == f"Bearer {TOKEN}"


def _token_handler(request: web.Request) -> web.Response:
    scope = request.query.get("scope", "")
    repo = scope.removeprefix("repository:").rsplit(":", 1)[0]
    if repo.rsplit("/", 1)[-1] == "alice-image":
        expected = "Basic " + base64.b64encode(b"test:test").decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
    return web.json_response({"token": TOKEN})


def build_app(
    served: Path | None,
    files: Mapping[str, bytes] | None = None,
    *,
    auth: bool = True,
    mock: NotaryMock | None = None,
) -> web.Application:
    """The mock as an aiohttp app: ``served`` is the ``served/`` directory, ``files`` maps
    ``/v2/<gun>/_trust/tuf/<role>.json`` paths to bodies."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if mock is not None:
            mock.requests.append(f"{request.method} {request.path}")
        path = request.path
        if path == "/token":
            return _token_handler(request)
        if "/_trust/tuf/" in path:
            if auth and not _authorised(request):
                return web.Response(status=401)
            if path.endswith(f"/{TRUNCATED_ROLE}.json"):
                resp = web.StreamResponse(status=200, headers={"Content-Length": "1"})
                await resp.prepare(request)
                # Promise one byte, send none, hang up: the client sees a truncated body.
                if request.transport is not None:
                    request.transport.close()
                return resp
            return _serve(path)
        if auth and not request.headers.get("Authorization", "").startswith("Bearer "):
            realm = f"http://{request.host}/token"
            challenge = f'Bearer realm="{realm}",service="auth",scope="repository:catalog:*"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.Response(text="ok")

    def _serve(path: str) -> web.Response:
        if files is not None and path in files:
            return web.Response(body=files[path])
        if served is not None:
            candidate = (served / path.lstrip("/")).resolve()
            if candidate.is_relative_to(served.resolve()) and candidate.is_file():
                return web.Response(body=candidate.read_bytes())
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


@contextlib.asynccontextmanager
async def notary_mock(
    served: Path | None = None, files: Mapping[str, bytes] | None = None, *, auth: bool = True
) -> AsyncIterator[NotaryMock]:
    """Run the mock on 127.0.0.1 on a free port for the duration of the block."""
    port = free_port()
    mock = NotaryMock(url=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}")
    runner = web.AppRunner(build_app(served, files, auth=auth, mock=mock))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield mock
    finally:
        await runner.cleanup()
