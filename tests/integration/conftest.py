"""Integration fixtures: every test that starts a real server runs once on Debian's binaries and
once in containers (tests/support/containers.py), so both paths are proven, not just written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import containers
from tests.support.containers import Backend
from tests.support.servers import RegistryServer, registry_server


@pytest.fixture(scope="module", params=containers.BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """``binaries`` or ``containers``; the latter skips without an engine (fails in CI)."""
    chosen: Backend = request.param
    if chosen == "containers":
        containers.require_engine()
    return chosen


@pytest.fixture(scope="module")
def plain_registry(
    tmp_path_factory: pytest.TempPathFactory, backend: Backend
) -> Iterator[RegistryServer]:
    """A plain-HTTP registry for the module's tests, on the backend under test."""
    with registry_server(tmp_path_factory.mktemp("plain"), backend=backend) as server:
        print(f"registry backend: {server.backend} (plain HTTP)")
        yield server
