"""Where cosign keeps the signatures and attestations of an image, fetched through the
Registry port only (so every Registry adapter serves them unchanged, wherever it reads
from).

Three places, asked at once as soon as the image digest is known:

* the classic ``sha256-<hex>.sig`` tag (simple-signing layers);
* the classic ``sha256-<hex>.att`` tag (DSSE layers), only when attestations are wanted;
* the OCI 1.1 referrers of the digest (the referrers API, else the ``sha256-<hex>`` referrers
  tag schema; the Registry adapter knows which a registry has, or asks both at once): Sigstore
  bundles (cosign v3, v2 ``--new-bundle-format``) and classic signature manifests (v2
  ``--registry-referrers-mode=oci-1-1``).

Sequential round trips after auth (docs/decisions/0018-performance-targets.md): 1 resolve the
tag (for ``repo@digest`` it goes out with step 2); 2 the three listings; 3 the classic blobs and
the referrer manifests; 4 the referrers' blobs (bundles). A rule met by the classic signatures
ends before step 4. Everything read is bounded: at most ``MAX_REFERRERS`` referrers and
``MAX_SIGNATURE_LAYERS`` layers per manifest, payloads and bundles capped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint, Registry
from connaisseur.domain.cosign_layout import (
    DSSE_MEDIA_TYPE,
    MAX_PAYLOAD_BYTES,
    SIMPLE_SIGNING_MEDIA_TYPE,
    LayerDescriptor,
    attestation_tag,
    signature_layers,
    signature_tag,
    to_attestation_layer,
    to_signature_layer,
)
from connaisseur.domain.cosign_referrers import ReferrerManifest, maybe_cosign
from connaisseur.domain.cosign_signed import (
    BundleSigned,
    ClassicAttestation,
    ClassicSignature,
    Format,
    Signed,
)
from connaisseur.domain.dsse import MAX_ENVELOPE_BYTES
from connaisseur.domain.errors import Category, ConnaisseurError, Rejection, VerificationError
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.oci import Descriptor
from connaisseur.domain.sigstore import Stage
from connaisseur.domain.sigstore_bundle import (
    MAX_BUNDLE_BYTES,
    SigstoreBundle,
)

#: Referrers of one image looked at (signatures, attestations, and unknown ones to classify).
MAX_REFERRERS = 64
#: Fetches in flight at once for one image.
CONCURRENT_FETCHES = 8
#: A signature bundle is a few kilobytes (a certificate, a log entry, a timestamp); only an
#: attestation's may be as large as its predicate.
MAX_SIGNATURE_BUNDLE_BYTES = 256 * 1024
#: Failures that condemn one signature but leave the others worth trying.
PER_SIGNATURE = frozenset(
    {
        Category.NO_TRUST_DATA,
        Category.MALFORMED_TRUST_DATA,
        Category.SIGNATURE_INVALID,
        Category.DIGEST_MISMATCH,
        Category.FETCH_FAILED,  # over a size cap
    }
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """One signature or attestation as fetched: what it is and where it was, or why it could
    not be read (``failure``)."""

    where: str
    format: Format
    attestation: bool = False
    #: the predicate type an attestation declares (before its signature is checked)
    predicate_type: str | None = None
    signed: Signed | None = None
    failure: Rejection | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Wanted:
    """What the verification needs: formats, and which attestations (``None``: every one,
    for ``explain``)."""

    formats: frozenset[Format] = frozenset(Format)
    predicate_types: frozenset[str] | None = frozenset()

    def attestation(self, predicate_type: str | None) -> bool:
        if self.predicate_types is None:
            return True
        return predicate_type is None or predicate_type in self.predicate_types

    @property
    def any_attestation(self) -> bool:
        return self.predicate_types is None or bool(self.predicate_types)


@dataclass
class CosignDiscovery:
    """Lists and fetches an image's cosign signatures and attestations (one verification)."""

    registry: Registry
    endpoint: Endpoint
    image: ImageReference
    deadline: Deadline
    _limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENT_FETCHES))

    async def classic(self, digest: str, wanted: Wanted) -> list[Found]:
        """The ``.sig`` signatures and the wanted ``.att`` attestations: their manifests, then
        their blobs (steps 2 and 3). When the rule excludes the classic format, only what the
        ``.sig`` manifest lists (for the denial that says so).

        Raises:
            ConnaisseurError: a failure other than "nothing there" (transient,
                ``unauthorized``, a malformed manifest).
        """
        where = "classic .sig tag"
        if Format.CLASSIC not in wanted.formats:
            listed = await self._layers(signature_tag(digest), SIMPLE_SIGNING_MEDIA_TYPE)
            return [
                Found(where=f"{where} layer {i}", format=Format.CLASSIC) for i in range(len(listed))
            ]
        signatures, attestations = await _all(
            self._layers(signature_tag(digest), SIMPLE_SIGNING_MEDIA_TYPE),
            self._layers(attestation_tag(digest), DSSE_MEDIA_TYPE)
            if wanted.any_attestation
            else _nothing(),
        )
        fetched = await _all(
            self.classic_signatures(signatures, where),
            self.classic_attestations(attestations, wanted),
        )
        return [found for group in fetched for found in group]

    async def _layers(self, tag: str, media_type: str) -> list[LayerDescriptor]:
        try:
            manifest = await self.registry.manifest(self.image, tag, self.endpoint, self.deadline)
            return signature_layers(manifest.body, media_type)
        except VerificationError as e:
            if e.category is Category.NO_TRUST_DATA:
                return []
            raise

    # ------------------------------------------------------------------ step 3: classic blobs

    async def classic_signatures(
        self, layers: Sequence[LayerDescriptor], where: str
    ) -> list[Found]:
        """The simple-signing layers with their payloads (blobs fetched concurrently)."""

        async def fetch(index: int, layer: LayerDescriptor) -> Found:
            place = f"{where} layer {index}"
            if layer.oversized:
                return _unread(place, Format.CLASSIC, f"payload over {MAX_PAYLOAD_BYTES} bytes")
            body = await self._blob(layer, MAX_PAYLOAD_BYTES)
            return Found(
                where=place,
                format=Format.CLASSIC,
                signed=ClassicSignature(to_signature_layer(layer, body)),
            )

        return await self._each(layers, fetch, where, Format.CLASSIC)

    async def classic_attestations(
        self, layers: Sequence[LayerDescriptor], wanted: Wanted
    ) -> list[Found]:
        """The DSSE layers of the ``.att`` tag whose predicate type is wanted."""
        where = "classic .att tag"

        async def fetch(index: int, layer: LayerDescriptor) -> Found:
            predicate = layer.annotations.get("predicateType") or None
            found = Found(
                where=f"{where} layer {index}",
                format=Format.CLASSIC,
                attestation=True,
                predicate_type=predicate,
            )
            if not wanted.attestation(predicate):
                return found
            body = await self._blob(layer, MAX_ENVELOPE_BYTES)
            signed = ClassicAttestation(to_attestation_layer(layer, body))
            return replace(found, signed=signed)

        return await self._each(layers, fetch, where, Format.CLASSIC, attestation=True)

    # -------------------------------------------------------------- steps 3 and 4: referrers

    async def referrers(self, digest: str, wanted: Wanted) -> list[Found]:
        """Every signature and attestation among the digest's OCI 1.1 referrers: the listing,
        the manifests, then the blobs (steps 2 to 4), each referrer on its own as soon as its
        manifest is there.

        Raises:
            ConnaisseurError: a failure of the listing, or one every fetch would share.
        """
        pinned = self.image.with_digest(digest)
        listed = await self.registry.referrers(pinned, "", self.endpoint, self.deadline)
        chosen = [d for d in listed if maybe_cosign(d)][:MAX_REFERRERS]

        async def fetch(index: int, descriptor: Descriptor) -> list[Found]:
            return await self._referrer(descriptor, wanted)

        nested = await self._each(chosen, fetch, "referrers", None)
        return [f for found in nested for f in (found if isinstance(found, list) else [found])]

    async def _referrer(self, descriptor: Descriptor, wanted: Wanted) -> list[Found]:
        digest = descriptor.digest
        where = f"referrer {digest}" if digest else "referrer"
        if not digest or not is_digest(digest):
            return [_unread(where, Format.BUNDLE, "the referrer has no valid digest")]
        served = await self._guarded(
            self.registry.manifest(self.image, digest, self.endpoint, self.deadline)
        )
        manifest = ReferrerManifest.read(served.body, descriptor)
        if manifest.classic:
            if Format.CLASSIC not in wanted.formats:
                return [Found(where=f"classic {where}", format=Format.CLASSIC)]
            layers = signature_layers(manifest.body)
            return await self.classic_signatures(layers, f"classic {where}")
        if manifest.bundle:
            return [await self._bundle(manifest, where, wanted)]
        return []

    async def _bundle(self, manifest: ReferrerManifest, where: str, wanted: Wanted) -> Found:
        found = Found(
            where=where,
            format=Format.BUNDLE,
            attestation=manifest.attestation,
            predicate_type=manifest.predicate_type,
        )
        if Format.BUNDLE not in wanted.formats or (
            manifest.attestation and not wanted.attestation(manifest.predicate_type)
        ):
            return found
        layer = manifest.bundle_layer
        if layer is None:
            return replace(found, failure=_rejection("the referrer has no Sigstore bundle layer"))
        cap = MAX_BUNDLE_BYTES if manifest.attestation else MAX_SIGNATURE_BUNDLE_BYTES
        body = await self._blob(layer, cap)
        try:
            signed = BundleSigned(SigstoreBundle.parse(body))
        except VerificationError as e:
            return replace(found, failure=_as_rejection(e))
        return replace(found, signed=signed, attestation=signed.attestation)

    # ------------------------------------------------------------------------------ helpers

    async def _blob(self, layer: LayerDescriptor, cap: int) -> bytes:
        ref = BlobRef(digest=layer.digest, size=layer.size, max_bytes=cap)
        fetch = self.registry.blob(self.image, ref, self.endpoint, self.deadline)
        return await self._guarded(fetch)

    async def _guarded(self, call: Awaitable[T]) -> T:
        async with self._limit:
            return await call

    async def _each(
        self,
        items: Sequence[Any],
        fetch: Any,
        where: str,
        kind: Format | None,
        *,
        attestation: bool = False,
    ) -> list[Any]:
        """``fetch`` of every item concurrently; one failing for its own reasons is a
        :class:`Found` with its failure, the others' results stay.

        Raises:
            ConnaisseurError: a failure every fetch would share (transient, unauthorized).
        """
        answers = await asyncio.gather(
            *(fetch(i, item) for i, item in enumerate(items)), return_exceptions=True
        )
        results = []
        for index, answer in enumerate(answers):
            if isinstance(answer, ConnaisseurError) and answer.category in PER_SIGNATURE:
                results.append(
                    Found(
                        where=f"{where} #{index}",
                        format=kind or Format.BUNDLE,
                        attestation=attestation,
                        failure=_as_rejection(answer),
                    )
                )
            elif isinstance(answer, ValueError):
                results.append(
                    Found(
                        where=f"{where} #{index}",
                        format=kind or Format.BUNDLE,
                        attestation=attestation,
                        failure=_rejection("a signature manifest is not JSON"),
                    )
                )
            elif isinstance(answer, BaseException):
                raise answer
            else:
                results.append(answer)
        return results


async def _all(*calls: Awaitable[Any]) -> list[Any]:
    """Every call's answer; the first failure (in call order) once all have ended, so the
    image's own failure wins over a listing's."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return list(answers)


async def _nothing() -> list[LayerDescriptor]:
    return []


def _rejection(reason: str) -> Rejection:
    return Rejection(reason, category=Category.MALFORMED_TRUST_DATA, stage=Stage.PAYLOAD)


def _unread(where: str, kind: Format, reason: str) -> Found:
    return Found(where=where, format=kind, failure=_rejection(reason))


def _as_rejection(error: ConnaisseurError) -> Rejection:
    if isinstance(error, Rejection):
        return error
    return Rejection(error.message, category=error.category, stage=Stage.PAYLOAD)
