"""Regression: identical verifications coalesced into one must serve every waiter fairly.

The shared verification ran under the deadline of whoever started it, so a request with a
long budget that joined one started by a short one (an unchanged UPDATE's 2 s check, a client
with a small timeout) was denied with ``timeout``; and a request that joined a verification
its last waiter had just cancelled got that cancellation (a dropped connection) instead of a
verdict.
"""

from __future__ import annotations

import asyncio

from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImage, VerifyImageCommand
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Policy, Rule
from connaisseur.domain.verdict import ImageVerdict
from tests.support.fake_validator import FakeValidator, Outcome
from tests.support.fakes import FakeClock, FakeMetrics

IMAGE = "registry.test/app:1"
COMMAND = VerifyImageCommand(image=IMAGE)


def _verify(outcome: Outcome) -> tuple[VerifyImage, FakeValidator]:
    fake = FakeValidator(outcomes={IMAGE: outcome})
    return VerifyImage(
        Policy((Rule(pattern="*", validator="fake"),)), {"fake": fake}, FakeMetrics()
    ), fake


async def test_a_long_budget_joining_a_short_one_gets_the_verdict() -> None:
    verify, fake = _verify(Outcome(delay=0.3, honours_deadline=True))
    clock = FakeClock()
    short = asyncio.ensure_future(verify.execute(COMMAND, Deadline.after(clock, 0.1)))
    await asyncio.sleep(0.02)  # the short one started the verification
    long = await verify.execute(COMMAND, Deadline.after(clock, 5.0))
    assert long.allowed, long.message
    assert (await short).category is Category.TIMEOUT
    assert fake.calls == [IMAGE]  # still one verification


async def test_each_waiter_is_answered_by_its_own_deadline() -> None:
    verify, fake = _verify(Outcome(hang=True))
    clock = FakeClock()
    long = asyncio.ensure_future(verify.execute(COMMAND, Deadline.after(clock, 5.0)))
    await asyncio.sleep(0.02)
    short = await asyncio.wait_for(verify.execute(COMMAND, Deadline.after(clock, 0.1)), 2.0)
    assert short.category is Category.TIMEOUT
    assert not long.done()  # the other waiter still waits for the shared work
    long.cancel()
    await asyncio.sleep(0.01)
    assert fake.cancelled == [IMAGE]  # the last waiter gone, the work is cancelled


async def test_joining_a_verification_its_last_waiter_cancelled_gives_a_verdict() -> None:
    verify, fake = _verify(Outcome(delay=0.05))
    deadline = Deadline.after(FakeClock(), 5.0)
    first = asyncio.ensure_future(verify.execute(COMMAND, deadline))
    await asyncio.sleep(0.02)  # the verification is in flight
    first.cancel()  # its request went away: the shared work is cancelled with it
    await _gone(first)
    verdict = await verify.execute(COMMAND, deadline)
    assert verdict.allowed, verdict.message
    assert fake.calls == [IMAGE, IMAGE]  # a fresh verification, not the cancelled one


async def test_a_replaced_verification_stays_shared() -> None:
    verify, fake = _verify(Outcome(delay=0.05))
    deadline = Deadline.after(FakeClock(), 5.0)
    first = asyncio.ensure_future(verify.execute(COMMAND, deadline))
    await asyncio.sleep(0.02)
    first.cancel()
    await _gone(first)
    second = asyncio.ensure_future(verify.execute(COMMAND, deadline))
    await asyncio.sleep(0.01)  # the cancelled task has unwound by now
    third = await verify.execute(COMMAND, deadline)
    assert third.allowed
    assert (await second).allowed
    assert fake.calls == [IMAGE, IMAGE]  # the third joined the second


async def _gone(waiter: asyncio.Future[ImageVerdict]) -> None:
    """Until the cancelled waiter has left (its shared work is then being cancelled)."""
    while not waiter.done():
        await asyncio.sleep(0)
