"""The cosign validator (type ``cosign``) on the validator pipeline (``application/pipeline.py``):
its fetch goes through the ports, its check is ``domain.cosign``.

Signatures and attestations are found in every place cosign writes them
(``application/cosign_discovery.py``: the classic ``.sig``/``.att`` tags and the OCI 1.1
referrers, asked at once) and judged one at a time by the same procedure whatever their format
(docs/decisions/0040-cosign-signature-formats.md, 0041-sigstore-bundles.md). A signer counts
once across formats (D3): a key, or a keyless identity, is the same signer in a classic layer
and in a bundle. Attestations the rule requires (``with.attestations``, decision 0042) are
further evidence, fulfilled each by one attestation signed by a selected trust root.

Rekor is asked only for classic signatures without a log entry of their own that pass every
check a log is not needed for; Sigstore bundles carry their log evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from connaisseur.application.cosign_discovery import CosignDiscovery, Found, Wanted
from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import SignatureValidator, Verification
from connaisseur.application.ports import Clock, KubernetesApi, Registry, TransparencyLog
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.attestations import AttestationRequirement
from connaisseur.domain.cosign import CheckOptions, judge_signature, worth_a_log_lookup
from connaisseur.domain.cosign_signed import BundleSigned, ClassicSignature, Format
from connaisseur.domain.errors import (
    Category,
    ConnaisseurError,
    Rejection,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.fulcio import certificate_identity
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.rekor import RekorEntry
from connaisseur.domain.signers import Judgement
from connaisseur.domain.sigstore import Stage, TransparencyMaterial, override_material
from connaisseur.domain.trust import (
    KubernetesKeyRef,
    PublicKey,
    Selection,
    TrustRoot,
    load_public_key,
)

#: How long a ``k8s://`` key is used before its Secret is read again
#: (docs/decisions/0028-trust-material-has-a-lifetime.md).
K8S_KEY_TTL_SECONDS = 60.0
_FORMATS = {
    "classic": frozenset({Format.CLASSIC}),
    "bundle": frozenset({Format.BUNDLE}),
    "any": frozenset(Format),
}
_FORMAT_NAMES = {Format.CLASSIC: "classic", Format.BUNDLE: "Sigstore bundle"}
#: The requirement of evidence that counts for nothing (``verify --explain`` lists it).
NOT_COUNTED = "(not counted)"


class _ReadKey(NamedTuple):
    """A ``k8s://`` key as read, and until when (monotonic seconds) it is used."""

    key: PublicKey
    until: float


class TransparencySwitches(NamedTuple):
    """Whether a rule verifies signatures in the transparency log and certificates' SCTs."""

    log: bool
    sct: bool


def transparency_switches(options: RuleOptions) -> TransparencySwitches:
    """Both default to true, as in Connaisseur v3."""
    return TransparencySwitches(
        log=options.verify_in_transparency_log is not False, sct=options.verify_sct is not False
    )


