"""FakeRegistry: the Registry port over an in-memory OCI tree (or a conformance vector tree).

Paths are ``<repository>/manifests/<tag|digest|sha256-hex>`` and ``<repository>/blobs/<digest>``
like the conformance ``notation_registry`` mock. The OCI 1.1 referrers API is absent, so
``referrers`` reads the ``sha256-<hex>`` referrers tag index, as real clients fall back to.
Everything answers at once (no latency): request *order* under concurrency is not modelled;
the adapter's round trips are tested against the real registry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint, Manifest, Registry
from connaisseur.domain.errors import Category, ConnaisseurError, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.oci import Descriptor, index_manifests


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry(Registry):
    """Serves ``files``; records every request; ``fail`` maps a path to an error to raise."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    fail: dict[str, ConnaisseurError] = field(default_factory=dict)
    blob_caps: list[int | None] = field(default_factory=list)  # max_bytes of each blob read

    @classmethod
    def from_tree(cls, root: Path) -> FakeRegistry:
        """Load ``<root>/<repo>/{manifests,blobs}/<ref>.json`` files."""
        files = {}
        for path in root.rglob("*.json"):
            rel = path.relative_to(root).as_posix()
            if "/manifests/" in rel or "/blobs/" in rel:
                files[rel.removesuffix(".json")] = path.read_bytes()
        return cls(files=files)

    def put_manifest(self, repository: str, body: bytes, *tags: str) -> str:
        digest = sha256(body)
        for ref in (digest, *tags):
            self.files[f"{repository}/manifests/{ref}"] = body
        return digest

    def put_blob(self, repository: str, body: bytes) -> str:
        digest = sha256(body)
        self.files[f"{repository}/blobs/{digest}"] = body
        return digest

    def _get(self, path: str, missing: Category) -> bytes:
        self.requests.append(path)
        if path in self.fail:
            raise self.fail[path]
        if path not in self.files:
            raise VerificationError(f"{path} not found", category=missing)
        return self.files[path]

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        if image.digest:
            return image.digest
        body = self._get(f"{image.repository}/manifests/{image.tag}", Category.IMAGE_NOT_FOUND)
        return sha256(body)

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        # Like the adapter: a missing image tag is image_not_found, anything else (artefact
        # tags, digests of signature manifests) no_trust_data.
        missing = Category.IMAGE_NOT_FOUND if reference == image.tag else Category.NO_TRUST_DATA
        body = self._get(f"{image.repository}/manifests/{reference}", missing)
        digest = sha256(body)
        if reference.startswith("sha256:") and digest != reference:
            raise VerificationError(
                "manifest digest mismatch", category=Category.MALFORMED_TRUST_DATA
            )
        media_type = str(json.loads(body).get("mediaType", ""))
        return Manifest(digest=digest, media_type=media_type, body=body)

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        self.blob_caps.append(ref.max_bytes)
        body = self._get(f"{image.repository}/blobs/{ref.digest}", Category.NO_TRUST_DATA)
        if ref.size is not None and len(body) != ref.size:
            raise VerificationError("blob size mismatch", category=Category.MALFORMED_TRUST_DATA)
        if ref.max_bytes is not None and len(body) > ref.max_bytes:
            raise VerificationError("blob exceeds the cap", category=Category.FETCH_FAILED)
        if sha256(body) != ref.digest:
            raise VerificationError("blob digest mismatch", category=Category.MALFORMED_TRUST_DATA)
        return body

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        self.requests.append(f"{image.repository}/referrers/{image.digest}")  # answered 404
        tag = image.digest.replace(":", "-")
        try:
            body = self._get(f"{image.repository}/manifests/{tag}", Category.NO_TRUST_DATA)
        except VerificationError as e:
            if e.category is Category.NO_TRUST_DATA:
                return []
            raise
        return index_manifests(json.loads(body), artifact_type)


class CountingRegistry(FakeRegistry):
    """Yields to the event loop on every fetch and records how many overlap."""

    in_flight: int = 0
    most_in_flight: int = 0

    async def manifest(self, *args: Any, **kwargs: Any) -> Manifest:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            return await super().manifest(*args, **kwargs)
        finally:
            self.in_flight -= 1


class ServedRegistry:
    """A ``Registry`` serving one manifest wherever a signature manifest is read, and
    ``blob(digest)`` for every blob (fuzzing: the attacker's manifest reaches the validators)."""

    def __init__(
        self,
        manifest: Manifest,
        referrers: Sequence[Descriptor],
        blob: Callable[[str], bytes],
    ) -> None:
        self._manifest = manifest
        self._referrers = referrers
        self._blob = blob

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        return "sha256:" + hashlib.sha256(b"image").hexdigest()

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        if reference == image.tag:
            return Manifest(digest="sha256:" + "1" * 64, media_type="x", body=b"{}")
        return self._manifest

    async def blob(self, image: ImageReference, ref: BlobRef, *_: Any) -> bytes:
        return self._blob(ref.digest)

    async def referrers(self, *_: Any) -> Sequence[Descriptor]:
        return self._referrers
