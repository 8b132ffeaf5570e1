"""Fakes of the application's ports shared by every test layer (fakes over mocks).

Each names the Protocol it implements so mypy checks it where it is defined.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from application.ports import Clock

DEFAULT_NOW = datetime(2026, 11, 29, tzinfo=UTC)


class FakeClock(Clock):
    """Implements ``Clock``: wall time fixed at ``now``; monotonic time real, or, when
    ``frozen``, starting at 1000.0 and moved only by :meth:`advance` (budgets under control).
    """

    def __init__(self, now: datetime = DEFAULT_NOW, *, frozen: bool = False) -> None:
        self._now = now
        self._frozen = frozen
        self._offset = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        base = 1000.0 if self._frozen else time.monotonic()
        return base + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
