"""Integration fixtures: every test that starts a real server runs once on Debian's binaries and
once in containers (tests/support/containers.py), so both paths are proven, not just written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import containers
from tests.support.containers import Backend
from tests.support.registry_proxy import Proxied, pairing_proxy
from tests.support.servers import RegistryServer, registry_server
from tests.support.tls import TlsFiles, make_tls


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


@pytest.fixture(scope="module")
def proxy_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The certificate of the module's HTTPS proxies (its CA is what a validator trusts)."""
    return make_tls(tmp_path_factory.mktemp("proxy-tls"))


@pytest.fixture
async def proxied(plain_registry: RegistryServer, proxy_tls: TlsFiles) -> AsyncIterator[Proxied]:
    """A counting, pairing HTTPS proxy demanding a Bearer token in front of the module's
    registry (tests/support/registry_proxy.py)."""
    async with pairing_proxy(plain_registry.url, proxy_tls) as running:
        yield running
