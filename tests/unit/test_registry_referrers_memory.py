"""The registry adapter remembers whether a registry has the OCI referrers API, asks the API and
the tag schema at once while it does not know, and shares one Bearer token among concurrent
requests — against a small HTTP registry stub (the Debian registry has no referrers API; the
real-registry round trips are covered by ``tests/integration/test_notation_roundtrips.py``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import REFERRERS_API_MEMORY_SECONDS, AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference
from tests.support.fakes import FakeClock

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


Client = tuple[AiohttpRegistryClient, FakeClock, str]


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
async def client(stub: Stub) -> AsyncIterator[Client]:
    clock = FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), frozen=True)
    async with (
        TestServer(stub.app(), host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
    ):
        registry = AiohttpRegistryClient(HttpClient(session), clock)
        yield registry, clock, f"127.0.0.1:{server.port}"


async def referrers(client: Client) -> list[str]:
    registry, clock, host = client
    image = ImageReference.parse(f"{host}/team/app:1")
    found = await registry.referrers(image, SUBJECT, NOTARY, ENDPOINT, Deadline.after(clock, 10))
    return [d["digest"] for d in found]


async def test_unknown_registry_is_asked_both_ways_at_once_then_remembered_without_api(
    stub: Stub, client: Client
) -> None:
    stub.both_at_once = True
    assert await referrers(client) == ["sha256:" + "7a" * 32]
    assert sorted(stub.requests) == ["referrers", "tag"]
    stub.requests.clear()
    stub.both_at_once = False
    assert await referrers(client) == ["sha256:" + "7a" * 32]
    assert stub.requests == ["tag"]


async def test_registry_with_the_api_is_remembered_and_its_answer_wins(
    stub: Stub, client: Client
) -> None:
    stub.has_api = True
    assert await referrers(client) == ["sha256:" + "a1" * 32]  # not the stale tag's listing
    stub.requests.clear()
    assert await referrers(client) == ["sha256:" + "a1" * 32]
    assert stub.requests == ["referrers"]


async def test_the_api_answer_stands_even_when_the_tag_lookup_fails(
    stub: Stub, client: Client
) -> None:
    stub.has_api, stub.tag_status = True, 500
    assert await referrers(client) == ["sha256:" + "a1" * 32]


async def test_an_api_failure_is_not_hidden_by_the_tag_schema(stub: Stub, client: Client) -> None:
    stub.has_api, stub.api_status = True, 503
    with pytest.raises(VerificationError) as info:
        await referrers(client)
    assert info.value.category is Category.UNAVAILABLE


async def test_remembered_absence_never_hides_signatures_after_an_upgrade(
    stub: Stub, client: Client
) -> None:
    stub.tag_listing = None
    assert await referrers(client) == []  # no API, no tag: no signatures
    stub.has_api = True  # the registry is upgraded within the memory's lifetime
    stub.requests.clear()
    assert await referrers(client) == ["sha256:" + "a1" * 32]
    assert stub.requests == ["tag", "referrers"]  # the remembered route first, then the other
    stub.requests.clear()
    assert await referrers(client) == ["sha256:" + "a1" * 32]
    assert stub.requests == ["referrers"]


async def test_the_memory_expires(stub: Stub, client: Client) -> None:
    await referrers(client)
    client[1].advance(REFERRERS_API_MEMORY_SECONDS + 1)
    stub.requests.clear()
    await referrers(client)
    assert sorted(stub.requests) == ["referrers", "tag"]


async def test_concurrent_requests_meeting_a_challenge_share_one_token(
    stub: Stub, client: Client
) -> None:
    stub.bearer = True
    registry, clock, host = client
    image = ImageReference.parse(f"{host}/team/app:1")
    deadline = Deadline.after(clock, 10)
    manifests = await asyncio.gather(
        *(registry.manifest(image, f"v{i}", ENDPOINT, deadline) for i in range(3))
    )
    assert len(manifests) == 3
    assert stub.tokens == 1