def wanted(options: RuleOptions, *, every_attestation: bool = False) -> Wanted:
    """The formats a rule accepts and the attestations it needs (all of them to explain)."""
    return Wanted(
        formats=_FORMATS[options.signature_format],
        predicate_types=None
        if every_attestation
        else frozenset(a.predicate_type for a in options.attestations),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignCandidate:
    """One signature or attestation with what its check needs: the claims it must make, the
    keys of the selected roots (``k8s://`` ones read), the Rekor entries found for it, and
    for an attestation the rule's requirement of its predicate type."""

    found: Found
    claims: CheckOptions
    keys: Mapping[str, PublicKey] = field(repr=False)
    log_entries: Sequence[RekorEntry] = ()
    requirement: AttestationRequirement | None = None
    #: why it was listed but not judged (``verify --explain`` only): an excluded format
    not_judged: str | None = None


class CosignValidator(SignatureValidator[CosignCandidate]):
    """Verifies cosign signatures and attestations (keys, keyless, Rekor, Sigstore bundles)
    with D2 claims and D3 thresholds."""

    type = "cosign"
    counts_signers = True

    def __init__(
        self,
        settings: ValidatorSettings,
        registry: Registry,
        tlog: TransparencyLog,
        clock: Clock,
        *,
        kubernetes: KubernetesApi | None = None,
        public_good: TransparencyMaterial | None = None,
    ) -> None:
        """Use the settings as the configuration loader parsed and checked them."""
        super().__init__(settings, clock)
        self._registry = registry
        self._tlog = tlog
        self._kubernetes = kubernetes
        host = settings.transparency
        self._rekor = host.rekor
        self._material = override_material(
            public_good,
            rekor_pubkey=host.rekor_pubkey,
            fulcio_cert=host.fulcio_cert,
            ct_log_pubkey=host.ct_log_pubkey,
        )
        self._k8s_keys: dict[KubernetesKeyRef, _ReadKey] = {}

    def selection(self, options: RuleOptions) -> Selection:
        """D3's signers, and one attestation of each predicate type the rule requires."""
        requirements = tuple(dict.fromkeys(a.predicate_type for a in options.attestations))
        return replace(super().selection(options), requirements=requirements)

    def candidates(
        self, verification: Verification, deadline: Deadline
    ) -> AsyncGenerator[CosignCandidate | Rejection, None]:
        """Every signature and wanted attestation of the image, classic ones first.

        Raises:
            ConnaisseurError: ``image_not_found``, ``trust_root_not_found`` (a ``k8s://`` key),
                ``malformed_trust_data`` and the Registry, Kubernetes and Rekor ports' errors.
        """
        every = verification.exhaustive
        want = wanted(verification.options, every_attestation=every)
        return self._candidates(verification, want, deadline)

    async def _candidates(
        self, verification: Verification, want: Wanted, deadline: Deadline
    ) -> AsyncGenerator[CosignCandidate | Rejection, None]:
        image, options, roots = verification.image, verification.options, verification.roots
        # Signatures are read where they live; claims still name the image
        # (docs/decisions/0051-signature-repository.md).
        home = verification.signature_home
        discovery = CosignDiscovery(self._registry, self._endpoint, home, deadline)
        resolving = asyncio.ensure_future(self._registry.resolve(image, self._endpoint, deadline))
        keys = asyncio.ensure_future(self._keys(roots, deadline))
        started: list[asyncio.Future[Any]] = [resolving, keys]
        try:
            # By digest, the listings go out with the resolve; by tag, right after it.
            digest = image.digest or await resolving
            classic = asyncio.ensure_future(discovery.classic(digest, want))
            referred = asyncio.ensure_future(discovery.referrers(digest, want))
            started += [classic, referred]
            await resolving  # the image's own failure (image_not_found) comes first
            switches = transparency_switches(options)
            claims = CheckOptions(
                image=image,
                digest=digest,
                verify_tlog=switches.log,
                verify_sct=switches.sct,
                ignore_reference=options.ignore_reference,
            )
            judged = _Candidates(
                self, claims, await keys, roots, options, want, exhaustive=verification.exhaustive
            )
            # The classic signatures are judged while the referrers' blobs are still coming,
            # and a rule they already meet never waits for (or fetches) those.
            async for candidate in judged.each(await classic, deadline):
                yield candidate
            async for candidate in judged.each(await referred, deadline):
                yield candidate
            for missing in judged.nothing_found():
                yield missing
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)

    def check(
        self, candidate: CosignCandidate, verification: Verification, now: datetime
    ) -> Judgement:
        """One signature (or attestation) against every selected root (``domain.cosign``);
        an attestation signed by a root must also satisfy the rule's conditions."""
        found = candidate.found
        requirement = candidate.requirement
        tag = requirement.predicate_type if requirement else None
        if candidate.not_judged is not None:
            # Evidence for no requirement of the rule: listed by explain, counted by nobody.
            not_counted = Rejection(candidate.not_judged, category=Category.NO_TRUST_DATA)
            return Judgement(digest=None, refused=(not_counted,), requirement=NOT_COUNTED)
        if found.failure is not None or found.signed is None:
            failure = found.failure or _unreadable()
            return Judgement(digest=None, refused=(failure,), requirement=tag)
        judgement = judge_signature(
            found.signed,
            verification.roots,
            candidate.keys,
            self._material,
            candidate.claims,
            log_entries=candidate.log_entries,
            now=now,
        )
        if requirement is None or not judgement.vouches:
            return replace(judgement, requirement=tag)
        statement = found.signed.claims().statement
        try:
            if statement is None:
                raise _unreadable()
            requirement.check(statement)
        except Rejection as e:
            return Judgement(digest=judgement.digest, refused=(e,), requirement=tag)
        return replace(judgement, requirement=tag)

    def describe(self, candidate: CosignCandidate) -> Mapping[str, str]:
        """Where a signature or attestation was, its format, kind and who it says signed it."""
        found = candidate.found
        described = {"where": found.where, "format": found.format.value}
        described["kind"] = "attestation" if found.attestation else "signature"
        predicate = candidate.requirement.predicate_type if candidate.requirement else None
        if found.attestation and (predicate or found.predicate_type):
            described["predicateType"] = str(predicate or found.predicate_type)
        described["signer"] = signer_hint(found)
        return described

    async def log_entries(
        self,
        found: Sequence[Found],
        claims: CheckOptions,
        keys: Mapping[str, PublicKey],
        roots: Sequence[TrustRoot],
        deadline: Deadline,
    ) -> dict[bytes, Sequence[RekorEntry]]:
        """Rekor entries for classic signatures without an entry of their own that pass the
        offline checks for some trust root (looked up concurrently)."""
        if not claims.verify_tlog:
            return {}
        now = self._clock.now()
        payloads = list(
            dict.fromkeys(
                f.signed.layer.payload
                for f in found
                if isinstance(f.signed, ClassicSignature)
                and any(
                    worth_a_log_lookup(
                        f.signed, r, keys.get(r.name), self._material, claims, now=now
                    )
                    for r in roots
                )
            )
        )
        if not payloads:
            return {}
        answers = await asyncio.gather(
            *(
                self._tlog.find_entries(
                    self._rekor, "sha256:" + hashlib.sha256(p).hexdigest(), deadline
                )
                for p in payloads
            )
        )
        return dict(zip(payloads, answers, strict=True))

    async def _keys(self, roots: Sequence[TrustRoot], deadline: Deadline) -> dict[str, PublicKey]:
        keys = {root.name: root.key.key for root in roots if root.key is not None}
        for root in roots:
            if root.key_ref is not None:
                keys[root.name] = await self._kubernetes_key(root.key_ref, deadline)
        return keys

    async def _kubernetes_key(self, ref: KubernetesKeyRef, deadline: Deadline) -> PublicKey:
        """``cosign.pub`` of a Kubernetes secret, read through the API and kept for
        ``K8S_KEY_TTL_SECONDS``: a rotated or revoked key stops verifying within that time,
        and a Secret that can no longer be read denies (nothing stale is trusted)."""
        cached = self._k8s_keys.pop(ref, None)
        now = self._clock.monotonic()
        if cached is not None and cached.until > now:
            self._k8s_keys[ref] = cached
            return cached.key
        key = await self._read_kubernetes_key(ref, deadline)
        self._k8s_keys[ref] = _ReadKey(key, until=now + K8S_KEY_TTL_SECONDS)
        return key

    async def _read_kubernetes_key(self, ref: KubernetesKeyRef, deadline: Deadline) -> PublicKey:
        where = f"k8s://{ref.namespace}/{ref.name}"
        if self._kubernetes is None:
            raise TrustRootError(f"cannot read {where}: no Kubernetes API available")
        try:
            data = await self._kubernetes.secret_data(ref.namespace, ref.name, deadline)
        except ConnaisseurError as e:
            # An API outage is not a missing key: keep its (transient) category, so the denial
            # is never cached (docs/decisions/0005-honest-cache.md).
            raise VerificationError(f"cannot read {where}: {e.message}", category=e.category) from e
        encoded = (data or {}).get("cosign.pub")
        if encoded is None:
            raise TrustRootError(f"secret {where} does not exist or has no cosign.pub")
        try:
            pem = encoded.decode()
        except UnicodeDecodeError as e:
            raise TrustRootError(
                f"cosign.pub of {where} is not PEM", category=Category.INVALID_KEY
            ) from e
        return load_public_key(pem)


