"""OCI content descriptors, as an image index or the referrers API lists them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    """An OCI content descriptor, read tolerantly: a member of the wrong type counts as absent
    (``None``; annotations keep only string values), so whoever uses it decides what its
    absence means."""

    digest: str | None = None
    media_type: str | None = None
    artifact_type: str | None = None
    size: int | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Descriptor:
        """The descriptor ``raw`` (one entry of an index's ``manifests``)."""
        annotations = raw.get("annotations")
        size = raw.get("size")
        return cls(
            digest=_string(raw.get("digest")),
            media_type=_string(raw.get("mediaType")),
            artifact_type=_string(raw.get("artifactType")),
            size=size if type(size) is int else None,
            annotations=(
                {k: v for k, v in annotations.items() if isinstance(v, str)}
                if isinstance(annotations, Mapping)
                else {}
            ),
        )


def index_manifests(index: Mapping[str, Any], artifact_type: str) -> list[Descriptor]:
    """The descriptors an image index lists, only those of ``artifact_type`` unless it is
    empty; entries that are not objects are skipped."""
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        return []
    return [
        Descriptor.read(m)
        for m in manifests
        if isinstance(m, dict) and (not artifact_type or m.get("artifactType") == artifact_type)
    ]


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None
