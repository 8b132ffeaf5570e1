"""``RedisCache`` against a real Redis: TLS + password, HMAC integrity, TTL, outages (D5).

Backend: ``redis-server`` (TLS on) on a free loopback port, once as Debian's binary and once in a
container (the ``backend`` fixture, tests/integration/conftest.py). Each test prints which ran.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from connaisseur.adapters.cache import RedisCache, load_hmac_key, redis_client
from connaisseur.application.caching import cache_key
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import CachedResult
from connaisseur.application.verify import CachePolicy, VerifyImage, VerifyImageCommand
from connaisseur.domain.policy import Policy, Rule
from tests.support.containers import Backend
from tests.support.fakes import FakeClock, FakeMetrics
from tests.support.feature_doubles import MOCK_DIGEST, MockValidator
from tests.support.servers import RedisServer, redis_server
from tests.support.tls import make_tls

pytestmark = pytest.mark.integration
KEY = b"k" * 32


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[RedisServer]:
    workdir = tmp_path_factory.mktemp("redis")
    with redis_server(workdir, make_tls(workdir / "tls"), backend=backend) as server:
        print(f"redis backend: {server.backend} (TLS)")
        yield server


def _client(server: RedisServer, password: str | None = None) -> aioredis.Redis:
    return redis_client(
        server.host,
        server.port,
        password or server.password,
        tls=server.ca_file is not None,
        ca_file=str(server.ca_file) if server.ca_file else None,
    )


async def test_round_trip_over_tls_with_password(redis: RedisServer) -> None:
    cache = RedisCache(_client(redis), KEY)
    value = CachedResult(digest=MOCK_DIGEST)
    await cache.put("img:1|cfg", value, 30)
    assert await cache.get("img:1|cfg") == value
    denial = CachedResult(category="signature_invalid", message="no valid signature")
    await cache.put("img:2|cfg", denial, 30)
    assert await cache.get("img:2|cfg") == denial
    observer = _client(redis)  # what any other Redis client sees of the entry
    ttl = await observer.ttl("connaisseur:v1:img:1|cfg")
    assert 0 < ttl <= 30
    await cache.close()
    await observer.aclose()


async def test_entries_failing_the_hmac_are_ignored(redis: RedisServer) -> None:
    honest = RedisCache(_client(redis), KEY)
    await honest.put("img:3|cfg", CachedResult(digest=MOCK_DIGEST), 30)
    attacker = _client(redis)  # can write to Redis, but does not have the HMAC key
    raw = await attacker.get("connaisseur:v1:img:3|cfg")
    assert isinstance(raw, bytes)  # stored, and read back undecoded
    assert raw.split(b".", 1)[0] != b""  # stored with its MAC
    # someone without the key writes a forged entry, or moves an entry to another image
    forged = b"00" * 32 + b'.{"digest":"sha256:' + b"6" * 64 + b'","category":null,"message":null}'
    await attacker.set("connaisseur:v1:img:4|cfg", forged)
    await attacker.set("connaisseur:v1:img:5|cfg", raw)
    await attacker.aclose()
    assert await honest.get("img:4|cfg") is None
    assert await honest.get("img:5|cfg") is None
    # another install (another key) cannot read this one's entries
    other = RedisCache(_client(redis), b"x" * 32)
    assert await other.get("img:3|cfg") is None
    await honest.close()
    await other.close()


async def test_wrong_password_is_a_miss_not_an_error(redis: RedisServer) -> None:
    cache = RedisCache(_client(redis, password="wrong"), KEY)
    await cache.put("img:6|cfg", CachedResult(digest=MOCK_DIGEST), 30)
    assert await cache.get("img:6|cfg") is None
    await cache.close()


async def test_verifications_share_results_through_redis(redis: RedisServer) -> None:
    validator = MockValidator("v", "cosign", "mock_allow")
    metrics = FakeMetrics()

    def verify_image() -> VerifyImage:
        caching = CachePolicy(cache=RedisCache(_client(redis), KEY), ttl_seconds=30)
        policy = Policy((Rule(pattern="*", validator="v"),))
        return VerifyImage(policy, {"v": validator}, metrics, caching)

    deadline = Deadline.after(FakeClock(), 5)
    command = VerifyImageCommand(image="registry.test/shared:1")
    first = await verify_image().execute(command, deadline)
    second = await verify_image().execute(command, deadline)  # a second replica
    assert first.allowed
    assert second.allowed
    assert second.digest == MOCK_DIGEST
    assert str(second.skipped) == "cache hit"
    assert validator.calls == ["registry.test/shared:1"]


async def test_redis_going_away_never_fails_an_admission(tmp_path: Path, backend: Backend) -> None:
    """An outage mid-run: lookups become misses, quickly, and verification carries on."""
    validator = MockValidator("v", "cosign", "mock_allow")
    with redis_server(tmp_path / "r", make_tls(tmp_path / "tls"), backend=backend) as server:
        cache = RedisCache(_client(server), KEY, breaker_seconds=30)
        policy = Policy((Rule(pattern="*", validator="v"),))
        verify = VerifyImage(
            policy, {"v": validator}, FakeMetrics(), CachePolicy(cache=cache, ttl_seconds=30)
        )
        deadline = Deadline.after(FakeClock(), 10)
        await verify.execute(VerifyImageCommand(image="registry.test/a:1"), deadline)
        hit = await verify.execute(VerifyImageCommand(image="registry.test/a:1"), deadline)
        assert str(hit.skipped) == "cache hit"
    # the server is gone now
    started = time.perf_counter()
    verdict = await verify.execute(VerifyImageCommand(image="registry.test/a:1"), deadline)
    first_miss = time.perf_counter() - started
    assert verdict.allowed  # verified again, not failed
    assert verdict.skipped is None
    assert first_miss < 2.0
    started = time.perf_counter()
    for _ in range(20):  # the breaker is open: no connection attempts at all
        assert await cache.get(cache_key("registry.test/a:1", "x")) is None
    assert time.perf_counter() - started < 0.1
    assert len(validator.calls) == 2
    await cache.close()


async def test_unreachable_redis_costs_little(tmp_path: Path) -> None:
    from tests.support.servers import free_port

    cache = RedisCache(redis_client("127.0.0.1", free_port(), "pw", tls=False, ca_file=None), KEY)
    started = time.perf_counter()
    assert await cache.get("nothing") is None
    await cache.put("nothing", CachedResult(digest=MOCK_DIGEST), 30)
    assert time.perf_counter() - started < 1.0
    await cache.close()


def test_hmac_key_is_generated_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "hmac.key"
    first = load_hmac_key(None, path)
    assert path.exists()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_hmac_key(None, path) == first
    assert load_hmac_key("from-env", path) == b"from-env"


def test_bad_redis_ca_file_stops_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "tls.crt"
    bad.write_text("not a certificate")
    with pytest.raises((OSError, ValueError)):  # ssl.SSLError is an OSError
        redis_client("127.0.0.1", 6379, None, tls=True, ca_file=str(bad))


async def test_concurrent_identical_verifications_are_coalesced() -> None:
    validator = MockValidator("v", "cosign", "mock_allow", delay=0.05)
    policy = Policy((Rule(pattern="*", validator="v"),))
    verify = VerifyImage(policy, {"v": validator}, FakeMetrics())
    deadline = Deadline.after(FakeClock(), 5)
    command = VerifyImageCommand(image="registry.test/busy:1")
    verdicts = await asyncio.gather(*(verify.execute(command, deadline) for _ in range(10)))
    assert all(v.allowed for v in verdicts)
    assert validator.calls == ["registry.test/busy:1"]
