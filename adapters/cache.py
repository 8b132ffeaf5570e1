"""``Cache`` adapters (D5): in-process (TTL, bounded LRU) and Redis (TLS, password, HMAC).

Both never raise: a cache only saves work, so any failure is a miss and the image is verified.
Redis entries are ``<hmac>.<json>`` where the HMAC-SHA256 (per-install key) covers the key and
the JSON, so an entry written by anyone without the key — or moved to another key — is ignored.
A Redis outage trips a short circuit breaker so that an unreachable Redis does not add its
timeout to every admission.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from connaisseur.application.ports import Cache, CachedResult

log = logging.getLogger(__name__)

#: Called after every lookup with ``True`` for a hit (metrics).
LookupHook = Callable[[bool], None]
_MAX_VALUE_BYTES = 8 * 1024


class InMemoryCache(Cache):
    """A per-process LRU with expiry on a monotonic clock."""

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_lookup: LookupHook | None = None,
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, CachedResult]] = OrderedDict()
        self._max = max(1, max_entries)
        self._monotonic = monotonic
        self._on_lookup = on_lookup

    async def get(self, key: str) -> CachedResult | None:
        entry = self._entries.get(key)
        value = None
        if entry is not None:
            if entry[0] > self._monotonic():
                self._entries.move_to_end(key)
                value = entry[1]
            else:
                del self._entries[key]
        _report(self._on_lookup, value)
        return value

    async def put(self, key: str, value: CachedResult, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return
        self._entries[key] = (self._monotonic() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class RedisCache(Cache):
    """Redis with HMAC-protected entries, short timeouts and a circuit breaker."""

    def __init__(
        self,
        client: aioredis.Redis,
        hmac_key: bytes,
        *,
        prefix: str = "connaisseur:v1:",
        breaker_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_lookup: LookupHook | None = None,
    ) -> None:
        self._client = client
        self._key = hmac_key
        self._prefix = prefix
        self._breaker_seconds = breaker_seconds
        self._monotonic = monotonic
        self._open_until = 0.0
        self._on_lookup = on_lookup

    async def get(self, key: str) -> CachedResult | None:
        value = None
        if self._available():
            try:
                raw = await self._client.get(self._prefix + key)
            except (RedisError, OSError, TimeoutError) as e:
                self._trip("read", e)
            else:
                value = self._decode(key, raw) if raw is not None else None
        _report(self._on_lookup, value)
        return value

    async def put(self, key: str, value: CachedResult, ttl_seconds: int) -> None:
        if ttl_seconds <= 0 or not self._available():
            return
        try:
            await self._client.set(self._prefix + key, self._encode(key, value), ex=ttl_seconds)
        except (RedisError, OSError, TimeoutError) as e:
            self._trip("write", e)

    async def close(self) -> None:
        await self._client.aclose()

    def _available(self) -> bool:
        return self._monotonic() >= self._open_until

    def _trip(self, what: str, error: BaseException) -> None:
        # No credentials in the message: redis-py errors name host and port only.
        log.warning(
            "cache %s failed (%s); verifying without the cache for %.0fs",
            what,
            type(error).__name__,
            self._breaker_seconds,
        )
        self._open_until = self._monotonic() + self._breaker_seconds

    def _mac(self, key: str, payload: bytes) -> str:
        return hmac.new(self._key, key.encode() + b"\0" + payload, hashlib.sha256).hexdigest()

    def _encode(self, key: str, value: CachedResult) -> bytes:
        payload = json.dumps(
            {"digest": value.digest, "category": value.category, "message": value.message},
            separators=(",", ":"),
        ).encode()
        return self._mac(key, payload).encode() + b"." + payload

    def _decode(self, key: str, raw: Any) -> CachedResult | None:
        if not isinstance(raw, bytes) or len(raw) > _MAX_VALUE_BYTES:
            return None
        mac, dot, payload = raw.partition(b".")
        if not dot or not hmac.compare_digest(mac, self._mac(key, payload).encode()):
            log.warning("ignoring a cache entry that fails its integrity check")
            return None
        try:
            data = json.loads(payload)
            return CachedResult(
                digest=_str_or_none(data.get("digest")),
                category=_str_or_none(data.get("category")),
                message=_str_or_none(data.get("message")),
            )
        except (ValueError, AttributeError):
            return None


def redis_client(
    host: str,
    port: int,
    password: str | None,
    *,
    tls: bool,
    ca_file: str | None,
    timeout_seconds: float = 0.25,
) -> aioredis.Redis:
    """A client with short timeouts; with ``tls`` it trusts only ``ca_file`` (TLS ≥ 1.2).

    Raises:
        OSError, ssl.SSLError: the CA file is unreadable or invalid (fatal at start-up).
    """
    options: dict[str, Any] = {}
    if tls:
        ssl.create_default_context(cafile=ca_file)  # fail at start-up on a bad CA file
        options.update(
            ssl=True,
            ssl_ca_certs=ca_file,
            ssl_cert_reqs="required",
            ssl_min_version=ssl.TLSVersion.TLSv1_2,
        )
    return aioredis.Redis(
        host=host,
        port=port,
        password=password,
        db=0,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        # No retries: a lookup only saves work, and the breaker handles outages.
        retry=Retry(NoBackoff(), 0),
        **options,
    )


def load_hmac_key(secret: str | None, path: Path) -> bytes:
    """The per-install HMAC key: ``secret`` if given, else the file, else a new one written there.

    When the file cannot be written either, the key lives only in this process: entries then
    cannot be shared between replicas (safe, merely fewer hits), and the log says so.
    """
    if secret:
        return secret.encode()
    try:
        key = path.read_bytes().strip()
        if key:
            return key
    except OSError:
        pass
    key = secrets.token_hex(32).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        log.warning("generated a cache HMAC key in %s (share it between replicas)", path)
    except OSError:
        log.warning(
            "no cache HMAC key (CACHE_HMAC_KEY or %s): using a per-process key; replicas will "
            "not share cache entries",
            path,
        )
    return key


def _report(hook: LookupHook | None, value: CachedResult | None) -> None:
    if hook is not None:
        hook(value is not None)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
