"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp client session per test, closed after it."""
    async with aiohttp.ClientSession() as s:
        yield s
