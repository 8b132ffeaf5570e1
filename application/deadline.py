"""Request budgets (D6): every outbound call draws its timeout from what is left."""

from __future__ import annotations

from dataclasses import dataclass

from connaisseur.application.ports import Clock


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on the clock's monotonic scale after which the request must be answered."""

    clock: Clock
    expires_at: float

    @classmethod
    def after(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock, clock.monotonic() + max(0.0, seconds))

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self.clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def capped(self, seconds: float) -> Deadline:
        """A deadline at most ``seconds`` from now, never later than this one."""
        return Deadline.after(self.clock, min(self.remaining(), seconds))

    def timeout(self, cap: float | None = None) -> float:
        """The timeout for one outbound call: what is left, at most ``cap``."""
        left = self.remaining()
        return left if cap is None else min(left, cap)


def request_budget(requested_seconds: float | None, margin: float, cap: float) -> float:
    """The budget for a request: the API server's ``timeout`` minus a margin, capped (D6)."""
    if requested_seconds is None:
        return cap
    return max(0.0, min(cap, requested_seconds - margin))
