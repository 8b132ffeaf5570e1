"""Integration fixtures: every test that starts a real server runs once on Debian's binaries and
once in containers (tests/support/containers.py), so both paths are proven, not just written."""

from __future__ import annotations

import pytest

from tests.support import containers
from tests.support.containers import Backend


@pytest.fixture(scope="module", params=containers.BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """``binaries`` or ``containers``; the latter skips without an engine (fails in CI)."""
    chosen: Backend = request.param
    if chosen == "containers":
        containers.require_engine()
    return chosen
