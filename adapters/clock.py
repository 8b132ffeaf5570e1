"""Clocks: the system clock, and a fixed wall clock for replays (``--now``) and tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    """Real UTC time and ``time.monotonic``; implements ``application.ports.Clock``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FixedClock:
    """A wall clock stopped at ``at`` (expiry checks), with a real monotonic clock (budgets)."""

    def __init__(self, at: datetime) -> None:
        self._at = at if at.tzinfo else at.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self._at

    def monotonic(self) -> float:
        return time.monotonic()
