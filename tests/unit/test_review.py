"""Application: ``ReviewAdmission`` and ``VerifyImage`` with fakes (no network, no container)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connaisseur.application.deadline import Deadline, request_budget
from connaisseur.application.review import (
    DETECTION_WARNING,
    PODS_ONLY_WARNING,
    ReviewAdmission,
    ReviewCommand,
)
from connaisseur.application.settings import Features, ResourceValidationMode, ValidatorSettings
from connaisseur.application.validators import StaticValidator, Validator
from connaisseur.application.verify import VerifyImage, VerifyImageCommand
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Mode, Policy, Rule, RuleOptions
from connaisseur.domain.verdict import Outcome as RequestOutcome
from connaisseur.domain.verdict import SkipReason
from tests.support.fake_validator import DIGEST, FakeValidator, Outcome
from tests.support.fakes import FakeClock, FakeMetrics

POLICY = Policy(
    (
        Rule(pattern="*", validator="fake"),
        Rule(pattern="my.reg/allowed", validator="allow"),
        Rule(pattern="my.reg/denied", validator="deny"),
        Rule(
            pattern="my.reg/validate-only",
            validator="fake",
            options=RuleOptions(mode=Mode.VALIDATE_ONLY),
        ),
        Rule(pattern="my.reg/ghost", validator="missing"),
    )
)


def _static(name: str, approve: bool) -> StaticValidator:
    return StaticValidator(ValidatorSettings(name=name, type="static", approve=approve))


class Harness:
    def __init__(self, fake: FakeValidator | None = None, features: Features | None = None) -> None:
        self.fake = fake or FakeValidator()
        self.metrics = FakeMetrics()
        self.clock = FakeClock()
        validators: dict[str, Validator] = {
            "fake": self.fake,
            "allow": _static("allow", True),
            "deny": _static("deny", False),
        }
        self.verify = VerifyImage(POLICY, validators, self.metrics)
        self.review = ReviewAdmission(self.verify, features or Features(), self.clock, self.metrics)

    async def run(self, kind: str, obj: Any, **kw: Any):  # type: ignore[no-untyped-def]
        command = ReviewCommand(
            uid="uid-1",
            kind=kind,
            operation=kw.pop("operation", "CREATE"),
            namespace="ns",
            object=obj,
            **kw,
        )
        return await self.review.execute(command)


def pod(*images: str, init: tuple[str, ...] = (), deleted: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if deleted:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)],
            "initContainers": [{"name": f"i{i}", "image": im} for i, im in enumerate(init)],
        },
    }


def deployment(*images: str) -> dict[str, Any]:
    return {"metadata": {"name": "d"}, "spec": {"template": {"spec": pod(*images)["spec"]}}}


async def test_distinct_images_are_verified_once_and_concurrently() -> None:
    h = Harness()
    verdict = await h.run(
        "Pod", pod("a.io/x:1", "a.io/y:1", "a.io/x:1", init=("a.io/z:1", "a.io/y:1"))
    )
    assert verdict.allowed
    assert sorted(h.fake.calls) == ["a.io/x:1", "a.io/y:1", "a.io/z:1"]
    assert h.fake.peak == 3  # all three were in flight at once
    # every slot of a pinned image is patched, in slot order
    assert [(p.path, p.value) for p in verdict.patch] == [
        ("/spec/containers/0/image", f"a.io/x:1@{DIGEST}"),
        ("/spec/containers/2/image", f"a.io/x:1@{DIGEST}"),
        ("/spec/containers/1/image", f"a.io/y:1@{DIGEST}"),
        ("/spec/initContainers/1/image", f"a.io/y:1@{DIGEST}"),
        ("/spec/initContainers/0/image", f"a.io/z:1@{DIGEST}"),
    ]
    assert h.metrics.admissions == [(True, False)]


async def test_unfinished_images_time_out_and_are_cancelled() -> None:
    fake = FakeValidator(outcomes={"a.io/slow:1": Outcome(hang=True)})
    h = Harness(fake)
    verdict = await h.run("Pod", pod("a.io/fast:1", "a.io/slow:1"), budget_seconds=0.2)
    assert not verdict.allowed
    assert verdict.outcome is RequestOutcome.TIMEOUT
    assert verdict.category is Category.TIMEOUT
    by_image = {v.image: v for v in verdict.images}
    assert by_image["a.io/fast:1"].allowed
    assert by_image["a.io/slow:1"].category is Category.TIMEOUT
    assert "a.io/slow:1" in (verdict.message or "")
    assert "a.io/fast:1" not in (verdict.message or "")
    await asyncio.sleep(0.01)  # the late task is cancelled, not awaited: let it unwind
    assert fake.cancelled == ["a.io/slow:1"]
    assert h.metrics.admissions == [(False, True)]


async def test_zero_budget_times_out_even_static_rules() -> None:
    h = Harness()
    verdict = await h.run("Pod", pod("my.reg/allowed:1"), budget_seconds=0.0)
    assert not verdict.allowed
    assert verdict.category is Category.TIMEOUT


def test_request_budget_is_the_callers_timeout_minus_margin_capped() -> None:
    assert request_budget(None, 1.0, 29.0) == 29.0
    assert request_budget(10.0, 1.0, 29.0) == 9.0
    assert request_budget(30.0, 1.0, 29.0) == 29.0
    assert request_budget(1.0, 1.0, 29.0) == 0.0
    assert request_budget(0.5, 1.0, 29.0) == 0.0


def test_deadline_draws_down_with_the_clock() -> None:
    clock = FakeClock(frozen=True)
    deadline = Deadline.after(clock, 5.0)
    assert deadline.remaining() == 5.0
    assert deadline.timeout(cap=2.0) == 2.0
    clock.advance(4.0)
    assert deadline.timeout(cap=2.0) == pytest.approx(1.0)
    clock.advance(2.0)
    assert deadline.remaining() == 0.0
    assert deadline.expired


async def test_every_failing_image_is_named_in_the_denial() -> None:
    fake = FakeValidator(
        outcomes={
            "a.io/unsigned:1": Outcome(
                category=Category.NO_TRUST_DATA, message="no signature found"
            ),
            "a.io/tampered:1": Outcome(
                category=Category.SIGNATURE_INVALID, message="bad signature"
            ),
        }
    )
    h = Harness(fake)
    verdict = await h.run(
        "Pod",
        pod("a.io/ok:1", "a.io/unsigned:1", "a.io/tampered:1", "my.reg/denied:2", "Not Valid"),
    )
    assert not verdict.allowed
    message = verdict.message or ""
    assert message.startswith("4 of 5 images denied: ")
    for piece in (
        "image 'a.io/unsigned:1' (rule '*', validator 'fake') denied [no_trust_data]: "
        "no signature found",
        "image 'a.io/tampered:1' (rule '*', validator 'fake') denied [signature_invalid]: "
        "bad signature",
        "image 'my.reg/denied:2' (rule 'my.reg/denied', validator 'deny') denied [static_deny]",
        "image 'Not Valid' denied [invalid_reference]",
    ):
        assert piece in message
    assert "a.io/ok:1" not in message
    assert verdict.patch == ()


async def test_a_crashing_validator_is_a_denial_without_internals() -> None:
    h = Harness(FakeValidator(outcomes={"a.io/x:1": Outcome(crash=True)}))
    verdict = await h.run("Pod", pod("a.io/x:1"))
    assert not verdict.allowed
    assert verdict.images[0].category is Category.VALIDATION_FAILED
    assert "secret-token-123" not in (verdict.message or "")
    assert "boom" not in (verdict.message or "")


async def test_static_rules_short_circuit_without_calling_validators() -> None:
    h = Harness()
    allowed = await h.run("Pod", pod("my.reg/allowed:1"))
    denied = await h.run("Pod", pod("my.reg/denied:1"))
    assert allowed.allowed
    assert allowed.patch == ()
    assert not denied.allowed
    assert denied.category is Category.STATIC_DENY
    assert h.fake.calls == []
    assert h.verify.decide_now(VerifyImageCommand(image="my.reg/allowed:1")) is not None
    assert h.verify.decide_now(VerifyImageCommand(image="a.io/x:1")) is None
    assert ("static", "allow", "success") in h.metrics.validations
    assert ("static", "deny", "static_deny") in h.metrics.validations


async def test_static_allow_of_a_pinned_digest_needs_no_patch() -> None:
    h = Harness()
    verdict = await h.run("Pod", pod(f"my.reg/allowed@{DIGEST}"))
    assert verdict.allowed
    assert verdict.images[0].digest is None  # a static allow verifies and pins nothing
    assert verdict.patch == ()


async def test_validate_only_rules_are_never_patched() -> None:
    h = Harness()
    verdict = await h.run("Pod", pod("my.reg/validate-only:1"))
    assert verdict.allowed
    assert h.fake.calls == ["my.reg/validate-only:1"]
    assert verdict.patch == ()


async def test_unknown_validator_is_a_denial() -> None:
    verdict = await Harness().run("Pod", pod("my.reg/ghost:1"))
    assert verdict.images[0].category is Category.VALIDATOR_NOT_FOUND


@pytest.mark.parametrize(
    ("kind", "obj", "category"),
    [
        ("Role", {"rules": []}, Category.UNKNOWN_WORKLOAD_KIND),
        ("Pod", {"spec": {}}, Category.NO_CONTAINERS),
        ("Pod", None, Category.NO_CONTAINERS),
        ("Pod", {"spec": {"containers": "nginx"}}, Category.NO_CONTAINERS),
    ],
)
async def test_unreadable_workloads_are_denied_as_invalid(
    kind: str, obj: Any, category: Category
) -> None:
    verdict = await Harness().run(kind, obj)
    assert not verdict.allowed
    assert verdict.outcome is RequestOutcome.INVALID
    assert verdict.category is category


async def test_pods_only_admits_other_kinds_without_patch_and_warns_on_denial() -> None:
    features = Features(resource_validation_mode=ResourceValidationMode.PODS_ONLY)
    h = Harness(features=features)
    denied = await h.run("Deployment", deployment("my.reg/denied:1"))
    assert denied.allowed
    assert denied.warnings[0] == PODS_ONLY_WARNING
    assert "static_deny" in denied.warnings[1]
    pinned = await h.run("Deployment", deployment("a.io/x:1"))
    assert pinned.allowed
    assert pinned.patch == ()
    assert pinned.warnings == ()
    pod_denied = await h.run("Pod", pod("my.reg/denied:1"))
    assert not pod_denied.allowed  # Pods are still validated


async def test_detection_mode_admits_with_warnings_and_keeps_patches() -> None:
    h = Harness(features=Features(detection_mode=True))
    denied = await h.run("Pod", pod("my.reg/denied:1", "a.io/x:1"))
    assert denied.allowed
    assert denied.warnings[0] == DETECTION_WARNING
    assert "my.reg/denied:1" in denied.warnings[1]
    allowed = await h.run("Pod", pod("a.io/x:1"))
    assert allowed.allowed
    assert allowed.warnings == ()
    assert len(allowed.patch) == 1


async def test_a_create_of_an_object_marked_for_deletion_is_validated() -> None:
    created = await Harness().run("Pod", pod("my.reg/denied:1", deleted=True))
    assert not created.allowed


@pytest.mark.parametrize("enabled", [True, False])
async def test_unchanged_images_are_approved_only_when_enabled(enabled: bool) -> None:
    h = Harness(features=Features(automatic_unchanged_approval=enabled))
    verdict = await h.run(
        "Pod", pod("a.io/x:1", "a.io/new:1"), operation="UPDATE", old_object=pod("a.io/x:1")
    )
    assert verdict.allowed
    by_image = {v.image: v for v in verdict.images}
    assert (by_image["a.io/x:1"].skipped is SkipReason.UNCHANGED) is enabled
    assert by_image["a.io/new:1"].skipped is None
    assert sorted(h.fake.calls) == (["a.io/new:1"] if enabled else ["a.io/new:1", "a.io/x:1"])
    # An unchanged image is not re-pinned (its reference stays as the owner wrote it).
    assert [p.path for p in verdict.patch] == (
        ["/spec/containers/1/image"]
        if enabled
        else ["/spec/containers/0/image", "/spec/containers/1/image"]
    )


async def test_unchanged_approval_never_skips_static_denials() -> None:
    h = Harness(features=Features(automatic_unchanged_approval=True))
    verdict = await h.run(
        "Pod",
        pod("my.reg/denied:1", "a.io/new:1"),
        operation="UPDATE",
        old_object=pod("my.reg/denied:1"),
    )
    assert not verdict.allowed
    assert "my.reg/denied:1" in (verdict.message or "")


async def test_update_with_an_unreadable_old_object_is_denied() -> None:
    verdict = await Harness().run(
        "Pod", pod("a.io/x:1"), operation="UPDATE", old_object={"spec": {}}
    )
    assert not verdict.allowed
    assert (verdict.message or "").startswith("error decoding old workload object")


async def test_a_malformed_digest_from_a_validator_is_refused() -> None:
    h = Harness(FakeValidator(outcomes={"a.io/x:1": Outcome(digest="sha256:123")}))
    verdict = await h.run("Pod", pod("a.io/x:1"))
    assert not verdict.allowed
    assert verdict.images[0].category is Category.INVALID_REFERENCE


async def test_verify_image_reports_each_result_to_metrics() -> None:
    h = Harness(FakeValidator(outcomes={"a.io/bad:1": Outcome(category=Category.EXPIRED)}))
    deadline = Deadline.after(h.clock, 5.0)
    ok = await h.verify.execute(VerifyImageCommand(image="a.io/good:1"), deadline)
    bad = await h.verify.execute(VerifyImageCommand(image="a.io/bad:1"), deadline)
    assert ok.allowed
    assert ok.new_image == f"a.io/good:1@{DIGEST}"
    assert ok.digest == DIGEST
    assert not bad.allowed
    assert bad.category is Category.EXPIRED
    assert h.metrics.validations == [("fake", "fake", "success"), ("fake", "fake", "expired")]
