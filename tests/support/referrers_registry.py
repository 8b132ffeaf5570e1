"""A small HTTP registry whose OCI referrers API can be switched on (an upgrade), whose answers
vary, and which can demand a Bearer token: for the registry adapter's referrers memory and
token sharing (the Debian registry has no referrers API)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field

from aiohttp import web

from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings

SUBJECT = "sha256:" + "ab" * 32
TAG = SUBJECT.replace(":", "-")
NOTARY = "application/vnd.cncf.notary.signature"
ENDPOINT = Endpoint(auth=AuthSettings())


def index(*digests: str) -> bytes:
    manifests = [{"digest": d, "artifactType": NOTARY} for d in digests]
    return json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()


@dataclass
class Stub:
    """A registry whose referrers API can be switched on (an upgrade) and whose answers vary."""

    has_api: bool = False
    api_listing: bytes = index("sha256:" + "a1" * 32)
    api_status: int = 200
    tag_listing: bytes | None = index("sha256:" + "7a" * 32)
    tag_status: int = 200
    both_at_once: bool = False  # the API answers only once the tag request has arrived too
    bearer: bool = False
    requests: list[str] = field(default_factory=list)
    tokens: int = 0
    _tag_seen: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self.token)
        app.router.add_get("/v2/team/app/referrers/{digest}", self.referrers)
        app.router.add_get("/v2/team/app/manifests/{ref}", self.manifest)
        return app

    def denied(self, request: web.Request) -> web.Response | None:
        if not self.bearer or request.headers.get("Authorization") == "Bearer t":
            return None
        challenge = f'Bearer realm="http://{request.host}/token",service="stub"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    async def token(self, request: web.Request) -> web.Response:
        self.tokens += 1
        await asyncio.sleep(0.05)  # long enough for the other callers to be waiting
        return web.json_response({"token": "t", "expires_in": 300})

    async def referrers(self, request: web.Request) -> web.Response:
        self.requests.append("referrers")
        if self.both_at_once:
            await asyncio.wait_for(self._tag_seen.wait(), timeout=2)
        if not self.has_api:
            return web.Response(status=404)
        return web.Response(status=self.api_status, body=self.api_listing)

    async def manifest(self, request: web.Request) -> web.Response:
        if (denied := self.denied(request)) is not None:
            return denied
        ref = request.match_info["ref"]
        self.requests.append("tag" if ref == TAG else ref)
        self._tag_seen.set()
        body = self.tag_listing if ref == TAG else b'{"schemaVersion": 2}'
        if body is None:
            return web.Response(status=404)
        if self.tag_status != 200 and ref == TAG:
            return web.Response(status=self.tag_status)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return web.Response(body=body, headers={"Docker-Content-Digest": digest})
