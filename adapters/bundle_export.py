"""``connaisseur bundle export``: record what verifying images fetches, and write it as a bundle.

The export verifies each image with the configured policy through the upstream adapters,
wrapped here in recording ones (:class:`RecordingRegistry`, :class:`RecordingNotary`,
:class:`RecordingLog`), so the bundle holds by construction what a verification of those images
reads (docs/decisions/0057-export-records-a-verification.md). It then completes what a later
verification might read on another path: every referrer of each image (with their blobs within
the document cap), and every Notary delegation role named by ``targets`` and its delegations.

:class:`BundleRecorder` writes the result (docs/decisions/0055-offline-bundles.md):

* ``oci/`` — one OCI image layout, each manifest listed under its repository
  (``org.opencontainers.image.ref.name`` ``registry/repository:tag`` or
  ``registry/repository@<digest>``); each recorded referrers answer as a referrers tag schema
  index (``sha256-<hex>``) of the subject; image layers are not part of it;
* ``notary/<host>/tuf/<GUN>/metadata/<role>.json`` — the Notary client's trust directory shape;
* ``rekor/<host>/<sha256 hex>.json`` — Rekor's answer for a payload hash;
* ``connaisseur-bundle.json`` — the bundle's manifest: the images and their verdicts at export
  time, every file with its SHA-256, and when the Notary metadata in it expires.

The bundle is written to a new directory beside the target and renamed into place at the end,
so a reader never sees half a bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connaisseur.adapters.bundle_files import MANIFEST_FILE
from connaisseur.adapters.oci_layout import INDEX_TYPES, OCI_DIR, REF_NAME, blob_path
from connaisseur.adapters.rekor import api_entry
from connaisseur.adapters.rekor_directory import rekor_entries_path
from connaisseur.adapters.tuf_directory import notary_role_path
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import (
    BlobRef,
    Endpoint,
    Manifest,
    Notary,
    Registry,
    TransparencyLog,
)
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.notation_envelope import ARTIFACT_TYPE, envelope_layer, parse_envelope
from connaisseur.domain.oci import Descriptor
from connaisseur.domain.rekor import RekorEntry
from connaisseur.domain.tuf import parse_expires

FORMAT = "connaisseur-bundle/v1"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
#: Nested Notary delegations followed at most (``targets/a/b/...``).
MAX_DELEGATION_DEPTH = 4
#: Delegation roles exported per GUN at most.
MAX_DELEGATIONS = 256


@dataclass(slots=True)
class _Repository:
    endpoint: Endpoint
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, str] = field(default_factory=dict)  # digest → media type
    referrers: dict[str, dict[str, Descriptor]] = field(default_factory=dict)


@dataclass(slots=True)
class _Gun:
    host: str
    gun: str
    endpoint: Endpoint
    roles: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class BundleRecorder:
    """Everything the recording adapters saw, and how to write it as a bundle."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    repositories: dict[str, _Repository] = field(default_factory=dict)
    guns: dict[tuple[str, str], _Gun] = field(default_factory=dict)
    rekor: dict[tuple[str, str], list[RekorEntry]] = field(default_factory=dict)
    #: the images verified, pinned to the digest they resolved to (``context@digest`` → image),
    #: and the registry each was read through (its validator's mirrors)
    subjects: dict[str, tuple[ImageReference, Registry]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- recording

    def repository(self, image: ImageReference, endpoint: Endpoint) -> _Repository:
        return self.repositories.setdefault(image.context, _Repository(endpoint=endpoint))

    def subject(
        self, image: ImageReference, digest: str, endpoint: Endpoint, reader: Registry
    ) -> None:
        """An image verified as ``digest`` through ``reader``: its referrers are exported,
        read the same way."""
        self.repository(image, endpoint)
        pinned = image.with_digest(digest)
        self.subjects.setdefault(f"{pinned.context}@{digest}", (pinned, reader))

    def manifest(
        self, image: ImageReference, reference: str, manifest: Manifest, endpoint: Endpoint
    ) -> None:
        repository = self.repository(image, endpoint)
        self.blobs[manifest.digest] = manifest.body
        repository.manifests.setdefault(manifest.digest, manifest.media_type)
        if not is_digest(reference):
            repository.tags[reference] = manifest.digest

    def referrers(
        self, image: ImageReference, found: Sequence[Descriptor], endpoint: Endpoint
    ) -> None:
        known = self.repository(image, endpoint).referrers.setdefault(image.digest, {})
        for descriptor in found:
            if descriptor.digest is not None:
                known.setdefault(descriptor.digest, descriptor)

    def gun(self, host: str, gun: str, endpoint: Endpoint) -> _Gun:
        return self.guns.setdefault((host, gun), _Gun(host=host, gun=gun, endpoint=endpoint))

    # ---------------------------------------------------------------- completing

    async def complete(self, notary: Notary, deadline: Deadline, max_blob_bytes: int) -> None:
        """Add what another verification path may read: every referrer of each verified
        image with its blobs (through the registry, and so the mirrors, the image was read
        through), every Notary delegation role reachable from ``targets``.

        Raises:
            ConnaisseurError: a fetch failed for a reason other than "not there".
        """
        for image, registry in list(self.subjects.values()):
            endpoint = self.repositories[image.context].endpoint
            await self._referrers(registry, image, endpoint, deadline, max_blob_bytes)
        for entry in list(self.guns.values()):
            await self._delegations(notary, entry, deadline)

    async def _referrers(
        self,
        registry: Registry,
        image: ImageReference,
        endpoint: Endpoint,
        deadline: Deadline,
        max_blob_bytes: int,
    ) -> None:
        for descriptor in await registry.referrers(image, "", endpoint, deadline):
            if descriptor.digest is None or not is_digest(descriptor.digest):
                continue
            try:
                manifest = await registry.manifest(image, descriptor.digest, endpoint, deadline)
                for blob in _blobs_of(manifest.body):
                    if blob.size is not None and blob.size > max_blob_bytes:
                        self.skipped.append(f"{image.context}@{blob.digest} ({blob.size} bytes)")
                        continue
                    await registry.blob(image, blob, endpoint, deadline)
            except ConnaisseurError as e:
                if e.transient:
                    raise
                self.skipped.append(f"{image.context}@{descriptor.digest}: {e.message}")

    async def _delegations(self, notary: Notary, entry: _Gun, deadline: Deadline) -> None:
        parents = ["targets"]
        for _ in range(MAX_DELEGATION_DEPTH):
            wanted = [
                name
                for parent in parents
                for name in _delegated_roles(entry.roles.get(parent))
                if name not in entry.roles
            ][: max(0, MAX_DELEGATIONS - len(entry.roles))]
            if not wanted:
                return
            await notary.fetch_roles(entry.host, entry.gun, wanted, entry.endpoint, deadline)
            parents = wanted

    # ---------------------------------------------------------------- writing

    def write(self, target: Path, created: datetime, verdicts: Sequence[Mapping[str, Any]]) -> Path:
        """Write the bundle to ``target`` (which must not exist, or be an empty directory).

        Raises:
            OSError: the bundle cannot be written; ``FileExistsError`` when ``target`` is a
                non-empty directory or a file.
        """
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise FileExistsError(f"{target} exists and is not an empty directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            files = {**self._layout_files(), **self._notary_files(), **self._rekor_files()}
            for relative, content in files.items():
                path = staging / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            manifest = self._manifest(files, created, verdicts)
            (staging / MANIFEST_FILE).write_bytes(_json(manifest))
            if target.exists():
                target.rmdir()
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _layout_files(self) -> dict[str, bytes]:
        listed: list[dict[str, Any]] = []
        blobs = dict(self.blobs)
        for context, repository in sorted(self.repositories.items()):
            for subject, found in sorted(repository.referrers.items()):
                if not found:
                    continue  # no referrers: an absent tag says the same offline
                referrers = _referrers_index(found.values())
                digest = _sha256(referrers)
                blobs[digest] = referrers
                repository.tags.setdefault(subject.replace(":", "-", 1), digest)
                repository.manifests.setdefault(digest, OCI_INDEX)
            tagged = set()
            for tag, digest in sorted(repository.tags.items()):
                media_type = repository.manifests[digest]
                listed.append(_listed(digest, media_type, blobs[digest], f"{context}:{tag}"))
                tagged.add(digest)
            for digest, media_type in sorted(repository.manifests.items()):
                if digest not in tagged:
                    listed.append(_listed(digest, media_type, blobs[digest], f"{context}@{digest}"))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}
        files = {
            f"{OCI_DIR}/oci-layout": _json({"imageLayoutVersion": "1.0.0"}),
            f"{OCI_DIR}/index.json": _json(index),
        }
        for digest, content in blobs.items():
            files["/".join((OCI_DIR, *blob_path(digest)))] = content
        return files

    def _notary_files(self) -> dict[str, bytes]:
        return {
            "/".join(notary_role_path(entry.host, entry.gun, role)): content
            for entry in self.guns.values()
            for role, content in entry.roles.items()
        }

    def _rekor_files(self) -> dict[str, bytes]:
        return {
            "/".join(rekor_entries_path(host, artifact_hash)): _json(
                [{f"{e.log_id}-{e.log_index}": api_entry(e)} for e in entries]
            )
            for (host, artifact_hash), entries in self.rekor.items()
            if entries
        }

    def _manifest(
        self, files: Mapping[str, bytes], created: datetime, verdicts: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        notary: list[dict[str, Any]] = [
            {"host": e.host, "gun": e.gun, "roles": _role_summary(e.roles)}
            for e in self.guns.values()
        ]
        notation = self._notation_signatures()
        ends = [*_notary_expiries(notary), *(until for _, until in notation)]
        return {
            "format": FORMAT,
            "created": _rfc3339(created),
            "refreshBefore": _rfc3339(min(ends)) if ends else None,
            "images": list(verdicts),
            "repositories": {
                context: {"tags": dict(sorted(r.tags.items())), "manifests": len(r.manifests)}
                for context, r in sorted(self.repositories.items())
            },
            "notary": notary,
            "notation": [
                {"signature": digest, "validUntil": _rfc3339(until)} for digest, until in notation
            ],
            "rekor": sorted(f"{host} {h}" for host, h in self.rekor if self.rekor[host, h]),
            "skipped": self.skipped,
            "files": {name: _sha256(content) for name, content in sorted(files.items())},
        }

    def _notation_signatures(self) -> list[tuple[str, datetime]]:
        """Each Notation signature in the bundle and when it stops verifying unless a
        timestamp vouches for it: its expiry header or its chain's first ``notAfter``."""
        found = []
        for digest in sorted({d for r in self.repositories.values() for d in r.manifests}):
            until = self._notation_valid_until(digest)
            if until is not None:
                found.append((digest, until))
        return found

    def _notation_valid_until(self, digest: str) -> datetime | None:
        body = self.blobs.get(digest, b"")
        try:
            document = jsondoc.loads(body)
            if not isinstance(document, dict) or document.get("artifactType") != ARTIFACT_TYPE:
                return None
            layer = envelope_layer(body, digest)
            envelope = parse_envelope(layer.media_type, self.blobs[layer.digest])
        except (ConnaisseurError, ValueError, KeyError):
            return None  # not a Notation signature this bundle can read: it verifies nothing
        ends = [c.not_valid_after_utc for c in envelope.chain]
        return min([*ends, envelope.expiry] if envelope.expiry else ends, default=None)


class RecordingRegistry(Registry):
    """A :class:`Registry` that records every answer of ``inner`` into a recorder."""

    def __init__(self, inner: Registry, recorder: BundleRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        """The digest, read from the manifest itself: the bundle needs its bytes."""
        manifest = await self.manifest(image, image.digest or image.tag, endpoint, deadline)
        return manifest.digest

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        manifest = await self._inner.manifest(image, reference, endpoint, deadline)
        self._recorder.manifest(image, reference, manifest, endpoint)
        if reference in (image.tag, image.digest):
            self._recorder.subject(image, manifest.digest, endpoint, self)
        return manifest

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        content = await self._inner.blob(image, ref, endpoint, deadline)
        self._recorder.repository(image, endpoint)
        self._recorder.blobs[ref.digest] = content
        return content

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        found = await self._inner.referrers(image, artifact_type, endpoint, deadline)
        self._recorder.referrers(image, found, endpoint)
        self._recorder.subject(image, image.digest, endpoint, self)
        return found


class RecordingNotary(Notary):
    """A :class:`Notary` that records every role file ``inner`` returns."""

    def __init__(self, inner: Notary, recorder: BundleRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        fetched = await self._inner.fetch_roles(host, gun, roles, endpoint, deadline)
        entry = self._recorder.gun(host, gun, endpoint)
        entry.roles.update({role: body for role, body in fetched.items() if body is not None})
        return fetched


class RecordingLog(TransparencyLog):
    """A :class:`TransparencyLog` that records the entries ``inner`` finds."""

    def __init__(self, inner: TransparencyLog, recorder: BundleRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def find_entries(
        self, host: str, artifact_hash: str, deadline: Deadline
    ) -> Sequence[RekorEntry]:
        found = await self._inner.find_entries(host, artifact_hash, deadline)
        self._recorder.rekor[host, artifact_hash] = list(found)
        return found


def _blobs_of(body: bytes) -> list[BlobRef]:
    """The config and layer blobs a manifest references (none for an index)."""
    try:
        document = jsondoc.loads(body)
    except ValueError:
        return []
    if not isinstance(document, dict) or document.get("mediaType") in INDEX_TYPES:
        return []
    layers = document.get("layers")
    candidates = [document.get("config"), *(layers if isinstance(layers, list) else [])]
    return [
        BlobRef(digest=d["digest"], size=d.get("size") if type(d.get("size")) is int else None)
        for d in candidates
        if isinstance(d, dict) and is_digest(str(d.get("digest")))
    ]


def _delegated_roles(body: bytes | None) -> list[str]:
    """Names of the roles a ``targets`` (or delegation) file delegates to; unverified, only
    to know what to fetch."""
    try:
        signed = json.loads(body or b"{}").get("signed", {})
        roles = signed.get("delegations", {}).get("roles", [])
        return [r["name"] for r in roles if isinstance(r, dict) and isinstance(r.get("name"), str)]
    except (ValueError, AttributeError, TypeError):
        return []


def _notary_expiries(notary: Sequence[Mapping[str, Any]]) -> list[datetime]:
    """When each exported Notary role expires (a role whose expiry does not parse fails
    verification offline anyway)."""
    ends = []
    for gun in notary:
        for role, summary in gun["roles"].items():
            try:
                ends.append(parse_expires(role, summary.get("expires")))
            except ConnaisseurError:
                continue
    return ends


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _role_summary(roles: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    summary = {}
    for role, content in sorted(roles.items()):
        try:
            signed = json.loads(content).get("signed", {})
        except (ValueError, AttributeError):
            signed = {}
        summary[role] = {
            "version": signed.get("version"),
            "expires": signed.get("expires"),
            "sha256": _sha256(content),
        }
    return summary


def _referrers_index(found: Any) -> bytes:
    manifests = []
    for d in sorted(found, key=lambda d: d.digest or ""):
        entry: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
        if d.artifact_type:
            entry["artifactType"] = d.artifact_type
        if d.annotations:
            entry["annotations"] = dict(d.annotations)
        manifests.append(entry)
    return _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


def _listed(digest: str, media_type: str, body: bytes, name: str) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": digest,
        "size": len(body),
        "annotations": {REF_NAME: name},
    }


def _sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _json(document: Any) -> bytes:
    return json.dumps(document, indent=1, sort_keys=False).encode() + b"\n"


def kubernetes_object(bundle: Path, name: str, namespace: str, kind: str) -> dict[str, Any]:
    """The bundle at ``bundle`` as a ConfigMap or Secret (``kind``) holding it flat: its
    manifest and one key per content, named by the content's SHA-256 hex (keys cannot hold
    ``/``; ``adapters.bundle_files`` maps them back through the manifest).

    Raises:
        OSError: the bundle cannot be read.
        ValueError: it has no manifest (not written by ``bundle export``).
    """
    manifest_path = bundle / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ValueError(f"{bundle} has no {MANIFEST_FILE}")
    manifest = json.loads(manifest_path.read_bytes())
    contents = {MANIFEST_FILE: manifest_path.read_bytes()}
    for relative, digest in manifest["files"].items():
        content = (bundle / relative).read_bytes()
        if _sha256(content) != digest:
            raise ValueError(f"{relative} does not match the bundle's manifest")
        contents[digest.removeprefix("sha256:")] = content
    encoded = {key: base64.b64encode(value).decode() for key, value in sorted(contents.items())}
    metadata = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": "connaisseur"},
    }
    if kind == "secret":
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque"}
        return {**secret, "data": encoded}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "binaryData": encoded}
