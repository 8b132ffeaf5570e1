"""The ``notation`` validator: fetch Notary Project signatures through the Registry port, judge
them with :mod:`domain.notation`, and return the trusted digest.

Sequential round trips (after auth), the fewest the protocol allows
(docs/decisions/0018-performance-targets.md):

1. the image manifest by tag — one GET resolves the tag and gives the size and media type the
   signed target descriptor is checked against (for ``repo@digest`` this GET goes out together
   with step 2);
2. the referrers (OCI 1.1 API, or the ``sha256-<hex>`` tag schema: the Registry adapter knows
   which, or asks both at once);
3. the signature manifests, 4. their envelope blobs — for all signatures naming a trusted
   certificate concurrently (at most ``_CONCURRENT_SIGNATURES`` at a time), then judged in
   order; the other signatures are fetched only if none of those verified.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from connaisseur.application.deadline import Deadline
from connaisseur.application.notation_envelopes import parse_envelope
from connaisseur.application.ports import Clock, Endpoint, Manifest, Registry
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, ConnaisseurError, Rejection
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.notation import (
    ARTIFACT_TYPE,
    ENVELOPE_MEDIA_TYPES,
    MAX_SIGNATURE_ATTEMPTS,
    THUMBPRINT_ANNOTATION,
    NotationPolicy,
    NotationTrustStore,
    RevocationCheck,
    Step,
    Target,
    chain_thumbprints,
    malformed,
    most_relevant_failure,
    no_signature_error,
    revocation_not_checked,
    verify_signature,
)
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import TrustedDigest

log = logging.getLogger(__name__)

#: Failures that condemn one signature but leave the others worth trying.
_PER_SIGNATURE = frozenset(
    {
        Category.NO_TRUST_DATA,
        Category.MALFORMED_TRUST_DATA,
        Category.SIGNATURE_INVALID,
        Category.EXPIRED,
        Category.DIGEST_MISMATCH,
    }
)

#: Signature fetches in flight at once for one image: enough for a key rotation or a few
#: co-signers in one round trip, bounded so that one image cannot take the connection pool.
_CONCURRENT_SIGNATURES = 4

Descriptor = Mapping[str, Any]


class NotationValidator:
    """Verifies Notary Project signatures of an image (``type: notation``)."""

    type = "notation"

    def __init__(
        self,
        settings: ValidatorSettings,
        registry: Registry,
        clock: Clock,
        revocation: RevocationCheck = revocation_not_checked,
    ) -> None:
        """Use the settings as the configuration loader parsed and checked them."""
        self.name = settings.name
        self._roots = settings.trust_roots
        self._store = NotationTrustStore.from_roots(settings.trust_roots)
        cert = settings.cert.pem if settings.cert else None
        self._endpoint = Endpoint(auth=settings.auth, ca_pem=cert)
        self._registry = registry
        self._clock = clock
        self._revocation = revocation

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        """Resolve the image, find its signatures and return the digest one of them vouches for.

        Raises:
            TrustRootError: the rule's ``trustRoot`` does not exist (before any request).
            VerificationError: ``no_trust_data`` (no signature), ``signature_invalid``,
                ``expired``, ``digest_mismatch``, ``malformed_trust_data``, or the Registry
                port's errors (``image_not_found``, transient categories).
        """
        policy = NotationPolicy.build(image.context, options, self._roots)
        manifest, referrers = await self._subject_and_referrers(image, deadline)
        pinned = image.with_digest(manifest.digest)
        target = Target(
            digest=manifest.digest, size=len(manifest.body), media_type=manifest.media_type
        )
        batches = self._candidates(referrers, policy)
        if not batches:
            raise no_signature_error(pinned.name, policy)
        errors: list[Rejection] = []
        for batch in batches:
            evidence = await self._first_verified(pinned, batch, target, policy, deadline, errors)
            if evidence is not None:
                return evidence
        raise most_relevant_failure(errors)

    async def _subject_and_referrers(
        self, image: ImageReference, deadline: Deadline
    ) -> tuple[Manifest, Sequence[Descriptor]]:
        """The image manifest (its digest verified by the adapter) and its referrers.

        By tag, the referrers wait for the digest; by digest, both go out at once.
        """
        if not image.digest:
            manifest = await self._registry.manifest(image, image.tag, self._endpoint, deadline)
            referrers = await self._registry.referrers(
                image, manifest.digest, ARTIFACT_TYPE, self._endpoint, deadline
            )
            return manifest, referrers
        answers: tuple[
            Manifest | BaseException, Sequence[Descriptor] | BaseException
        ] = await asyncio.gather(
            self._registry.manifest(image, image.digest, self._endpoint, deadline),
            self._registry.referrers(image, image.digest, ARTIFACT_TYPE, self._endpoint, deadline),
            return_exceptions=True,
        )
        got_manifest, got_referrers = answers
        # The image's own failure (e.g. image_not_found) is the one a user must see.
        if isinstance(got_manifest, BaseException):
            raise got_manifest
        if isinstance(got_referrers, BaseException):
            raise got_referrers
        return got_manifest, got_referrers

    def _candidates(
        self, referrers: Sequence[Descriptor], policy: NotationPolicy
    ) -> list[list[Descriptor]]:
        """Notation signatures (at most 10) in batches: those naming a trusted certificate
        first, then the others (an annotation is unsigned, so they still get their chance)."""
        signatures = [d for d in referrers if d.get("artifactType", ARTIFACT_TYPE) == ARTIFACT_TYPE]
        trusted = chain_thumbprints(self._store, policy)
        signatures.sort(key=lambda d: not (_thumbprints(d) & trusted))
        signatures = signatures[:MAX_SIGNATURE_ATTEMPTS]
        named = [d for d in signatures if _thumbprints(d) & trusted]
        others = signatures[len(named) :]
        return [batch for batch in (named, others) if batch]

    async def _first_verified(
        self,
        image: ImageReference,
        batch: Sequence[Descriptor],
        target: Target,
        policy: NotationPolicy,
        deadline: Deadline,
        errors: list[Rejection],
    ) -> TrustedDigest | None:
        """Fetch the batch's envelopes concurrently (bounded), judge them in order: the first
        that verifies wins; per-signature failures are appended to ``errors``."""
        limit = asyncio.Semaphore(_CONCURRENT_SIGNATURES)

        async def fetch(descriptor: Descriptor) -> tuple[str, bytes]:
            async with limit:
                return await self._envelope(image, descriptor, deadline)

        fetches = [asyncio.ensure_future(fetch(d)) for d in batch]
        try:
            for fetched in fetches:
                try:
                    media_type, blob = await fetched
                    return self._judge(image, media_type, blob, target, policy)
                except ConnaisseurError as e:
                    if e.category not in _PER_SIGNATURE:
                        raise  # transient or environmental: the other signatures would fail alike
                    errors.append(_as_rejection(e))
            return None
        finally:
            for fetched in fetches:
                fetched.cancel()  # a verdict is reached: fetches not yet sent are not needed
            await asyncio.gather(*fetches, return_exceptions=True)

    def _judge(
        self,
        image: ImageReference,
        media_type: str,
        blob: bytes,
        target: Target,
        policy: NotationPolicy,
    ) -> TrustedDigest:
        result = verify_signature(
            parse_envelope(media_type, blob),
            image=image.name,
            target=target,
            policy=policy,
            store=self._store,
            now=self._clock.now(),
            revocation=self._revocation,
        )
        for failure in result.logged:
            # Level semantics: these checks are "logged", not enforced (README, Notation).
            log.warning("notation validator %s, image %s: %s", self.name, image.name, failure)
        return result.evidence

    async def _envelope(
        self, image: ImageReference, descriptor: Descriptor, deadline: Deadline
    ) -> tuple[str, bytes]:
        """The signature manifest's single envelope layer: (media type, bytes)."""
        digest = descriptor.get("digest")
        if not isinstance(digest, str) or not is_digest(digest):
            raise malformed("a Notation referrer has no valid digest")
        manifest = await self._registry.manifest(image, digest, self._endpoint, deadline)
        layers = _json_object(manifest.body).get("layers")
        if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
            raise malformed(f"Notation signature manifest {digest} must have exactly one layer")
        layer = layers[0]
        media_type, blob_digest = layer.get("mediaType"), layer.get("digest")
        if media_type not in ENVELOPE_MEDIA_TYPES or not isinstance(blob_digest, str):
            raise malformed(f"Notation signature manifest {digest} has an unsupported envelope")
        size = layer.get("size")
        blob = await self._registry.blob(
            image, blob_digest, self._endpoint, deadline, size=size if type(size) is int else None
        )
        return str(media_type), blob


def _thumbprints(descriptor: Descriptor) -> frozenset[str]:
    annotations = descriptor.get("annotations")
    raw = annotations.get(THUMBPRINT_ANNOTATION) if isinstance(annotations, Mapping) else None
    try:
        values = jsondoc.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return frozenset()
    if not isinstance(values, list):
        return frozenset()
    return frozenset(v.lower() for v in values if isinstance(v, str))


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = jsondoc.loads(body)
    except ValueError as e:
        raise malformed("Notation signature manifest is not JSON") from e
    if not isinstance(doc, dict):
        raise malformed("Notation signature manifest is not a JSON object")
    return doc


def _as_rejection(error: ConnaisseurError) -> Rejection:
    """A signature the registry would not serve (404, a digest that does not match) is
    rejected at the first step."""
    if isinstance(error, Rejection):
        return error
    return Rejection(error.message, category=error.category, stage=Step.FETCH)
