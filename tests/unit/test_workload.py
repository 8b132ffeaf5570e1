"""Domain: workloads — images of all eight kinds and their JSON Patch paths."""

from __future__ import annotations

from typing import Any

import pytest

from connaisseur.domain.errors import Category, WorkloadError
from connaisseur.domain.workload import ContainerSlot, Workload

POD_SPEC = {
    "containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}],
    "initContainers": [{"name": "i", "image": "i:1"}],
    "ephemeralContainers": [{"name": "e", "image": "e:1"}],
}

TEMPLATED = ("Deployment", "ReplicaSet", "ReplicationController", "DaemonSet", "StatefulSet", "Job")
KINDS: dict[str, str] = {
    "Pod": "/spec",
    **dict.fromkeys(TEMPLATED, "/spec/template/spec"),
    "CronJob": "/spec/jobTemplate/spec/template/spec",
}


def wrap(kind: str, pod_spec: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object of ``kind`` whose pod template has ``pod_spec``."""
    spec: dict[str, Any] = pod_spec
    if kind != "Pod":
        spec = {"template": {"spec": spec}}
    if kind == "CronJob":
        spec = {"jobTemplate": {"spec": spec}}
    return {"metadata": meta or {"name": "w"}, "spec": spec}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_yields_its_images_and_patch_paths(kind: str) -> None:
    workload = Workload.parse(kind, wrap(kind, POD_SPEC), "ns")
    prefix = KINDS[kind]
    expected = [("containers", 0, "a:1"), ("containers", 1, "b:1"), ("initContainers", 0, "i:1")]
    if kind == "Pod":  # only Pods carry ephemeral containers
        expected.append(("ephemeralContainers", 0, "e:1"))
    assert [(s.type, s.index, s.image) for s in workload.slots] == expected
    assert [workload.patch_path(s) for s in workload.slots] == [
        f"{prefix}/{t}/{i}/image" for t, i, _ in expected
    ]
    assert (workload.kind, workload.name, workload.namespace) == (kind, "w", "ns")


def test_wrap_builds_the_shapes_kubernetes_uses() -> None:
    assert wrap("CronJob", {"containers": []})["spec"] == {
        "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}
    }
    assert wrap("Job", {"containers": []})["spec"] == {"template": {"spec": {"containers": []}}}


def test_images_group_slots_in_first_seen_order() -> None:
    spec = {
        "containers": [{"image": "a"}, {"image": "b"}],
        "initContainers": [{"image": "a"}],
        "ephemeralContainers": [{"image": "b"}, {"image": "c"}],
    }
    images = Workload.parse("Pod", {"spec": spec}).images
    assert list(images) == ["a", "b", "c"]
    assert images["a"] == [
        ContainerSlot("containers", 0, "a"),
        ContainerSlot("initContainers", 0, "a"),
    ]


def test_metadata_name_owners_deletion_and_namespace_fallback() -> None:
    meta = {
        "generateName": "gen-",
        "namespace": "from-object",
        "deletionTimestamp": "2026-01-01T00:00:00Z",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1"},
            "junk",
        ],
    }
    workload = Workload.parse("Pod", {"metadata": meta, "spec": POD_SPEC})
    assert workload.name == "gen-"
    assert workload.namespace == "from-object"
    assert workload.deleted
    assert [(o.kind, o.name, o.uid) for o in workload.owners] == [("ReplicaSet", "rs", "u1")]


@pytest.mark.parametrize(
    ("kind", "obj", "category"),
    [
        ("Role", {"rules": []}, Category.UNKNOWN_WORKLOAD_KIND),
        ("", {}, Category.UNKNOWN_WORKLOAD_KIND),
        ("Pod", [], Category.NO_CONTAINERS),
        ("Pod", {"spec": {}}, Category.NO_CONTAINERS),
        ("Pod", {"metadata": "x", "spec": POD_SPEC}, Category.NO_CONTAINERS),
        ("Pod", {"spec": {"containers": {"image": "a"}}}, Category.NO_CONTAINERS),
        ("Pod", {"spec": {"containers": [{"name": "no-image"}]}}, Category.NO_CONTAINERS),
        ("Pod", {"spec": {"containers": [{"image": 5}]}}, Category.NO_CONTAINERS),
        ("Deployment", {"spec": POD_SPEC}, Category.NO_CONTAINERS),  # Pod shape, wrong kind
    ],
)
def test_unusable_objects_are_refused(kind: str, obj: Any, category: Category) -> None:
    with pytest.raises(WorkloadError) as info:
        Workload.parse(kind, obj)
    assert info.value.category is category
