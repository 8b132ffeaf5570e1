"""Real servers for integration tests: started on 127.0.0.1 with free ports, torn down after.

When a Docker engine answers, :func:`docker_available` is true and fixtures may use
testcontainers with the official images instead; each fixture says which backend ran.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from aiohttp import web

from tests.support.tls import TlsFiles, make_tls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def docker_available() -> bool:
    """True when a Docker engine answers (then testcontainers can run official images)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def running(
    cmd: Sequence[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until the block ends; wait until ``port`` accepts connections."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            wait_for_port(port, proc)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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


@contextlib.contextmanager
def registry_server(
    workdir: Path, tls: TlsFiles | None = None, htpasswd: Path | None = None
) -> Iterator[RegistryServer]:
    """Debian's ``docker-registry`` (distribution 2.8) with filesystem storage, or the
    official ``registry:2`` image through testcontainers when a Docker engine answers."""
    if docker_available():
        with _registry_container(workdir, tls, htpasswd) as server:
            yield server
        return
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
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
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.cert_file}", f"    key: {tls.key_file}"]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: test-registry", f"    path: {htpasswd}"]
    config = workdir / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    with running([binary, "serve", str(config)], port, workdir / "registry.log"):
        yield RegistryServer(
            host=f"127.0.0.1:{port}",
            scheme="https" if tls else "http",
            ca_pem=tls.ca_pem if tls else None,
            backend="debian docker-registry",
        )


@contextlib.contextmanager
def secure_registry_server(workdir: Path, user: str, password: str) -> Iterator[RegistryServer]:
    """:func:`registry_server` over HTTPS (a throw-away CA) with one htpasswd user."""
    htpasswd = workdir / "htpasswd"
    workdir.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{user}:{hashed}\n")
    with registry_server(
        workdir / "registry", tls=make_tls(workdir / "tls"), htpasswd=htpasswd
    ) as server:
        print(f"registry backend: {server.backend} (HTTPS + htpasswd)")
        yield server


@contextlib.contextmanager
def _registry_container(
    workdir: Path, tls: TlsFiles | None, htpasswd: Path | None
) -> Iterator[RegistryServer]:
    """``registry:2`` via testcontainers, configured like the Debian branch."""
    from testcontainers.core.container import DockerContainer

    workdir.mkdir(parents=True, exist_ok=True)
    container = DockerContainer("registry:2").with_exposed_ports(5000)
    if tls is not None:
        container = (
            container.with_volume_mapping(str(tls.cert_file.parent), "/certs", "ro")
            .with_env("REGISTRY_HTTP_TLS_CERTIFICATE", f"/certs/{tls.cert_file.name}")
            .with_env("REGISTRY_HTTP_TLS_KEY", f"/certs/{tls.key_file.name}")
        )
    if htpasswd is not None:
        container = (
            container.with_volume_mapping(str(htpasswd.parent), "/auth", "ro")
            .with_env("REGISTRY_AUTH", "htpasswd")
            .with_env("REGISTRY_AUTH_HTPASSWD_REALM", "test-registry")
            .with_env("REGISTRY_AUTH_HTPASSWD_PATH", f"/auth/{htpasswd.name}")
        )
    with container:
        port = int(container.get_exposed_port(5000))
        wait_for_port(port)
        yield RegistryServer(
            host=f"127.0.0.1:{port}",
            scheme="https" if tls else "http",
            ca_pem=tls.ca_pem if tls else None,
            backend="testcontainers registry:2",
        )


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
) -> Iterator[RedisServer]:
    """Debian's ``redis-server`` on a free loopback port, no persistence, with a password."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--dir", str(workdir), "--requirepass", password]
    if tls is not None:
        cmd += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
        cmd += ["--tls-cert-file", str(tls.cert_file), "--tls-key-file", str(tls.key_file)]
        cmd += ["--tls-ca-cert-file", str(tls.ca_file)]
    else:
        cmd += ["--port", str(port)]
    with running(cmd, port, workdir / "redis.log"):
        yield RedisServer(
            host="127.0.0.1",
            port=port,
            password=password,
            ca_file=tls.ca_file if tls else None,
            backend="debian redis-server",
        )


@contextlib.contextmanager
def redis_container(password: str = TEST_REDIS_PASSWORD) -> Iterator[RedisServer]:
    """The official ``redis`` image via testcontainers (only when a Docker engine answers)."""
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7", password=password) as container:
        yield RedisServer(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(6379)),
            password=password,
            ca_file=None,
            backend="testcontainers redis:7",
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
