"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

#: Fixtures shared by test folders that do not share a conftest (chart and cluster tests), and
#: the signing keys of the cosign bundle and attestation tests.
pytest_plugins = ("tests.support.helm_fixtures", "tests.support.signing_keys")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp client session per test, closed after it."""
    async with aiohttp.ClientSession() as s:
        yield s
