"""Workloads: where the images of each supported Kubernetes kind live (v3's eight kinds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connaisseur.domain.errors import Category, WorkloadError

CONTAINER_TYPES = ("containers", "initContainers", "ephemeralContainers")

#: kind → (path to the pod spec, container types read there)
_POD_SPEC_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Pod": (("spec",), CONTAINER_TYPES),
    **{
        kind: (("spec", "template", "spec"), CONTAINER_TYPES[:2])
        for kind in (
            "Deployment",
            "ReplicaSet",
            "DaemonSet",
            "StatefulSet",
            "Job",
            "ReplicationController",
        )
    },
    "CronJob": (("spec", "jobTemplate", "spec", "template", "spec"), CONTAINER_TYPES[:2]),
}
SUPPORTED_KINDS = frozenset(_POD_SPEC_PATHS)

#: child kind → the (apiVersion, kind) of the built-in controllers that create such children.
#: Only these owners can lend child approval (docs/decisions/0010-child-approval-is-earned.md):
#: a Pod owns no Pod, and a custom resource spelt like a built-in kind never passed this webhook.
CONTROLLERS: dict[str, frozenset[tuple[str, str]]] = {
    "Pod": frozenset(
        {
            ("apps/v1", "ReplicaSet"),
            ("apps/v1", "DaemonSet"),
            ("apps/v1", "StatefulSet"),
            ("batch/v1", "Job"),
            ("v1", "ReplicationController"),
        }
    ),
    "ReplicaSet": frozenset({("apps/v1", "Deployment")}),
    "Job": frozenset({("batch/v1", "CronJob")}),
}


@dataclass(frozen=True, slots=True)
class ContainerSlot:
    """One place an image is written: container type, index and the raw image string."""

    type: str
    index: int
    image: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """The parts of an admitted object that verification needs."""

    kind: str
    name: str
    namespace: str
    slots: tuple[ContainerSlot, ...]
    owners: tuple[OwnerReference, ...] = ()
    deleted: bool = False
    #: ``metadata.uid``: empty in an AdmissionReview's CREATE, set on stored objects.
    uid: str = ""

    @classmethod
    def parse(cls, kind: str, obj: Any, namespace: str = "") -> Workload:
        """Read a workload of ``kind`` from a decoded JSON object.

        Raises:
            WorkloadError: unsupported kind, malformed object, or no containers at all.
        """
        if kind not in _POD_SPEC_PATHS:
            raise WorkloadError(f'unknown workload kind "{kind}"')
        if not _is_object(obj):
            raise WorkloadError("object is not a JSON object", category=Category.NO_CONTAINERS)
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not _is_object(meta):
            raise WorkloadError("metadata is not a JSON object", category=Category.NO_CONTAINERS)
        slots = container_slots(kind, obj)
        if not slots:
            raise WorkloadError(
                "no containers found in workload object", category=Category.NO_CONTAINERS
            )
        return cls(
            kind=kind,
            name=str(meta.get("name") or meta.get("generateName") or ""),
            namespace=namespace or str(meta.get("namespace") or ""),
            slots=slots,
            owners=_owners(meta.get("ownerReferences")),
            deleted=meta.get("deletionTimestamp") is not None,
            uid=str(meta.get("uid") or ""),
        )

    def same_images_as(self, other: Workload) -> bool:
        """Whether both run the same multiset of image strings in every container list
        (docs/decisions/0011-lifecycle-updates.md)."""
        return _images_by_type(self.slots) == _images_by_type(other.slots)

    @property
    def images(self) -> dict[str, list[ContainerSlot]]:
        """Raw image string → its slots, in first-seen order (containers, init, ephemeral)."""
        grouped: dict[str, list[ContainerSlot]] = {}
        for slot in self.slots:
            grouped.setdefault(slot.image, []).append(slot)
        return grouped

    def patch_path(self, slot: ContainerSlot) -> str:
        """The JSON pointer of a slot's image (``/spec/template/spec/containers/0/image``)."""
        prefix = "/".join(_POD_SPEC_PATHS[self.kind][0])
        return f"/{prefix}/{slot.type}/{slot.index}/image"


def container_slots(kind: str, obj: Mapping[str, Any]) -> tuple[ContainerSlot, ...]:
    """Every container slot of ``obj`` read as ``kind`` (empty when malformed or unsupported).

    Raises:
        WorkloadError: a container list or entry has the wrong JSON type.
    """
    path, types = _POD_SPEC_PATHS.get(kind, ((), ()))
    spec: Any = obj
    for part in path:
        spec = spec.get(part) if _is_object(spec) else None
    if not _is_object(spec):
        return ()
    slots = []
    for ctype in types:
        containers = spec.get(ctype)
        if containers is None:
            continue
        if not isinstance(containers, list):
            raise WorkloadError(f"{ctype} is not a list", category=Category.NO_CONTAINERS)
        for index, container in enumerate(containers):
            image = container.get("image") if _is_object(container) else None
            if not isinstance(image, str):
                raise WorkloadError(
                    f"{ctype}[{index}] has no image string", category=Category.NO_CONTAINERS
                )
            slots.append(ContainerSlot(ctype, index, image))
    return tuple(slots)


def container_count(kind: str, obj: Any) -> int:
    """How many containers ``obj`` read as ``kind`` lists, without reading them (0 when the
    object is malformed: :meth:`Workload.parse` says why)."""
    path, types = _POD_SPEC_PATHS.get(kind, ((), ()))
    spec: Any = obj
    for part in path:
        spec = spec.get(part) if _is_object(spec) else None
    if not _is_object(spec):
        return 0
    lists = (spec.get(ctype) for ctype in types)
    return sum(len(containers) for containers in lists if isinstance(containers, list))


def _images_by_type(slots: tuple[ContainerSlot, ...]) -> dict[str, list[str]]:
    by_type: dict[str, list[str]] = {}
    for slot in slots:
        by_type.setdefault(slot.type, []).append(slot.image)
    for images in by_type.values():
        images.sort()
    return by_type


def _is_object(value: Any) -> bool:
    """A decoded JSON object. ``dict`` (what JSON decoders give) is tested first: an
    ``isinstance`` against the ``Mapping`` ABC costs several times more, per container."""
    return type(value) is dict or isinstance(value, Mapping)


def _owners(raw: Any) -> tuple[OwnerReference, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        OwnerReference(
            api_version=str(o.get("apiVersion", "")),
            kind=str(o.get("kind", "")),
            name=str(o.get("name", "")),
            uid=str(o.get("uid", "")),
        )
        for o in raw
        if isinstance(o, Mapping)
    )
