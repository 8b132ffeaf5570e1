"""Regression: a static allow for a tag must never admit an arbitrary digest
(docs/decisions/0020-tag-patterns-and-digests.md).

With the rule ``allowed.example/app:1`` → static allow, ``allowed.example/app:1@sha256:<any>``
was admitted: the runtime pulls by the digest and ignores the tag, so any image of that
repository ran under the tag's name.
"""

from __future__ import annotations

import pytest

from connaisseur.application.settings import ValidatorSettings
from connaisseur.application.validators import StaticValidator, Validator
from connaisseur.application.verify import VerifyImage, VerifyImageCommand
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Policy, Rule
from tests.support.fake_validator import FakeValidator
from tests.support.fakes import FakeMetrics

ANY_DIGEST = "sha256:" + "66" * 32


def _verify(*rules: tuple[str, str]) -> tuple[VerifyImage, FakeValidator]:
    fake = FakeValidator()
    validators: dict[str, Validator] = {
        "allow": StaticValidator(ValidatorSettings(name="allow", type="static", approve=True)),
        "deny": StaticValidator(ValidatorSettings(name="deny", type="static", approve=False)),
        "fake": fake,
    }
    policy = Policy(
        (Rule(pattern="*:*", validator="deny"), *(Rule(pattern=p, validator=v) for p, v in rules))
    )
    return VerifyImage(policy, validators, FakeMetrics()), fake


def _decide(verify: VerifyImage, image: str):  # type: ignore[no-untyped-def]
    verdict = verify.decide_now(VerifyImageCommand(image=image))
    assert verdict is not None
    return verdict


@pytest.mark.parametrize("pattern", ["allowed.example/app:1", "allowed.example/app:v1.*"])
def test_a_static_allow_for_a_tag_does_not_admit_an_arbitrary_digest(pattern: str) -> None:
    verify, _ = _verify((pattern, "allow"))
    tag = "1" if pattern.endswith(":1") else "v1.2"
    verdict = _decide(verify, f"allowed.example/app:{tag}@{ANY_DIGEST}")
    assert not verdict.allowed
    assert verdict.category is Category.STATIC_DENY
    assert "digest" in (verdict.message or "")
    assert pattern in (verdict.message or "")
    assert _decide(verify, f"allowed.example/app:{tag}").allowed  # the tag itself: allowed


@pytest.mark.parametrize(
    ("pattern", "image"),
    [
        ("allowed.example/app", f"allowed.example/app:1@{ANY_DIGEST}"),  # the whole repository
        ("registry.k8s.io/*:*", f"registry.k8s.io/pause:3.9@{ANY_DIGEST}"),  # any tag at all
        ("allowed.example/app:1@*", f"allowed.example/app:1@{ANY_DIGEST}"),  # said explicitly
        (f"allowed.example/app@{ANY_DIGEST}", f"allowed.example/app:1@{ANY_DIGEST}"),
        ("allowed.example/app:1", "allowed.example/app:1"),
    ],
)
def test_patterns_that_cover_digests_still_allow_them(pattern: str, image: str) -> None:
    verify, _ = _verify((pattern, "allow"))
    assert _decide(verify, image).allowed


async def test_verifying_validators_still_judge_tag_and_digest_references() -> None:
    """A pinned child of a verified owner (``tag@digest``) still matches the owner's rule."""
    from connaisseur.application.deadline import Deadline
    from tests.support.fakes import FakeClock

    verify, fake = _verify(("allowed.example/app:1", "fake"))
    image = f"allowed.example/app:1@{ANY_DIGEST}"
    assert verify.decide_now(VerifyImageCommand(image=image)) is None
    verdict = await verify.execute(
        VerifyImageCommand(image=image), Deadline.after(FakeClock(), 5.0)
    )
    assert fake.calls == [image]
    assert verdict.rule == "allowed.example/app:1"


def test_a_static_deny_for_a_tag_still_denies_its_digests() -> None:
    verify, _ = _verify(("*", "allow"), ("blocked.example/app:1", "deny"))
    assert not _decide(verify, f"blocked.example/app:1@{ANY_DIGEST}").allowed
