"""The cosign validator (type ``cosign``) on the validator pipeline (``application/pipeline.py``):
its fetch goes through the ports, its check is ``domain.cosign``.

Round trips for a cold verification (after auth): 1 resolve (HEAD), 1 signature manifest
(``sha256-<hex>.sig``), then all signature blobs concurrently (each read up to the 64 KiB a
payload may have; layers declared larger are not fetched); Rekor is asked only for signatures
without an offline bundle that pass every check a log is not needed for.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import SignatureValidator, Verification
from connaisseur.application.ports import (
    BlobRef,
    Clock,
    KubernetesApi,
    Registry,
    TransparencyLog,
)
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.cosign import CheckOptions, judge_signature, worth_a_log_lookup
from connaisseur.domain.cosign_layout import (
    MAX_PAYLOAD_BYTES,
    SignatureLayer,
    signature_layers,
    signature_tag,
    to_signature_layer,
)
from connaisseur.domain.errors import (
    Category,
    ConnaisseurError,
    Rejection,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.rekor import RekorEntry
from connaisseur.domain.signers import Judgement
from connaisseur.domain.sigstore import Stage, TransparencyMaterial, override_material
from connaisseur.domain.trust import (
    KubernetesKeyRef,
    PublicKey,
    TrustRoot,
    load_public_key,
)

#: How long a ``k8s://`` key is used before its Secret is read again
#: (docs/decisions/0028-trust-material-has-a-lifetime.md).
K8S_KEY_TTL_SECONDS = 60.0


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


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignCandidate:
    """One signature layer with what its check needs: the claims it must make, the keys of
    the selected roots (``k8s://`` ones read), and the Rekor entries found for its payload."""

    layer: SignatureLayer
    claims: CheckOptions
    keys: Mapping[str, PublicKey] = field(repr=False)
    log_entries: Sequence[RekorEntry] = ()


class CosignValidator(SignatureValidator[CosignCandidate]):
    """Verifies cosign signatures (keys, keyless, Rekor) with D2 claims and D3 thresholds."""

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

    async def candidates(
        self, verification: Verification, deadline: Deadline
    ) -> AsyncGenerator[CosignCandidate | Rejection, None]:
        """Resolve the image, fetch its signature layers, the keys of the selected roots and
        the Rekor entries of the layers worth a lookup.

        Raises:
            ConnaisseurError: ``image_not_found``, ``trust_root_not_found`` (a ``k8s://`` key),
                ``malformed_trust_data`` and the Registry, Kubernetes and Rekor ports' errors.
        """
        image, options, roots = verification.image, verification.options, verification.roots
        digest = await self._registry.resolve(image, self._endpoint, deadline)
        layers = await self._signatures(image, digest, deadline)
        if isinstance(layers, Rejection):
            yield layers
            return
        switches = transparency_switches(options)
        claims = CheckOptions(
            image=image,
            digest=digest,
            verify_tlog=switches.log,
            verify_sct=switches.sct,
            ignore_reference=options.ignore_reference,
        )
        keys = await self._keys(roots, deadline)
        entries: Mapping[bytes, Sequence[RekorEntry]] = {}
        if claims.verify_tlog:
            now = self._clock.now()
            worth = self._worth_a_lookup(layers, roots, keys, claims, now)
            entries = await self._log_entries(worth, deadline)
        for layer in layers:
            yield CosignCandidate(
                layer=layer, claims=claims, keys=keys, log_entries=entries.get(layer.payload, ())
            )

    def check(
        self, candidate: CosignCandidate, verification: Verification, now: datetime
    ) -> Judgement:
        """One signature layer against every selected root (``domain.cosign``)."""
        return judge_signature(
            candidate.layer,
            verification.roots,
            candidate.keys,
            self._material,
            candidate.claims,
            log_entries=candidate.log_entries,
            now=now,
        )

    async def _signatures(
        self, image: ImageReference, digest: str, deadline: Deadline
    ) -> list[SignatureLayer] | Rejection:
        """The signature layers with their payloads (blobs fetched concurrently)."""
        try:
            sig = await self._registry.manifest(
                image, signature_tag(digest), self._endpoint, deadline
            )
            descriptors = signature_layers(sig.body)
        except VerificationError as e:
            if e.category is Category.NO_TRUST_DATA:
                return Rejection(
                    "no signatures found", category=Category.NO_TRUST_DATA, stage=Stage.PAYLOAD
                )
            raise
        fitting = [d for d in descriptors if not d.oversized]
        if not fitting:
            return Rejection(
                f"every signature payload is larger than {MAX_PAYLOAD_BYTES} bytes",
                category=Category.MALFORMED_TRUST_DATA,
                stage=Stage.PAYLOAD,
            )
        refs = [BlobRef(digest=d.digest, size=d.size, max_bytes=MAX_PAYLOAD_BYTES) for d in fitting]
        unique = list(dict.fromkeys(refs))
        blobs = await asyncio.gather(
            *(self._registry.blob(image, ref, self._endpoint, deadline) for ref in unique)
        )
        payloads = dict(zip(unique, blobs, strict=True))
        return [to_signature_layer(d, payloads[ref]) for d, ref in zip(fitting, refs, strict=True)]

    def _worth_a_lookup(
        self,
        layers: Sequence[SignatureLayer],
        roots: Sequence[TrustRoot],
        keys: Mapping[str, PublicKey],
        check: CheckOptions,
        now: datetime,
    ) -> list[SignatureLayer]:
        """Layers without a bundle that pass the offline checks for some trust root."""
        return [
            layer
            for layer in layers
            if not layer.bundle
            and any(
                worth_a_log_lookup(layer, r, keys.get(r.name), self._material, check, now=now)
                for r in roots
            )
        ]

    async def _log_entries(
        self, layers: Sequence[SignatureLayer], deadline: Deadline
    ) -> dict[bytes, Sequence[RekorEntry]]:
        """Rekor entries for payloads whose layers carry no bundle (looked up concurrently)."""
        payloads = list(dict.fromkeys(layer.payload for layer in layers if not layer.bundle))
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
