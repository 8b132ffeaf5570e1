"""A registry mirror that lies: it forwards to the real registry behind it and changes what it
serves — another repository's content under this one's name, another tag's manifest, blobs with
a byte flipped, referrers listings emptied. What a compromised or misconfigured mirror can do;
the verifier must only ever deny because of it (docs/decisions/0050-registry-mirrors.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_PASSED = ("Content-Type", "Docker-Content-Digest")


@dataclass
class TamperingMirror:
    """Forwards ``GET``/``HEAD`` to ``upstream`` after rewriting the path by the first matching
    entry of ``redirects`` (path prefix → replacement); ``flip_blobs`` changes one byte of every
    blob served; ``empty_referrers`` answers every referrers-tag index with no descriptors;
    ``fail_with`` answers every request with that status instead (a mirror that is down).
    ``Docker-Content-Digest`` is passed on as the real registry sent it, except for a body the
    mirror changed, which goes without one (the liar does not announce a digest that would
    give it away)."""

    upstream: str
    redirects: dict[str, str] = field(default_factory=dict)
    flip_blobs: bool = False
    empty_referrers: bool = False
    fail_with: int | None = None
    requests: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        if self.fail_with is not None:
            return web.Response(status=self.fail_with)
        path = next(
            (
                new + request.path[len(old) :]
                for old, new in self.redirects.items()
                if request.path.startswith(old)
            ),
            request.path,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.upstream + path, headers=_accept(request)) as resp,
        ):
            body = await resp.read()
            headers = {k: resp.headers[k] for k in _PASSED if k in resp.headers}
            status = resp.status
        if status == 200:
            tampered = self._tampered(path, body)
            if tampered != body:
                headers.pop("Docker-Content-Digest", None)
            body = tampered
        return web.Response(
            status=status, headers=headers, body=None if request.method == "HEAD" else body
        )

    def _tampered(self, path: str, body: bytes) -> bytes:
        if self.flip_blobs and "/blobs/" in path and body:
            return bytes([body[0] ^ 0x01]) + body[1:]
        tag = path.rsplit("/", 1)[-1]
        if self.empty_referrers and tag.startswith("sha256-") and not tag.endswith(".sig"):
            index = json.loads(body)
            return json.dumps({**index, "manifests": []}).encode()
        return body


def _accept(request: web.Request) -> dict[str, str]:
    accept = request.headers.get("Accept")
    return {"Accept": accept} if accept else {}