class _Candidates:
    """Turns what discovery found into candidates for one verification, and remembers what
    it saw to explain an image without any signature of an accepted format."""

    def __init__(
        self,
        validator: CosignValidator,
        claims: CheckOptions,
        keys: Mapping[str, PublicKey],
        roots: Sequence[TrustRoot],
        options: RuleOptions,
        want: Wanted,
        *,
        exhaustive: bool = False,
    ) -> None:
        self._validator, self._claims, self._keys = validator, claims, keys
        self._roots, self._want = roots, want
        self._requirements = {a.predicate_type: a for a in options.attestations}
        self._options = options
        self._exhaustive = exhaustive
        self.signatures = 0
        self.excluded: dict[Format, int] = {}

    async def each(
        self, found: Sequence[Found], deadline: Deadline
    ) -> AsyncGenerator[CosignCandidate, None]:
        entries = await self._validator.log_entries(
            found, self._claims, self._keys, self._roots, deadline
        )
        for item in found:
            if item.format not in self._want.formats:
                if not item.attestation:
                    self.excluded[item.format] = self.excluded.get(item.format, 0) + 1
                if self._exhaustive:
                    reason = f"with.signatureFormat: {self._options.signature_format} excludes it"
                    yield CosignCandidate(
                        found=item, claims=self._claims, keys=self._keys, not_judged=reason
                    )
                continue
            if item.attestation:
                if item.signed is not None or item.failure is not None:
                    yield self._attestation(item)
                continue
            self.signatures += 1
            payload = (
                item.signed.layer.payload if isinstance(item.signed, ClassicSignature) else b""
            )
            yield CosignCandidate(
                found=item,
                claims=self._claims,
                keys=self._keys,
                log_entries=entries.get(payload, ()),
            )

    def _attestation(self, item: Found) -> CosignCandidate:
        declared = item.predicate_type
        if item.signed is not None:
            statement_type = _statement_type(item)
            declared = statement_type or declared
        requirement = self._requirements.get(declared or "")
        return CosignCandidate(
            found=item,
            claims=self._claims,
            keys=self._keys,
            requirement=requirement
            or AttestationRequirement(predicate_type=declared or "(unknown predicate type)"),
        )

    def nothing_found(self) -> list[Rejection]:
        """``no signatures found`` when no signature of an accepted format was seen, saying
        which excluded formats do hold signatures (``with.signatureFormat``)."""
        if self.signatures:
            return []
        excluded = [
            f"{count} {_FORMAT_NAMES[kind]} signature{'s' if count > 1 else ''}"
            for kind, count in sorted(self.excluded.items())
        ]
        reason = "no signatures found"
        if excluded:
            accepted = " or ".join(_FORMAT_NAMES[f] for f in sorted(self._want.formats))
            reason = (
                f"no {accepted} signatures found; the image has {' and '.join(excluded)}, "
                "which with.signatureFormat excludes"
            )
        return [Rejection(reason, category=Category.NO_TRUST_DATA, stage=Stage.PAYLOAD)]


def _statement_type(item: Found) -> str | None:
    try:
        claims = item.signed.claims() if item.signed is not None else None
    except Rejection:
        return None
    return claims.predicate_type if claims else None


def _unreadable() -> Rejection:
    return Rejection(
        "the signature could not be read",
        category=Category.MALFORMED_TRUST_DATA,
        stage=Stage.PAYLOAD,
    )


def signer_hint(found: Found) -> str:
    """Who a signature says signed it, before it is verified: the certificate's identity, or
    the key hint a bundle carries, else just a key (classic signatures name no key)."""
    signed = found.signed
    if signed is None:
        return "unknown (not read)"
    try:
        cert = signed.certificate()
    except Rejection:
        cert = None
    if cert is not None:
        who = certificate_identity(cert)
        return f"certificate for {who.subject or '?'} (issuer {who.issuer or '?'})"
    if isinstance(signed, BundleSigned) and signed.bundle.key_hint:
        return f"key (hint {signed.bundle.key_hint[:64]})"
    return "key"
