"""The ``notation`` validator on the validator pipeline (``application/pipeline.py``): its fetch
is the Notary Project signatures through the Registry port, its check ``domain.notation``.

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
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import SignatureValidator, Verification
from connaisseur.application.ports import BlobRef, Clock, Manifest, Registry
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.errors import Category, ConnaisseurError, Rejection
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.notation import (
    RevocationCheck,
    no_signature,
    revocation_not_checked,
    verify_envelope,
)
from connaisseur.domain.notation_envelope import (
    ARTIFACT_TYPE,
    MAX_SIGNATURE_ATTEMPTS,
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    Step,
    Target,
    envelope_layer,
    malformed_signature,
    parse_envelope,
    thumbprints,
)
from connaisseur.domain.notation_policy import NotationPolicy, NotationTrustStore, chain_thumbprints
from connaisseur.domain.oci import Descriptor
from connaisseur.domain.signers import Judgement, Vouch

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

#: ``verify --explain``'s name for each envelope media type (what ``--signature-format`` says).
_ENVELOPE_FORMATS = {MEDIA_TYPE_JWS: "jws", MEDIA_TYPE_COSE: "cose"}


@dataclass(frozen=True, slots=True, kw_only=True)
class NotationSignature:
    """One signature envelope as served (``where``: the referrer it came from), with the policy
    and the target it is judged by."""

    where: str
    media_type: str
    envelope: bytes = field(repr=False)
    target: Target
    policy: NotationPolicy


class _Subject(NamedTuple):
    """The image manifest (its digest verified by the adapter) and its referrers."""

    manifest: Manifest
    referrers: Sequence[Descriptor]


class _ServedEnvelope(NamedTuple):
    """A signature envelope as served: the signature manifest's digest, its envelope's media
    type and bytes."""

    referrer: str
    media_type: str
    blob: bytes


class NotationValidator(SignatureValidator[NotationSignature]):
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
        super().__init__(settings, clock)
        self._store = NotationTrustStore.from_roots(settings.trust_roots)
        self._registry = registry
        self._revocation = revocation

    async def candidates(
        self, verification: Verification, deadline: Deadline
    ) -> AsyncGenerator[NotationSignature | Rejection, None]:
        """Resolve the image, list its Notation signatures and fetch their envelopes: those
        naming a trusted certificate first, concurrently (bounded), in order.

        Raises:
            VerificationError: ``config_invalid`` (the rule's levels), the Registry port's
                errors for the image (``image_not_found``, transient categories) and transient
                errors fetching a signature.
        """
        image = verification.image
        policy = NotationPolicy.build(image.context, verification.options, verification.roots)
        manifest, referrers = await self._subject_and_referrers(verification, deadline)
        where = verification.signatures_of(manifest.digest)
        target = Target(
            digest=manifest.digest, size=len(manifest.body), media_type=manifest.media_type
        )
        batches = self._batches(referrers, policy)
        if not batches:
            yield no_signature(manifest.digest)
            return
        for batch in batches:
            async for fetched in self._envelopes(where, batch, deadline):
                if isinstance(fetched, Rejection):
                    yield fetched
                    continue
                yield NotationSignature(
                    where=f"referrer {fetched.referrer}",
                    media_type=fetched.media_type,
                    envelope=fetched.blob,
                    target=target,
                    policy=policy,
                )

    def check(
        self, candidate: NotationSignature, verification: Verification, now: datetime
    ) -> Judgement:
        """Parse and verify one envelope (``domain.notation``); failures the verification
        level only logs are logged here.

        Raises:
            Rejection: ``malformed_trust_data``, ``signature_invalid``, ``expired``,
                ``digest_mismatch``.
        """
        result = verify_envelope(
            parse_envelope(candidate.media_type, candidate.envelope),
            target=candidate.target,
            policy=candidate.policy,
            store=self._store,
            now=now,
            revocation=self._revocation,
        )
        for failure in result.logged:
            # Level semantics: these checks are "logged", not enforced (README, Notation).
            log.warning(
                "notation validator %s, image %s: %s", self.name, verification.image.name, failure
            )
        identity = result.signing_subject.encode()
        vouches = tuple(Vouch(root, identity) for root in result.evidence.signers)
        return Judgement(digest=result.evidence.digest, vouches=vouches)

    def describe(self, candidate: NotationSignature) -> Mapping[str, str]:
        """The referrer a signature came from, its envelope format and the certificate it says
        signed it (docs/decisions/0043-explain-every-signature.md)."""
        return {
            "where": candidate.where,
            "format": _ENVELOPE_FORMATS.get(candidate.media_type, candidate.media_type),
            "kind": "signature",
            "signer": _signer_hint(candidate),
        }

    async def _subject_and_referrers(
        self, verification: Verification, deadline: Deadline
    ) -> _Subject:
        """The image manifest (its digest verified by the adapter) and its referrers, listed
        where the signatures live.

        By tag, the referrers wait for the digest; by digest, both go out at once.
        """
        image = verification.image
        if not image.digest:
            manifest = await self._registry.manifest(image, image.tag, self._endpoint, deadline)
            where = verification.signatures_of(manifest.digest)
            referrers = await self._registry.referrers(
                where, ARTIFACT_TYPE, self._endpoint, deadline
            )
            return _Subject(manifest, referrers)
        where = verification.signatures_of(image.digest)
        answers: tuple[
            Manifest | BaseException, Sequence[Descriptor] | BaseException
        ] = await asyncio.gather(
            self._registry.manifest(image, image.digest, self._endpoint, deadline),
            self._registry.referrers(where, ARTIFACT_TYPE, self._endpoint, deadline),
            return_exceptions=True,
        )
        got_manifest, got_referrers = answers
        # The image's own failure (e.g. image_not_found) is the one a user must see.
        if isinstance(got_manifest, BaseException):
            raise got_manifest
        if isinstance(got_referrers, BaseException):
            raise got_referrers
        return _Subject(got_manifest, got_referrers)

    def _batches(
        self, referrers: Sequence[Descriptor], policy: NotationPolicy
    ) -> list[list[Descriptor]]:
        """Notation signatures (at most 10) in batches: those naming a trusted certificate
        first, then the others (an annotation is unsigned, so they still get their chance)."""
        signatures = [d for d in referrers if d.artifact_type in (None, ARTIFACT_TYPE)]
        trusted = chain_thumbprints(self._store, policy)
        signatures.sort(key=lambda d: not (thumbprints(d.annotations) & trusted))
        signatures = signatures[:MAX_SIGNATURE_ATTEMPTS]
        named = [d for d in signatures if thumbprints(d.annotations) & trusted]
        others = signatures[len(named) :]
        return [batch for batch in (named, others) if batch]

    async def _envelopes(
        self, image: ImageReference, batch: Sequence[Descriptor], deadline: Deadline
    ) -> AsyncGenerator[_ServedEnvelope | Rejection, None]:
        """The batch's envelopes, fetched concurrently (bounded) and yielded in order; one
        that cannot be fetched is a rejection. Fetches not yet done when the consumer stops
        are cancelled.

        Raises:
            ConnaisseurError: a failure the other signatures would share (transient).
        """
        limit = asyncio.Semaphore(_CONCURRENT_SIGNATURES)

        async def fetch(descriptor: Descriptor) -> _ServedEnvelope:
            async with limit:
                return await self._envelope(image, descriptor, deadline)

        fetches = [asyncio.ensure_future(fetch(d)) for d in batch]
        try:
            for fetched in fetches:
                try:
                    yield await fetched
                except ConnaisseurError as e:
                    if e.category not in _PER_SIGNATURE:
                        raise  # transient or environmental: the other signatures would fail alike
                    yield _as_rejection(e)
        finally:
            for fetched in fetches:
                fetched.cancel()  # a verdict is reached: fetches not yet sent are not needed
            await asyncio.gather(*fetches, return_exceptions=True)

    async def _envelope(
        self, image: ImageReference, descriptor: Descriptor, deadline: Deadline
    ) -> _ServedEnvelope:
        """The signature manifest's single envelope layer."""
        digest = descriptor.digest
        if digest is None or not is_digest(digest):
            raise malformed_signature("a Notation referrer has no valid digest")
        manifest = await self._registry.manifest(image, digest, self._endpoint, deadline)
        layer = envelope_layer(manifest.body, digest)
        ref = BlobRef(digest=layer.digest, size=layer.size)
        blob = await self._registry.blob(image, ref, self._endpoint, deadline)
        return _ServedEnvelope(digest, layer.media_type, blob)


def _signer_hint(candidate: NotationSignature) -> str:
    """Who an envelope says signed it, before it is verified: its leaf certificate."""
    try:
        leaf = parse_envelope(candidate.media_type, candidate.envelope).chain[0]
    except (ConnaisseurError, IndexError):
        return "unknown (unreadable envelope)"
    subject, issuer = leaf.subject.rfc4514_string(), leaf.issuer.rfc4514_string()
    return f"certificate for {subject or '?'} (issuer {issuer or '?'})"


def _as_rejection(error: ConnaisseurError) -> Rejection:
    """A signature the registry would not serve (404, a digest that does not match) is
    rejected at the first step."""
    if isinstance(error, Rejection):
        return error
    return Rejection(error.message, category=error.category, stage=Step.FETCH)
