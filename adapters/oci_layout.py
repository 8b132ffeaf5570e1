"""OCI image layouts on disk: the :class:`Registry` port offline.

A bundle's registry content (docs/decisions/0055-offline-bundles.md) is an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``) in one of two shapes, both read here:

* **shared** — ``oci/`` holds every repository; each descriptor of ``index.json`` names its
  repository in ``org.opencontainers.image.ref.name``: ``registry/repository:tag`` for a tag,
  ``registry/repository@sha256:<hex>`` for an untagged manifest (a referrer). This is what
  ``connaisseur bundle export`` writes and what
  ``skopeo copy docker://R/P:T oci:BUNDLE/oci:R/P:T`` writes;
* **per repository** — ``oci/<registry>/<repository>/`` is a layout of that repository alone,
  tags as bare ``ref.name`` values and untagged manifests without one, as
  ``oras copy --to-oci-layout R/P:T BUNDLE/oci/R/P:T`` and
  ``skopeo copy docker://R/P:T oci:BUNDLE/oci/R/P:T`` write it. Where it exists it serves its
  repository.

What a registry answers, a layout answers the same way: a tag resolves through the index; a
manifest by digest exists in a repository when the index lists it there or an index listed
there names it; referrers are the manifests listed for the repository whose ``subject`` is the
digest, together with the referrers tag schema (``sha256-<hex>``) when the layout holds that tag.
Every manifest and blob is checked against its digest and its declared size, so a bundle that
was tampered with can only deny. The ``Endpoint`` (credentials, CA) is not used: nothing is
fetched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connaisseur.adapters.bundle_files import BundleFiles
from connaisseur.adapters.registry import blob_limit, declared_media_type, json_object
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint, Manifest, Registry
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, ConnaisseurError, VerificationError
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.oci import Descriptor

OCI_DIR = "oci"
REF_NAME = "org.opencontainers.image.ref.name"
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
_ARTEFACT_TAG = re.compile(r"sha256-[0-9a-f]{64}(\.[a-z]+)?")

#: A descriptor as the layout lists it (JSON).
Raw = Mapping[str, Any]


def blob_path(digest: str) -> tuple[str, str, str]:
    """Segments of a blob in a layout, relative to the layout's directory."""
    algorithm, _, encoded = digest.partition(":")
    return "blobs", algorithm, encoded


@dataclass(slots=True)
class _Repository:
    """What one layout lists for one repository: tags and untagged manifests."""

    tags: dict[str, Raw] = field(default_factory=dict)
    manifests: dict[str, Raw] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)

    def add(self, tag: str, descriptor: Raw) -> None:
        digest = descriptor["digest"]
        self.manifests.setdefault(digest, descriptor)
        if not tag:
            return
        known = self.tags.get(tag)
        if known is not None and known["digest"] != digest:
            self.ambiguous.add(tag)  # two answers for one tag: neither is the registry's
        self.tags[tag] = descriptor


@dataclass(slots=True)
class _Layout:
    """One OCI image layout directory, its ``index.json`` read once."""

    directory: str
    shared: bool
    repositories: dict[str, _Repository] = field(default_factory=dict)
    #: per repository: subject digest → referrer descriptors (built on first need)
    referrers: dict[str, dict[str, list[Raw]]] = field(default_factory=dict)


