"""Real servers for integration tests: started on 127.0.0.1 with free ports, torn down after.

Each runs as Debian's binary or as a container with the same command line (``backend``, see
tests/support/containers.py); the returned server names the backend that ran.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from aiohttp import web

from tests.support import containers
from tests.support.containers import Backend
from tests.support.processes import free_port as free_port  # re-exported
from tests.support.processes import running as running  # re-exported for older imports
from tests.support.processes import wait_for_port as wait_for_port  # re-exported
from tests.support.tls import TlsFiles, make_tls


@dataclass(frozen=True)
class RegistryServer:
    """A running CNCF distribution registry."""

    host: str  # "127.0.0.1:PORT"
    scheme: str
    ca_pem: str | None
    backend: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


@dataclass(frozen=True)
class TokenAuth:
    """A registry's ``auth.token`` section: it trusts tokens signed by ``rootcertbundle``'s
    certificate and sends clients to ``realm`` for them."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path

    def lines(self) -> list[str]:
        return [
            "auth:",
            "  token:",
            f"    realm: {self.realm}",
            f"    service: {self.service}",
            f"    issuer: {self.issuer}",
            f"    rootcertbundle: {self.rootcertbundle}",
        ]


@contextlib.contextmanager
def registry_server(
    workdir: Path,
    tls: TlsFiles | None = None,
    htpasswd: Path | None = None,
    backend: Backend | None = None,
    proxy_remote: str | None = None,
    token: TokenAuth | None = None,
) -> Iterator[RegistryServer]:
    """A CNCF distribution registry (Debian's ``docker-registry`` 2.8, or an image that takes
    ``serve CONFIG`` like ``registry:2``) with filesystem storage under ``workdir`` (a registry
    started later on the same ``workdir`` serves what this one stored); ``proxy_remote`` makes
    it a pull-through cache of that registry (``proxy.remoteurl``), ``token`` a token-auth one."""
    if htpasswd is not None and token is not None:
        raise ValueError("a registry has one auth section: htpasswd or token")
    ran = containers.resolve(backend, [containers.REGISTRY])
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 0.1",
        "log: {level: warn}",
        "storage:",
        f"  filesystem: {{rootdirectory: {workdir / 'data'}}}",
        "  delete: {enabled: true}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    mounts = [workdir]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.cert_file}", f"    key: {tls.key_file}"]
        mounts.append(tls.cert_file.parent)
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: test-registry", f"    path: {htpasswd}"]
        mounts.append(htpasswd.parent)
    if token is not None:
        lines += token.lines()
        mounts.append(token.rootcertbundle.parent)
    if proxy_remote is not None:
        lines += ["proxy:", f"  remoteurl: {proxy_remote}"]
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    args = ["serve", str(config)]
    with containers.run_service(
        ran, containers.REGISTRY, args, port, workdir / "registry.log", mounts
    ):
        yield RegistryServer(
            host=f"127.0.0.1:{port}",
            scheme="https" if tls else "http",
            ca_pem=tls.ca_pem if tls else None,
            backend=containers.describe(ran, containers.REGISTRY),
        )


@contextlib.contextmanager
def secure_registry_server(
    workdir: Path, user: str, password: str, backend: Backend | None = None
) -> Iterator[RegistryServer]:
    """:func:`registry_server` over HTTPS (a throw-away CA) with one htpasswd user."""
    htpasswd = workdir / "htpasswd"
    workdir.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{user}:{hashed}\n")
    with registry_server(
        workdir / "registry", tls=make_tls(workdir / "tls"), htpasswd=htpasswd, backend=backend
    ) as server:
        print(f"registry backend: {server.backend} (HTTPS + htpasswd)")
        yield server


TEST_REDIS_PASSWORD = "test-redis-password"


@dataclass(frozen=True)
class RedisServer:
    """A running Redis; ``tls`` servers only accept TLS connections."""

    host: str
    port: int
    password: str
    ca_file: Path | None
    backend: str


@contextlib.contextmanager
def redis_server(
    workdir: Path,
    tls: TlsFiles | None = None,
    password: str = TEST_REDIS_PASSWORD,
    backend: Backend | None = None,
) -> Iterator[RedisServer]:
    """Redis on a free loopback port, no persistence, with a password (Debian's
    ``redis-server`` or an image that runs ``redis-server ARGS`` like ``redis:7``)."""
    ran = containers.resolve(backend, [containers.REDIS])
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(workdir), "--requirepass", password]
    mounts = [workdir]
    if tls is not None:
        args += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        args += ["--tls-cert-file", str(tls.cert_file), "--tls-key-file", str(tls.key_file)]
        args += ["--tls-ca-cert-file", str(tls.ca_file)]
        mounts.append(tls.cert_file.parent)
    else:
        args += ["--port", str(port)]
    with containers.run_service(ran, containers.REDIS, args, port, workdir / "redis.log", mounts):
        yield RedisServer(
            host="127.0.0.1",
            port=port,
            password=password,
            ca_file=tls.ca_file if tls else None,
            backend=containers.describe(ran, containers.REDIS),
        )


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 at a free port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
