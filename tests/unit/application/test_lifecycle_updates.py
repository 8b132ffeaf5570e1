"""D11: an UPDATE with unchanged images is admitted, and says when verification today denies
(docs/decisions/0011-lifecycle-updates.md).

"Unchanged" means the same multiset of image strings in every container list of the new and
the old object; anything else is reviewed as before.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from connaisseur.application.review import (
    DETECTION_WARNING,
    PODS_ONLY_WARNING,
    UNCHANGED_WARNING,
)
from connaisseur.application.settings import Features, Limits, ResourceValidationMode
from connaisseur.domain.errors import Category
from connaisseur.domain.verdict import Outcome
from tests.support.admission_harness import (
    ALLOWED,
    DENIED,
    EVIL,
    SIGNED,
    Admission,
    untrusted,
    workload,
)
from tests.support.fake_validator import Outcome as Scripted


def _relabelled(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    new = {**obj, "metadata": {**obj["metadata"], "labels": labels}}
    if "spec" in obj and "replicas" not in obj["spec"] and obj["kind"] != "Pod":
        new["spec"] = {**obj["spec"], "replicas": 0}
    return new


async def test_scaling_a_workload_whose_image_is_denied_today_is_admitted_with_a_warning() -> None:
    admission = Admission()
    old = workload("Deployment", EVIL, name="incident")
    verdict = await admission.update(old, _relabelled(old, paused="true"))
    assert verdict.allowed
    assert verdict.patch == ()
    assert verdict.warnings[0] == UNCHANGED_WARNING
    assert EVIL in verdict.warnings[1]
    assert "signature_invalid" in verdict.warnings[1]
    assert admission.fake.calls == [EVIL]  # verified, for the warning only


async def test_with_unchanged_approval_on_unchanged_images_are_not_verified_again() -> None:
    """The operator chose not to re-verify unchanged images: no call, so no warning."""
    admission = Admission(features=Features(automatic_unchanged_approval=True))
    old = workload("Deployment", EVIL, DENIED, name="incident")
    verdict = await admission.update(old, _relabelled(old))
    assert verdict.allowed
    assert admission.fake.calls == []
    assert "static_deny" in verdict.warnings[1]  # static rules are never skipped
    assert EVIL not in verdict.warnings[1]


async def test_a_static_deny_does_not_block_a_label_update() -> None:
    admission = Admission()
    old = workload("Pod", DENIED)
    verdict = await admission.update(old, _relabelled(old, incident="yes"))
    assert verdict.allowed
    assert verdict.warnings[0] == UNCHANGED_WARNING
    assert "static_deny" in verdict.warnings[1]


async def test_unchanged_update_that_verifies_is_answered_as_before() -> None:
    """No warning; a tag is still pinned, exactly as verification today decides."""
    admission = Admission()
    old = workload("Deployment", "a.io/app:1", ALLOWED)
    verdict = await admission.update(old, _relabelled(old))
    assert verdict.allowed
    assert verdict.warnings == ()
    assert [p.path for p in verdict.patch] == ["/spec/template/spec/containers/0/image"]


async def test_an_added_image_is_verified_and_denies_the_update() -> None:
    admission = Admission()
    old = workload("Deployment", SIGNED)
    verdict = await admission.update(old, workload("Deployment", SIGNED, EVIL))
    assert not verdict.allowed
    assert verdict.warnings == ()
    assert EVIL in admission.fake.calls


@pytest.mark.parametrize(
    ("old_images", "new_images"),
    [
        ((EVIL,), (EVIL, EVIL)),  # one more container of the same image
        ((EVIL, SIGNED), (EVIL, EVIL)),  # a container switched to an image already present
    ],
)
async def test_image_counts_are_part_of_unchanged(
    old_images: tuple[str, ...], new_images: tuple[str, ...]
) -> None:
    admission = Admission()
    verdict = await admission.update(workload("Pod", *old_images), workload("Pod", *new_images))
    assert not verdict.allowed


async def test_moving_an_image_to_another_container_list_is_a_change() -> None:
    admission = Admission()
    old = workload("Pod", SIGNED, init=(EVIL,))
    verdict = await admission.update(old, workload("Pod", SIGNED, EVIL))
    assert not verdict.allowed


async def test_an_ephemeral_debug_container_is_verified() -> None:
    """``kubectl debug`` adds an ephemeral container by UPDATE: a new image, so verified."""
    admission = Admission()
    old = workload("Pod", SIGNED)
    verdict = await admission.update(old, workload("Pod", SIGNED, ephemeral=(EVIL,)))
    assert not verdict.allowed
    assert EVIL in (verdict.message or "")


async def test_finalizer_removal_of_an_object_being_deleted_is_admitted() -> None:
    admission = Admission()
    old = workload("Pod", EVIL, deleted=True)
    new = workload("Pod", EVIL, deleted=True)
    del new["metadata"]["finalizers"]
    verdict = await admission.update(old, new)
    assert verdict.allowed
    assert verdict.warnings[0] == UNCHANGED_WARNING


async def test_a_hanging_registry_delays_the_update_by_the_check_budget_only() -> None:
    fake = untrusted()
    fake.outcomes[EVIL] = Scripted(hang=True)
    admission = Admission(fake, limits=Limits(unchanged_check_seconds=0.2))
    old = workload("Deployment", EVIL)
    started = time.monotonic()
    verdict = await admission.update(old, _relabelled(old), budget=20.0)
    assert time.monotonic() - started < 5.0  # the 20 s budget was not waited for
    assert verdict.allowed
    assert verdict.outcome is Outcome.TIMEOUT
    assert "timeout" in verdict.warnings[1]


async def test_no_budget_at_all_still_admits_an_unchanged_update() -> None:
    admission = Admission()
    old = workload("Pod", SIGNED)
    verdict = await admission.update(old, _relabelled(old), budget=0.0)
    assert verdict.allowed
    assert verdict.category is Category.TIMEOUT
    assert verdict.warnings[0] == UNCHANGED_WARNING


async def test_detection_mode_reports_the_lifecycle_reason() -> None:
    admission = Admission(features=Features(detection_mode=True))
    old = workload("Pod", DENIED)
    verdict = await admission.update(old, _relabelled(old))
    assert verdict.allowed
    assert verdict.warnings[0] == UNCHANGED_WARNING
    assert DETECTION_WARNING not in verdict.warnings


async def test_pods_only_mode_keeps_its_own_warning_for_other_kinds() -> None:
    features = Features(resource_validation_mode=ResourceValidationMode.PODS_ONLY)
    admission = Admission(features=features)
    old = workload("Deployment", DENIED)
    verdict = await admission.update(old, _relabelled(old))
    assert verdict.allowed
    assert verdict.warnings[0] == PODS_ONLY_WARNING


async def test_a_create_is_never_treated_as_unchanged() -> None:
    verdict = await Admission().create(workload("Pod", DENIED))
    assert not verdict.allowed
    assert verdict.warnings == ()


async def test_an_unreadable_old_object_is_still_denied() -> None:
    admission = Admission()
    new = workload("Pod", SIGNED)
    old = {**new, "spec": {"containers": "not a list"}}
    verdict = await admission.update(old, new)
    assert not verdict.allowed
    assert verdict.outcome is Outcome.INVALID
