"""Static verdicts are remembered per raw image; what they say and what is counted stay exact."""

from __future__ import annotations

from connaisseur.application.deadline import Deadline
from connaisseur.application.settings import ValidatorSettings
from connaisseur.application.validators import StaticValidator, Validator
from connaisseur.application.verify import VerifyImage, VerifyImageCommand
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Mode, Policy, Rule, RuleOptions
from connaisseur.domain.verdict import ImageVerdict, SkipReason
from tests.support.fake_validator import DIGEST, CountingStaticValidator, FakeValidator
from tests.support.fakes import FakeClock, FakeMetrics


def use_case() -> tuple[VerifyImage, FakeMetrics]:
    policy = Policy(
        (
            Rule(pattern="*:*", validator="deny"),
            Rule(pattern="registry.example.com/*:*", validator="allow"),
            Rule(
                pattern="registry.example.com/pinned:*",
                validator="allow",
                options=RuleOptions(mode=Mode.VALIDATE_ONLY),
            ),
            Rule(pattern="signed.example.com/*:*", validator="signed"),
        )
    )
    validators: dict[str, Validator] = {
        "allow": StaticValidator(ValidatorSettings(name="allow", type="static", approve=True)),
        "deny": StaticValidator(ValidatorSettings(name="deny", type="static", approve=False)),
        "signed": FakeValidator("signed"),
    }
    metrics = FakeMetrics()
    return VerifyImage(policy, validators, metrics), metrics


def decide(verify: VerifyImage, image: str, **kw: object) -> ImageVerdict:
    verdict = verify.decide_now(VerifyImageCommand(image=image, **kw))  # type: ignore[arg-type]
    assert verdict is not None
    return verdict


def test_repeated_static_decisions_are_identical_and_each_is_counted() -> None:
    verify, metrics = use_case()
    images = [
        "registry.example.com/app:1",
        "evil.example.org/app:1",
        f"registry.example.com/app@{DIGEST}",
    ]
    first = [decide(verify, i) for i in images]
    again = [decide(verify, i) for i in images]
    assert again == first
    assert [v.allowed for v in first] == [True, False, True]
    assert first[1].category is Category.STATIC_DENY
    assert first[1].message == "static deny for image evil.example.org/app:1 using rule *:*"
    assert first[2].new_image == f"registry.example.com/app@{DIGEST}"
    assert metrics.validations == 2 * [
        ("static", "allow", "success"),
        ("static", "deny", "static_deny"),
        ("static", "allow", "success"),
    ]


def test_a_static_denial_is_not_lifted_by_approval_even_when_remembered() -> None:
    verify, _ = use_case()
    image = "evil.example.org/app:1"
    assert not decide(verify, image).allowed
    approved = decide(
        verify, image, approved_images=frozenset({image}), approval_reason=SkipReason.UNCHANGED
    )
    assert not approved.allowed
    assert approved.skipped is None


def test_remembered_verdicts_are_per_raw_image_string() -> None:
    verify, _ = use_case()
    assert decide(verify, "registry.example.com/app:1").allowed
    assert not decide(verify, "registry.example.com.evil.org/app:1").allowed
    assert decide(verify, "registry.example.com/pinned:1").mode is Mode.VALIDATE_ONLY
    assert decide(verify, "registry.example.com/app:1").mode is Mode.MUTATE


def test_invalid_references_are_denied_every_time() -> None:
    verify, metrics = use_case()
    for _ in range(2):
        verdict = decide(verify, "UPPER/case:1")
        assert not verdict.allowed
        assert verdict.category is Category.INVALID_REFERENCE
    assert metrics.validations == []


async def test_non_static_images_still_go_to_their_validator() -> None:
    verify, _ = use_case()
    command = VerifyImageCommand(image="signed.example.com/app:1")
    assert verify.decide_now(command) is None
    deadline = Deadline.after(FakeClock(frozen=True), 5)
    first = await verify.execute(command, deadline)
    second = await verify.execute(command, deadline)
    assert first.new_image == second.new_image == f"signed.example.com/app:1@{DIGEST}"
    assert verify.decide_now(command) is None


def test_the_memo_stays_bounded() -> None:
    """At most 4096 raw images are remembered: once that many are, the memo starts again, so
    the first image is decided by its validator anew."""
    counting = CountingStaticValidator()
    verify = VerifyImage(
        Policy((Rule(pattern="*:*", validator="allow"),)), {"allow": counting}, FakeMetrics()
    )
    images = [f"registry.example.com/app:{n}" for n in range(4096)]
    for image in images:
        assert decide(verify, image).allowed
    for image in images:  # all remembered: none is decided again
        assert decide(verify, image).allowed
    assert counting.decisions == 4096
    assert decide(verify, "registry.example.com/app:one-more").allowed
    assert decide(verify, images[0]).allowed
    assert counting.decisions == 4098
