"""A scripted ``Validator`` for the use-case tests (other port fakes: tests/support/fakes.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from connaisseur.application.deadline import Deadline
from connaisseur.application.settings import ValidatorSettings
from connaisseur.application.validators import StaticValidator
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import TrustedDigest

DIGEST = "sha256:" + "ab" * 32


@dataclass
class Outcome:
    """What :class:`FakeValidator` does for one raw image string."""

    digest: str | None = DIGEST
    category: Category | None = None
    message: str = "not trusted"
    hang: bool = False
    crash: bool = False
    delay: float = 0.0
    #: give up with ``timeout`` when the deadline passes first, as the real adapters do
    honours_deadline: bool = False


class FakeValidator:
    """Implements ``Validator``; outcome per raw image, records calls and peak concurrency."""

    type = "fake"

    def __init__(self, name: str = "fake", outcomes: dict[str, Outcome] | None = None) -> None:
        self.name = name
        self.outcomes = outcomes or {}
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        self.calls.append(image.original)
        outcome = self.outcomes.get(image.original, Outcome())
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            pause = 0.01 + outcome.delay  # let siblings start: shows concurrency
            if outcome.honours_deadline and deadline.remaining() < pause:
                await asyncio.sleep(deadline.remaining())
                raise VerificationError("registry too slow", category=Category.TIMEOUT)
            await asyncio.sleep(pause)
            if outcome.hang:
                await asyncio.Event().wait()
            if outcome.crash:
                raise RuntimeError("boom: secret-token-123 in a stack trace")
            if outcome.category is not None:
                raise VerificationError(outcome.message, category=outcome.category)
            return TrustedDigest(digest=outcome.digest)
        except asyncio.CancelledError:
            self.cancelled.append(image.original)
            raise
        finally:
            self.in_flight -= 1


class CountingStaticValidator(StaticValidator):
    """A ``static`` validator that counts how often it is asked to decide (not remembered)."""

    def __init__(self, name: str = "allow", approve: bool = True) -> None:
        super().__init__(ValidatorSettings(name=name, type="static", approve=approve))
        self.decisions = 0

    def decide(self, image: ImageReference) -> TrustedDigest:
        self.decisions += 1
        return super().decide(image)
