"""Servers for the tests either as Debian binaries or as containers, with the same command line.

A container runs through testcontainers with the host's network and every file it reads mounted
at the same path, so the configuration written for the binary serves the container unchanged and
the server listens on the same free loopback port. Containers run as the invoking user; Ryuk
(testcontainers' reaper) is disabled when its image is not present, since nothing is pulled here.

Backends: ``binaries``, ``containers``, or ``auto`` (the binary when installed, else a container).
``CONNAISSEUR_TEST_BACKEND`` sets the default. A container backend whose image cannot be had says
so in one line and runs the binary instead, unless ``CONNAISSEUR_REQUIRE_CONTAINERS=1`` (set by
scripts/with-docker.sh) makes that an error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tests.support import images
from tests.support.processes import running, wait_for_port

Backend = Literal["binaries", "containers", "auto"]
BACKENDS: tuple[Backend, ...] = ("binaries", "containers")
REQUIRE_VARIABLE = "CONNAISSEUR_REQUIRE_CONTAINERS"
LABEL = "org.connaisseur-py.tests"  # on every container the fixtures start


class ContainersUnavailable(RuntimeError):
    """Containers were asked for but no engine answers or an image cannot be had."""


@functools.cache
def engine_answers() -> bool:
    """True when a Docker engine answers (``DOCKER_HOST`` or the default socket)."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def containers_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE) == "1"


def require_engine() -> None:
    """In a test: skip without an engine, or fail when containers are required (CI)."""
    import pytest

    reason = engine_missing_reason()
    if reason is None:
        return
    if containers_required():
        pytest.fail(reason)
    pytest.skip(reason)


def engine_missing_reason() -> str | None:
    """Why the container backend cannot run at all, or None."""
    if engine_answers():
        return None
    return "no Docker engine answers (bash scripts/with-docker.sh starts one)"


@functools.cache
def image_available(name: str) -> bool:
    """Present in the engine, or pulled now (a refused pull answers at once here)."""
    if images.image_present(name):
        return True
    try:
        done = subprocess.run(
            ["docker", "pull", "-q", name], capture_output=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


@functools.cache
def _testcontainers_configured() -> None:
    from testcontainers.core.config import testcontainers_config

    if not images.image_present(testcontainers_config.ryuk_image):
        testcontainers_config.ryuk_disabled = True


@dataclass(frozen=True)
class Service:
    """One server program: its Debian binary and the image that stands in for it."""

    binary: str  # Debian's program, e.g. "docker-registry"
    image: images.Setting
    # the container's command is `container_prefix + args` (the image's entrypoint stays)
    container_prefix: tuple[str, ...]


REGISTRY = Service("docker-registry", images.REGISTRY, ())
NOTARY_SERVER = Service("notary-server", images.NOTARY_SERVER, ("notary-server",))
NOTARY_SIGNER = Service("notary-signer", images.NOTARY_SIGNER, ("notary-signer",))
REDIS = Service("redis-server", images.REDIS, ("redis-server",))


def default_backend() -> Backend:
    value = os.environ.get("CONNAISSEUR_TEST_BACKEND", "auto")
    if value not in ("binaries", "containers", "auto"):
        raise ValueError(f"CONNAISSEUR_TEST_BACKEND must be binaries, containers or auto: {value}")
    return value  # type: ignore[return-value]


Ran = Literal["binaries", "containers"]


def resolve(backend: Backend | None, services: Sequence[Service]) -> Ran:
    """The backend that will actually run ``services`` (says so when it falls back)."""
    backend = backend or default_backend()
    if backend == "auto":
        if all(shutil.which(s.binary) for s in services):
            return "binaries"
        backend = "containers"
    if backend == "binaries":
        return "binaries"
    problem = engine_missing_reason()
    if problem is None:
        missing = [s.image.name() for s in services if not image_available(s.image.name())]
        if missing:
            problem = f"image {', '.join(sorted(set(missing)))} cannot be had"
    if problem is None:
        return "containers"
    if containers_required():
        raise ContainersUnavailable(problem)
    print(f"containers: {problem}; using the Debian binaries")
    return "binaries"


def describe(backend: Ran, service: Service) -> str:
    if backend == "binaries":
        return f"debian {service.binary}"
    return f"container {service.image.name()}"


@contextlib.contextmanager
def run_service(
    backend: Ran,
    service: Service,
    args: Sequence[str],
    port: int,
    log: Path,
    mounts: Sequence[Path] = (),
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """Run ``service`` with ``args`` until the block ends; wait until ``port`` accepts.

    ``mounts`` are the directories the server reads or writes (mounted read-write at the same
    path: a registry stores its blobs there)."""
    if backend == "binaries":
        binary = shutil.which(service.binary)
        if binary is None:
            raise RuntimeError(f"{service.binary} is not installed (scripts/system-packages.sh)")
        with running([binary, *args], port, log, env):
            yield
        return
    with _container(service, [*service.container_prefix, *args], port, log, mounts, env):
        yield


@contextlib.contextmanager
def _container(
    service: Service,
    command: list[str],
    port: int,
    log: Path,
    mounts: Sequence[Path],
    env: dict[str, str] | None,
) -> Iterator[None]:
    _testcontainers_configured()
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(service.image.name())
        .with_command(command)
        .with_kwargs(network_mode="host", user=f"{os.getuid()}:{os.getgid()}", labels=_labels())
    )
    for directory in mounts:
        container = container.with_volume_mapping(str(directory), str(directory), "rw")
    for key, value in (env or {}).items():
        container = container.with_env(key, value)
    with container:
        raw = container.get_wrapped_container()
        try:
            _wait_listening(raw, port)
            yield
        finally:
            log.write_bytes(raw.logs())


def _labels() -> dict[str, str]:
    """Marks our containers so that a leftover can be told apart from anyone else's."""
    return {LABEL: str(os.getpid())}


def _wait_listening(raw: Any, port: int, timeout: float = 30.0) -> None:
    """Until ``port`` accepts; fails at once with the logs when the container exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw.reload()
        if raw.status not in ("created", "running"):
            logs = raw.logs().decode(errors="replace")[-2000:]
            raise RuntimeError(f"container {raw.short_id} exited before port {port}:\n{logs}")
        with contextlib.suppress(TimeoutError):
            wait_for_port(port, timeout=0.5)
            return
    raise TimeoutError(f"container {raw.short_id}: nothing listens on 127.0.0.1:{port}")
