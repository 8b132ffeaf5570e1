"""The rendered Redis and the rendered Connaisseur pods, run for real against each other.

Debian's ``redis-server`` runs the chart's Redis command line with the chart's TLS material and
password; two Connaisseur "replicas" build their cache with the application's own
``config.container.make_cache`` from the rendered pod (environment and mounted files). Cluster DNS
and the Service are stood in for by name resolution: the Service name and port lead to the local
server, so the client connects — and checks the certificate — under the Service name, as in a
cluster.
"""

from __future__ import annotations

import base64
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connaisseur.adapters.cache import RedisCache
from connaisseur.adapters.metrics import PrometheusMetrics
from connaisseur.application.ports import CachedResult
from connaisseur.config.container import make_cache
from tests.support.helm import Manifest, find
from tests.support.helm_pod import command_line, in_root, served_settings
from tests.support.servers import free_port, running

pytestmark = [pytest.mark.helm, pytest.mark.integration]
DIGEST = "sha256:" + "a" * 64


def replica(manifests: list[Manifest], root: Path) -> RedisCache:
    settings = served_settings(manifests, root)
    infra = settings.infra
    infra = replace(
        infra,
        redis_ca_file=str(in_root(root, infra.redis_ca_file)),
        cache_hmac_key_file=str(in_root(root, infra.cache_hmac_key_file)),
    )
    cache = make_cache(replace(settings, infra=infra), PrometheusMetrics())
    assert isinstance(cache, RedisCache)
    return cache


def route_service(monkeypatch: pytest.MonkeyPatch, service: tuple[str, int], port: int) -> None:
    """Resolve the Service name and port to the local server (DNS + kube-proxy stand-in)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, service_port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host, int(service_port or 0)) == service:
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, service_port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def test_replicas_share_entries_through_the_rendered_redis(
    default_manifests: list[Manifest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed (apt-get install redis-server)"
    port = free_port()
    args = command_line(default_manifests, "connaisseur-redis", tmp_path / "redis")
    # only where it listens changes: a free loopback port instead of the pod's 6379
    cmd = [binary, *args, "--tls-port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--dir", str(tmp_path / "redis")]
    with running(cmd, port, tmp_path / "redis.log"):
        service = find(default_manifests, "Service", "connaisseur-redis-service")
        route_service(monkeypatch, (service["metadata"]["name"], 6379), port)
        first = replica(default_manifests, tmp_path / "pod-a")
        second = replica(default_manifests, tmp_path / "pod-b")
        await first.put("docker.io/library/app:1|cfg", CachedResult(digest=DIGEST), 30)
        hit = await second.get("docker.io/library/app:1|cfg")
        # another install (its own generated key) cannot use this install's entries
        other = replica(
            [m for m in default_manifests if m["metadata"]["name"] != "connaisseur-cache-key"]
            + [
                {
                    **find(default_manifests, "Secret", "connaisseur-cache-key"),
                    "data": {"hmac.key": base64.b64encode(b"another-install" * 3).decode()},
                }
            ],
            tmp_path / "pod-other",
        )
        foreign = await other.get("docker.io/library/app:1|cfg")
        await other.put("docker.io/library/app:2|cfg", CachedResult(digest=DIGEST), 30)
        own = await other.get("docker.io/library/app:2|cfg")  # it does reach Redis
        for cache in (first, second, other):
            await cache.close()
    assert hit == CachedResult(digest=DIGEST)
    assert foreign is None
    assert own == CachedResult(digest=DIGEST)
