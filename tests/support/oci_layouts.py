"""OCI image layouts written by hand for the offline adapters' tests, in the shapes real tools
write: shared (``ref.name`` = ``registry/repository:tag``, as ``skopeo copy … oci:DIR:R/P:T``)
or one repository (bare tags, untagged referrers without a name, as ``oras copy
--to-oci-layout``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cosign import sha256

REF_NAME = "org.opencontainers.image.ref.name"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
BLOB = "application/octet-stream"


@dataclass
class LayoutWriter:
    """Collects blobs and index entries; :meth:`write` lays them out under ``root``."""

    root: Path
    blobs: dict[str, bytes] = field(default_factory=dict)
    listed: list[dict[str, Any]] = field(default_factory=list)

    def blob(self, content: bytes) -> str:
        digest = sha256(content)
        self.blobs[digest] = content
        return digest

    def manifest(
        self,
        body: bytes,
        name: str | None = None,
        media_type: str = OCI_MANIFEST,
        size: int | None = None,
    ) -> str:
        """Store ``body`` and list it in ``index.json`` (under ``name`` when given)."""
        digest = self.blob(body)
        entry: dict[str, Any] = {
            "mediaType": media_type,
            "digest": digest,
            "size": len(body) if size is None else size,
        }
        if name is not None:
            entry["annotations"] = {REF_NAME: name}
        self.listed.append(entry)
        return digest

    def write(self) -> Path:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.listed}
        (self.root / "index.json").write_text(json.dumps(index))
        for digest, content in self.blobs.items():
            (self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(content)
        return self.root


def artifact_manifest(subject: str, subject_size: int, artifact_type: str, layer: bytes) -> bytes:
    """An OCI 1.1 artefact manifest referring to ``subject`` with one layer."""
    empty = b"{}"
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": sha256(empty),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            ],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
            "annotations": {"made-by": "test"},
        }
    ).encode()


def index_of(*children: tuple[str, int]) -> bytes:
    """An image index listing ``(digest, size)`` manifests."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": s} for d, s in children],
        }
    ).encode()
