"""The registry adapter remembers whether a registry has the OCI referrers API, asks the API and
the tag schema at once while it does not know, and shares one Bearer token among concurrent
requests — against a small HTTP registry stub (the Debian registry has no referrers API; the
real-registry round trips are covered by ``tests/integration/test_notation_roundtrips.py``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import REFERRERS_API_MEMORY_SECONDS, AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference
from tests.support.fakes import FakeClock
from tests.support.referrers_registry import ENDPOINT, NOTARY, SUBJECT, Stub

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
    image = ImageReference.parse(f"{host}/team/app@{SUBJECT}")
    found = await registry.referrers(image, NOTARY, ENDPOINT, Deadline.after(clock, 10))
    return [d.digest or "" for d in found]


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
