"""Regression: the deletion shortcut and child approval chained into an admission bypass.

An attacker with ordinary namespace rights held a Pod with a finalizer, deleted it (so it
carried ``deletionTimestamp``), switched its image to an unverified one (the deletion shortcut
admitted any UPDATE of such an object), then created a Pod naming the held Pod as its owner
with the same image: child approval admitted it unverified. Each half is closed on its own
(docs/decisions/0010-child-approval-is-earned.md, docs/decisions/0011-lifecycle-updates.md).
"""

from __future__ import annotations

from typing import Any

from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.verdict import RequestVerdict, SkipReason
from tests.support.admission_harness import (
    EVIL,
    EVIL_PINNED,
    SIGNED,
    Admission,
    owner_ref,
    workload,
)
from tests.support.fakes import FakeKubernetesApi


async def create_child(
    owner: dict[str, Any],
    image: str,
    *,
    kind: str = "Pod",
    kube: FakeKubernetesApi | None = None,
) -> tuple[RequestVerdict, Admission]:
    """Create a ``kind`` running ``image`` whose ownerReference names ``owner``, which the
    Kubernetes API shows (``kube``: an API of the test's own)."""
    admission = Admission(kube=kube or FakeKubernetesApi([owner]))
    child = workload(kind, image, name="child", owners=(owner_ref(owner),))
    return await admission.create(child), admission


async def test_terminating_pod_switched_to_a_new_image_is_verified() -> None:
    admission = Admission()
    held = workload("Pod", SIGNED, name="held", deleted=True)
    switched = workload("Pod", EVIL, name="held", deleted=True)
    verdict = await admission.update(held, switched)
    assert not verdict.allowed
    assert admission.fake.calls == [EVIL]
    assert EVIL in (verdict.message or "")


async def test_update_that_marks_an_object_deleted_cannot_add_an_image() -> None:
    admission = Admission()
    live = workload("Pod", SIGNED, name="held")
    marked = workload("Pod", SIGNED, EVIL, name="held", deleted=True)
    verdict = await admission.update(live, marked)
    assert not verdict.allowed
    assert EVIL in admission.fake.calls


async def test_the_whole_chain_runs_no_unverified_image() -> None:
    """Both steps of the reported attack, in order, against one fake API server."""
    kube = FakeKubernetesApi()
    admission = Admission(kube=kube)
    held = workload("Pod", SIGNED, name="held", uid="uid-held", deleted=True)
    switched = workload("Pod", EVIL_PINNED, name="held", uid="uid-held", deleted=True)
    step_one = await admission.update(held, switched)
    assert not step_one.allowed
    kube.add(switched)  # as if step one had been admitted (today's behaviour)
    child = workload("Pod", EVIL_PINNED, name="child", owners=(owner_ref(switched),))
    step_two = await admission.create(child)
    assert not step_two.allowed
    assert admission.fake.calls == [EVIL_PINNED, EVIL_PINNED]


async def test_child_of_an_owner_being_deleted_is_verified() -> None:
    owner = workload("ReplicaSet", EVIL_PINNED, name="rs", uid="uid-rs", deleted=True)
    verdict, admission = await create_child(owner, EVIL_PINNED)
    assert not verdict.allowed
    assert admission.fake.calls == [EVIL_PINNED]


async def test_child_of_an_owner_the_api_cannot_show_is_verified() -> None:
    """An API server that cannot answer lends no approval; the child is verified, as any
    other object, rather than the review failing."""
    owner = workload("ReplicaSet", SIGNED, name="rs", uid="uid-rs")
    kube = FakeKubernetesApi([owner])
    kube.failure = ConnaisseurError("API down", category=Category.UNAVAILABLE)
    verdict, admission = await create_child(owner, SIGNED, kube=kube)
    assert verdict.allowed
    assert admission.fake.calls == [SIGNED]
    assert kube.gets


async def test_child_of_an_owner_with_unpinned_images_is_verified() -> None:
    """D10 approves "after digest pinning": a tag in the owner proves nothing about what the
    child pulls, and an owner admitted unverified (detection mode, before the webhook) is not
    pinned by us."""
    owner = workload("ReplicaSet", EVIL, name="rs", uid="uid-rs")
    verdict, admission = await create_child(owner, EVIL)
    assert not verdict.allowed
    assert admission.fake.calls == [EVIL]


async def test_a_pod_never_lends_approval_to_a_pod() -> None:
    """Only the controllers that create children are owners: a Pod owns no Pod."""
    owner = workload("Pod", EVIL_PINNED, name="lender", uid="uid-lender")
    verdict, admission = await create_child(owner, EVIL_PINNED)
    assert not verdict.allowed
    assert admission.fake.calls == [EVIL_PINNED]


async def test_an_owner_kind_from_a_foreign_api_group_is_not_asked() -> None:
    """A custom resource spelled ``ReplicaSet`` never passed this webhook."""
    foreign = workload("ReplicaSet", EVIL_PINNED, name="rs", uid="uid-rs")
    foreign["apiVersion"] = "evil.example/v1"
    kube = FakeKubernetesApi([foreign])
    verdict, _ = await create_child(foreign, EVIL_PINNED, kube=kube)
    assert not verdict.allowed
    assert kube.gets == []


async def test_a_live_pinned_controller_still_approves_its_children() -> None:
    owner = workload("ReplicaSet", SIGNED, name="rs", uid="uid-rs")
    verdict, admission = await create_child(owner, SIGNED)
    assert verdict.allowed
    assert verdict.images[0].skipped is SkipReason.CHILD
    assert admission.fake.calls == []


async def test_each_controller_kind_approves_its_own_children_only() -> None:
    pairs = [
        ("Deployment", "ReplicaSet"),
        ("CronJob", "Job"),
        ("ReplicaSet", "Pod"),
        ("ReplicationController", "Pod"),
        ("DaemonSet", "Pod"),
        ("StatefulSet", "Pod"),
        ("Job", "Pod"),
    ]
    for owner_kind, child_kind in pairs:
        owner = workload(owner_kind, SIGNED, name="o", uid="uid-o")
        verdict, _ = await create_child(owner, SIGNED, kind=child_kind)
        assert verdict.images[0].skipped is SkipReason.CHILD, (owner_kind, child_kind)
    for owner_kind, child_kind in [("Deployment", "Pod"), ("CronJob", "Pod"), ("Job", "Job")]:
        owner = workload(owner_kind, SIGNED, name="o", uid="uid-o")
        verdict, _ = await create_child(owner, SIGNED, kind=child_kind)
        assert verdict.images[0].skipped is None, (owner_kind, child_kind)