class OciLayoutRegistry(Registry):
    """The Registry port over a bundle's OCI image layouts."""

    def __init__(
        self,
        files: BundleFiles,
        *,
        max_manifest_bytes: int = 4 * 1024 * 1024,
        max_blob_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._files = files
        self._max_manifest = max_manifest_bytes
        self._max_blob = max_blob_bytes
        self._layouts: dict[str, _Layout | None] = {}

    # ---------------------------------------------------------------- Registry port

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        """The digest the image's tag points to in the bundle (or its digest, if the bundle
        has that manifest for the repository).

        Raises:
            VerificationError: ``image_not_found``, ``malformed_trust_data``, ``fetch_failed``.
        """
        reference = image.digest or image.tag
        layout, repository = await self._repository(image)
        descriptor = await self._descriptor(layout, repository, image, reference)
        return str(descriptor["digest"]) if not image.digest else image.digest

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        """The manifest ``reference`` (tag or digest) of the image's repository, read from the
        layout and checked against its digest and declared size.

        Raises:
            VerificationError: ``image_not_found`` / ``no_trust_data`` (not in the bundle),
                ``malformed_trust_data``, ``fetch_failed``.
        """
        layout, repository = await self._repository(image)
        descriptor = await self._descriptor(layout, repository, image, reference)
        digest = str(descriptor["digest"])
        body = await self._content(layout, digest, image, reference, self._max_manifest)
        _check_size(body, descriptor.get("size"), f"manifest {image.context}@{digest}")
        return Manifest(
            digest=digest,
            media_type=declared_media_type(body, str(descriptor.get("mediaType") or "")),
            body=body,
        )

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        """The blob ``ref.digest`` from the layout serving the image's repository, with the
        online adapter's size rules (declared size over the cap or not matching:
        ``malformed_trust_data``; over ``max_bytes``: ``fetch_failed``).

        Raises:
            VerificationError: ``no_trust_data`` (not in the bundle), ``malformed_trust_data``,
                ``fetch_failed``.
        """
        digest, size = ref.digest, ref.size
        limit = blob_limit(image, ref, self._max_blob)
        where = f"blob {digest} of {image.context}"
        layout, _ = await self._repository(image)
        body = await self._files.read(layout.directory, *blob_path(digest))
        if body is None:
            raise VerificationError(
                f"blob {digest} of {image.context} is not in the bundle",
                category=Category.NO_TRUST_DATA,
            )
        if size is not None:
            _check_size(body, size, where)
        elif len(body) > limit:
            raise VerificationError(
                f"{where} is larger than {limit} bytes", category=Category.FETCH_FAILED
            )
        _check_digest(body, digest, where)
        return body

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        """Manifests of the repository whose ``subject`` is the image's digest, and the entries
        of its ``sha256-<hex>`` referrers tag, once each, of ``artifact_type`` (all when empty).

        Raises:
            VerificationError: ``malformed_trust_data``, ``fetch_failed``.
        """
        digest = image.digest
        layout, repository = await self._repository(image)
        by_subject = await self._referrers_by_subject(layout, image, repository)
        found = {d["digest"]: d for d in by_subject.get(digest, [])}
        tag = digest.replace(":", "-", 1)
        if tag in repository.tags:
            index = await self.manifest(image, tag, endpoint, deadline)
            for d in _index_entries(index.body, f"referrers tag of {image.context}@{digest}"):
                found.setdefault(d["digest"], d)
        return [
            Descriptor.read(d)
            for d in found.values()
            if not artifact_type or d.get("artifactType") == artifact_type
        ]

    # ---------------------------------------------------------------- layouts

    async def _repository(self, image: ImageReference) -> tuple[_Layout, _Repository]:
        """The layout serving the image's repository (its own, else the shared one) and what
        it lists for it."""
        for directory, shared in (
            (f"{OCI_DIR}/{image.registry}/{image.repository}", False),
            (OCI_DIR, True),
        ):
            layout = await self._layout(directory, shared)
            if layout is None:
                continue
            repository = layout.repositories.get("" if not shared else image.context)
            if repository is not None:
                return layout, repository
            if not shared:
                break  # an own layout that lists nothing still owns the repository
        raise VerificationError(
            f"image {image.context} is not in the bundle {self._files.root}",
            category=Category.IMAGE_NOT_FOUND,
        )

    async def _layout(self, directory: str, shared: bool) -> _Layout | None:
        if directory in self._layouts:
            return self._layouts[directory]
        try:
            raw = await self._files.read(directory, "index.json")
        except VerificationError as e:
            if e.category is Category.MALFORMED_TRUST_DATA:  # an unsafe repository name
                raise VerificationError(e.message, category=Category.IMAGE_NOT_FOUND) from e
            raise
        layout = None if raw is None else _parse_layout(directory, shared, raw)
        self._layouts[directory] = layout
        return layout

    async def _descriptor(
        self, layout: _Layout, repository: _Repository, image: ImageReference, reference: str
    ) -> Raw:
        """The descriptor a tag or digest names in the repository."""
        if not is_digest(reference):
            if reference in repository.ambiguous:
                raise VerificationError(
                    f"the bundle has two manifests for {image.context}:{reference}",
                    category=Category.MALFORMED_TRUST_DATA,
                )
            found = repository.tags.get(reference)
        else:
            found = repository.manifests.get(reference) or await self._child(
                layout, repository, image, reference
            )
        if found is None:
            raise _not_found(image, reference, self._files)
        return found

    async def _child(
        self, layout: _Layout, repository: _Repository, image: ImageReference, digest: str
    ) -> Raw | None:
        """A manifest an index of the repository names (a platform of a multi-arch image)."""
        for listed in list(repository.manifests.values()):
            if listed.get("mediaType") not in INDEX_TYPES:
                continue
            body = await self._content(
                layout, listed["digest"], image, listed["digest"], self._max_manifest
            )
            for child in _index_entries(body, f"index {image.context}@{listed['digest']}"):
                if child["digest"] == digest:
                    return child
        return None

    async def _referrers_by_subject(
        self, layout: _Layout, image: ImageReference, repository: _Repository
    ) -> dict[str, list[Raw]]:
        """Subject digest → descriptors of the repository's manifests that refer to it, as the
        OCI referrers API describes them; built once per repository."""
        key = image.context if layout.shared else ""
        known = layout.referrers.get(key)
        if known is not None:
            return known
        found: dict[str, list[Raw]] = {}
        for digest, listed in list(repository.manifests.items()):
            if listed.get("mediaType") in INDEX_TYPES:
                continue
            try:
                body = await self._content(layout, digest, image, digest, self._max_manifest)
                document = jsondoc.loads(body)
            except (ConnaisseurError, ValueError):
                continue  # a listed manifest that is not there or not JSON refers to nothing
            subject = document.get("subject") if isinstance(document, dict) else None
            if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
                found.setdefault(subject["digest"], []).append(
                    _referrer_descriptor(document, digest, len(body), listed)
                )
        layout.referrers[key] = found
        return found

    async def _content(
        self, layout: _Layout, digest: str, image: ImageReference, reference: str, limit: int
    ) -> bytes:
        """A listed manifest's bytes, checked against its digest."""
        if not is_digest(digest):
            raise VerificationError(
                f"the bundle lists {image.context}:{reference} with an unsupported digest",
                category=Category.MALFORMED_TRUST_DATA,
            )
        body = await self._files.read(layout.directory, *blob_path(digest))
        if body is None:
            raise _not_found(image, reference, self._files)
        if len(body) > limit:
            raise VerificationError(
                f"manifest {image.context}@{digest} is larger than {limit} bytes",
                category=Category.MALFORMED_TRUST_DATA,
            )
        _check_digest(body, digest, f"manifest {image.context}@{digest}")
        return body


def _parse_layout(directory: str, shared: bool, raw: bytes) -> _Layout:
    """``index.json`` of a layout: every manifest descriptor by the repository it names."""
    index = json_object(raw, f"{directory}/index.json")
    manifests = index.get("manifests")
    layout = _Layout(directory=directory, shared=shared)
    for descriptor in manifests if isinstance(manifests, list) else []:
        if not isinstance(descriptor, dict) or not is_digest(str(descriptor.get("digest"))):
            continue
        named = _named(descriptor, shared)
        if named is not None:
            context, tag = named
            layout.repositories.setdefault(context, _Repository()).add(tag, descriptor)
    if not shared:
        layout.repositories.setdefault("", _Repository())
    return layout


def _named(descriptor: Raw, shared: bool) -> tuple[str, str] | None:
    """(repository, tag) a descriptor is listed under: ``""`` as repository in a layout of one
    repository, ``""`` as tag for an untagged manifest; ``None`` for one a shared layout does
    not attribute to a repository."""
    annotations = descriptor.get("annotations")
    name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    if not isinstance(name, str):
        return None if shared else ("", "")
    if not shared:
        return ("", name) if "/" not in name and "@" not in name else None
    if "/" not in name:
        return None  # a bare tag names no repository in a shared layout
    try:
        reference = ImageReference.parse(name)
    except ConnaisseurError:
        return None
    if reference.digest:
        return (reference.context, "") if reference.digest == descriptor["digest"] else None
    return reference.context, reference.tag


def _referrer_descriptor(document: Mapping[str, Any], digest: str, size: int, listed: Raw) -> Raw:
    """The descriptor the referrers API gives for a manifest (image-spec, "Listing
    Referrers"): its artifactType, else its config's media type, and its annotations."""
    config = document.get("config")
    artifact_type = document.get("artifactType")
    if not isinstance(artifact_type, str) and isinstance(config, dict):
        artifact_type = config.get("mediaType")
    descriptor: dict[str, Any] = {
        "mediaType": document.get("mediaType") or listed.get("mediaType"),
        "digest": digest,
        "size": size,
    }
    if isinstance(artifact_type, str):
        descriptor["artifactType"] = artifact_type
    annotations = document.get("annotations")
    if isinstance(annotations, dict):
        descriptor["annotations"] = annotations
    return descriptor


def _index_entries(body: bytes, what: str) -> list[Raw]:
    manifests = json_object(body, what).get("manifests")
    return [
        m
        for m in (manifests if isinstance(manifests, list) else [])
        if isinstance(m, dict) and is_digest(str(m.get("digest")))
    ]


def _not_found(image: ImageReference, reference: str, files: BundleFiles) -> VerificationError:
    """What a registry's 404 says, naming the bundle."""
    if _ARTEFACT_TAG.fullmatch(reference):
        return VerificationError(
            f"no signature data {reference} for {image.context} in the bundle {files.root}",
            category=Category.NO_TRUST_DATA,
        )
    sep = "@" if is_digest(reference) else ":"
    return VerificationError(
        f"image {image.context}{sep}{reference} is not in the bundle {files.root}",
        category=Category.IMAGE_NOT_FOUND,
    )


def _check_digest(body: bytes, digest: str, where: str) -> None:
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise VerificationError(
            f"{where} does not match its digest", category=Category.MALFORMED_TRUST_DATA
        )


def _check_size(body: bytes, declared: Any, where: str) -> None:
    if isinstance(declared, int) and len(body) != declared:
        raise VerificationError(
            f"{where} is {len(body)} bytes, its descriptor declares {declared}",
            category=Category.MALFORMED_TRUST_DATA,
        )
