"""Notary Project (Notation) signature verification: one parsed envelope against the trust
policy and store, at ``now``.

Pure: the envelope, the admitted target, the trust material and ``now`` come in; evidence or a
:class:`Rejection` at the step that failed comes out. Implements signature-specification.md
and the verification procedure of trust-store-trust-policy.md; the envelope is parsed in
``domain/notation_envelope.py``, the policy and stores are ``domain/notation_policy.py``. The
signed target must equal the admitted digest and size at every level. Revocation is a hook
(:class:`RevocationCheck`); no OCSP/CRL client exists yet, so the default reports
``unchecked``, which passes — say so to operators (README).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import (
    Category,
    Rejection,
    VerificationError,
)
from connaisseur.domain.notation_envelope import (
    HEADER_AUTHENTIC_SIGNING_TIME,
    HEADER_EXPIRY,
    HEADER_SIGNING_SCHEME,
    PAYLOAD_MEDIA_TYPE,
    SCHEME_SIGNING_AUTHORITY,
    SCHEME_X509,
    NotationEnvelope,
    Step,
    Target,
    malformed_signature,
)
from connaisseur.domain.notation_policy import (
    ENFORCED,
    SIGNING_STORE,
    Check,
    NotationPolicy,
    NotationTrustStore,
    StoreType,
    VerificationLevel,
    VerifyTimestamp,
)
from connaisseur.domain.rfc3161 import TimestampError, verify_timestamp_token
from connaisseur.domain.trust import certificate_key
from connaisseur.domain.verdict import TrustedDigest

_KNOWN_CRITICAL = frozenset({HEADER_SIGNING_SCHEME, HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY})

_HASH_OF: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_RSA_ALGS = {2048: "PS256", 3072: "PS384", 4096: "PS512"}
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_FORBIDDEN_SIGNING_EKUS = {
    ExtendedKeyUsageOID.SERVER_AUTH,
    ExtendedKeyUsageOID.CLIENT_AUTH,
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ExtendedKeyUsageOID.TIME_STAMPING,
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}


_STEP_OF: Mapping[Check, Step] = {
    Check.INTEGRITY: Step.INTEGRITY,
    Check.AUTHENTICITY: Step.AUTHENTICITY,
    Check.AUTHENTIC_TIMESTAMP: Step.TIMESTAMP,
    Check.EXPIRY: Step.EXPIRY,
    Check.REVOCATION: Step.REVOCATION,
}


class RevocationStatus(StrEnum):
    OK = "ok"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    UNCHECKED = "unchecked"


#: The revocation hook: (chain, now) → status. No OCSP/CRL client exists yet (see module doc).
RevocationCheck = Callable[[Sequence[x509.Certificate], datetime], RevocationStatus]


def revocation_not_checked(chain: Sequence[x509.Certificate], now: datetime) -> RevocationStatus:
    """The default hook: revocation is not implemented, so every chain is ``unchecked``."""
    return RevocationStatus.UNCHECKED


@dataclass(frozen=True, slots=True, kw_only=True)
class NotationResult:
    """Evidence of one verified signature, plus the failures the level only logs."""

    evidence: TrustedDigest
    signing_subject: str
    logged: tuple[str, ...] = ()
    revocation: RevocationStatus = RevocationStatus.UNCHECKED


@dataclass(slots=True)
class _Run:
    """Applies the level: an enforced failure raises, a logged one is remembered."""

    level: VerificationLevel
    logged: list[str] = field(default_factory=list)

    def fail(self, check: Check, error: VerificationError) -> None:
        if check in ENFORCED[self.level]:
            raise Rejection(error.message, category=error.category, stage=_STEP_OF[check])
        self.logged.append(f"{check.value}: {error.message}")


def verify_envelope(
    envelope: NotationEnvelope,
    *,
    target: Target,
    policy: NotationPolicy,
    store: NotationTrustStore,
    now: datetime,
    revocation: RevocationCheck = revocation_not_checked,
) -> NotationResult:
    """Verify one Notation signature envelope for ``target`` under ``policy`` at ``now``.

    Steps (trust-store-trust-policy.md "Signature Verification", in notation-go's order):
    1. integrity — (the envelope was parsed by ``domain.notation_envelope``) supported
       content type and critical headers, ``alg`` matches the signing key, signature
       verifies, chain is well formed and valid at the signing time;
    2. authenticity — a chain certificate is a certificate of a selected store of the type
       the signing scheme demands (``ca`` or ``signingAuthority``);
    3. authentic timestamp — RFC 3161 countersignature per ``verifyTimestamp`` when a ``tsa``
       store is selected, else the chain must be valid at ``now`` (never the signer's own
       time claim, for either scheme);
    4. expiry — the signer's optional expiry header;
    5. revocation — the hook;
    6. the payload's target descriptor equals the admitted digest and size (always).

    Raises:
        Rejection: ``malformed_trust_data``, ``signature_invalid``, ``expired`` or
            ``digest_mismatch``, at the :class:`Step` that failed.
    """
    run = _Run(policy.level)
    # Step 1 — integrity (always enforced).
    _check_integrity(envelope)
    descriptor = _target_descriptor(envelope.payload)
    # Step 2 — authenticity, against the stores of the signature's own scheme only.
    signer = None
    try:
        signer = _trusted_root(envelope, policy, store)
    except VerificationError as e:
        run.fail(Check.AUTHENTICITY, e)
    # Step 3 — authentic timestamp.
    try:
        _check_authentic_timestamp(envelope, policy, store, now)
    except VerificationError as e:
        run.fail(
            Check.AUTHENTIC_TIMESTAMP,
            e.reworded(f"the Notation signature fails the timestamp check: {e.message}"),
        )
    # Step 4 — expiry of the signature itself.
    if envelope.expiry is not None and now >= envelope.expiry:
        run.fail(
            Check.EXPIRY,
            VerificationError(
                f"the Notation signature expired at {envelope.expiry:%Y-%m-%dT%H:%M:%SZ}",
                category=Category.EXPIRED,
            ),
        )
    # Step 5 — revocation (hook).
    status = revocation(envelope.chain, now)
    if status in (RevocationStatus.REVOKED, RevocationStatus.UNKNOWN):
        run.fail(
            Check.REVOCATION,
            _invalid(
                f"the certificate chain of the Notation signature is {status.value} for revocation"
            ),
        )
    # Step 6 — the signature is for the admitted artefact.
    _check_target(descriptor, target)
    return NotationResult(
        evidence=TrustedDigest(digest=target.digest, signers=(signer,) if signer else ()),
        signing_subject=envelope.chain[0].subject.rfc4514_string(),
        logged=tuple(run.logged),
        revocation=status,
    )


def _invalid(message: str, stage: Step = Step.INTEGRITY) -> Rejection:
    return Rejection(message, category=Category.SIGNATURE_INVALID, stage=stage)


def _check_integrity(envelope: NotationEnvelope) -> None:
    def broken(reason: str) -> VerificationError:
        return _invalid(f"the Notation signature does not verify ({reason})")

    if envelope.content_type != PAYLOAD_MEDIA_TYPE:
        raise broken(f"unsupported payload content type {envelope.content_type!r}")
    _check_signed_attributes(envelope, broken)
    leaf = envelope.chain[0]
    expected_alg = _algorithm_for(leaf)
    if expected_alg is None or envelope.alg != expected_alg:
        raise broken(f"algorithm {envelope.alg} does not match the signing certificate's key")
    if not _signature_valid(leaf, envelope):
        raise broken("signature does not match the signed content")
    problem = _chain_problem(
        envelope.chain, envelope.signing_time or envelope.authentic_signing_time
    )
    if problem is not None:
        raise broken(problem)


def _check_signed_attributes(
    envelope: NotationEnvelope, broken: Callable[[str], VerificationError]
) -> None:
    if HEADER_SIGNING_SCHEME not in envelope.critical:
        raise broken("the signing scheme is not marked critical")
    unknown = [c for c in envelope.critical if c not in _KNOWN_CRITICAL]
    if unknown:
        # e.g. a verification plugin: the spec requires failing when we cannot honour it.
        raise broken(f"unsupported critical headers {unknown}")
    if envelope.signing_scheme == SCHEME_X509:
        if envelope.signing_time is None:
            raise broken("notary.x509 signature without signing time")
    elif envelope.signing_scheme == SCHEME_SIGNING_AUTHORITY:
        if (
            envelope.authentic_signing_time is None
            or HEADER_AUTHENTIC_SIGNING_TIME not in envelope.critical
        ):
            raise broken("notary.x509.signingAuthority signature without authentic signing time")
    else:
        raise broken(f"unsupported signing scheme {envelope.signing_scheme!r}")
    if envelope.expiry is not None and HEADER_EXPIRY not in envelope.critical:
        raise broken("expiry header is not marked critical")


def _algorithm_for(cert: x509.Certificate) -> str | None:
    """signature-specification.md "Algorithm Selection": the key decides the algorithm."""
    key = certificate_key(cert)
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGS.get(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_ALGS.get(key.curve.name)
    return None


def _signature_valid(leaf: x509.Certificate, envelope: NotationEnvelope) -> bool:
    key = certificate_key(leaf)
    algorithm = _HASH_OF[envelope.alg[2:]]()
    signature = envelope.signature
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO)
            key.verify(signature, envelope.signing_input, pss, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:  # JWS and COSE carry raw r || s
                return False
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), envelope.signing_input, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _chain_problem(chain: Sequence[x509.Certificate], signed_at: datetime | None) -> str | None:
    """signature-specification.md "Certificate Requirements"; ``None`` when the chain is fine."""
    for index, cert in enumerate(chain):
        issuer = chain[index + 1] if index + 1 < len(chain) else cert
        if not _directly_issued(cert, issuer):
            return f"certificate {index} is not issued by the next (or the last is not self-signed)"
        if (
            cert.signature_hash_algorithm is not None
            and cert.signature_hash_algorithm.name == "sha1"
        ):
            return f"certificate {index} uses a SHA-1 signature"
        if (
            signed_at is not None
            and not cert.not_valid_before_utc <= signed_at <= cert.not_valid_after_utc
        ):
            return f"certificate {cert.subject.rfc4514_string()} was not valid at the signing time"
    problem = _leaf_problem(chain[0], is_only=len(chain) == 1)
    if problem is not None:
        return problem
    for cert in chain[1:]:
        if not _is_ca(cert):
            return f"certificate {cert.subject.rfc4514_string()} is not a CA certificate"
    return None


def _directly_issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _leaf_problem(leaf: x509.Certificate, *, is_only: bool) -> str | None:
    extensions = leaf.extensions
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "the signing certificate has no key usage extension"
    if not usage.digital_signature or (usage.key_cert_sign and not is_only):
        return "the signing certificate's key usage does not allow code signing"
    try:
        constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca and not is_only:
            return "the signing certificate is a CA certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        ekus = set(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        if ekus & _FORBIDDEN_SIGNING_EKUS:
            return "the signing certificate's extended key usage does not allow code signing"
    except x509.ExtensionNotFound:
        pass
    key = certificate_key(leaf)
    if key is None:
        return "the signing certificate's key cannot be used"
    if (isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048) or (
        isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < 256
    ):
        return "the signing key is too short"
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca and usage.key_cert_sign


def _target_descriptor(payload: bytes) -> Mapping[str, Any]:
    try:
        doc = jsondoc.loads(payload)
        descriptor = doc["targetArtifact"]
        if not isinstance(descriptor.get("digest"), str) or not isinstance(
            descriptor.get("size"), int
        ):
            raise TypeError("descriptor lacks digest or size")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise malformed_signature(
            "the Notation signature payload has no target descriptor", Step.PAYLOAD
        ) from e
    return descriptor  # type: ignore[no-any-return]


def _check_target(descriptor: Mapping[str, Any], target: Target) -> None:
    if descriptor["digest"] != target.digest or descriptor["size"] != target.size:
        raise Rejection(
            f"the Notation signature signs {descriptor['digest']} (size "
            f"{descriptor['size']}), not the admitted {target.digest} (size {target.size})",
            category=Category.DIGEST_MISMATCH,
            stage=Step.TARGET,
        )


def _trusted_root(
    envelope: NotationEnvelope, policy: NotationPolicy, store: NotationTrustStore
) -> str:
    """The selected root whose store vouches for the chain: a chain certificate equals one of
    its certificates (notation-core-go VerifyAuthenticity), in a store of the type the signing
    scheme demands (``ca`` for notary.x509, ``signingAuthority`` for notary.x509.signingAuthority).

    Raises:
        VerificationError: ``signature_invalid`` — no store of that type is selected, or none
            of them holds a chain certificate.
    """
    store_type = SIGNING_STORE[envelope.signing_scheme]
    names = policy.names(store_type)
    if not names:
        raise _invalid(
            f"the Notation signature uses the signing scheme {envelope.signing_scheme}, which "
            f"only a trust root configured with storeType: {store_type.value} can verify; "
            "none of the trust roots is one"
        )
    for name in names:
        trusted = store.certificates(store_type, name)
        if any(cert in trusted for cert in envelope.chain):
            return name
    raise _invalid(
        "the Notation signature is not signed by a certificate that chains to the trust roots"
    )


def _check_authentic_timestamp(
    envelope: NotationEnvelope, policy: NotationPolicy, store: NotationTrustStore, now: datetime
) -> None:
    # Both schemes: the signer's own time claims (signingTime, authenticSigningTime) never
    # extend a certificate's life; only a verified TSA countersignature does
    # (docs/decisions/0025-notation-signing-authority.md).
    chain = envelope.chain
    tsa_names = policy.names(StoreType.TSA)
    perform = bool(tsa_names)
    if perform and policy.verify_timestamp is VerifyTimestamp.AFTER_CERT_EXPIRY:
        perform = any(now > cert.not_valid_after_utc for cert in chain)
    if not perform:
        _require_within(chain, now, now)
        return
    if envelope.timestamp_token is None:
        raise _invalid("no timestamp countersignature was found in the signature envelope")
    trusted = [c for name in tsa_names for c in store.certificates(StoreType.TSA, name)]
    try:
        stamp = verify_timestamp_token(envelope.timestamp_token, envelope.signature, trusted)
    except TimestampError as e:
        raise _invalid(e.message) from e
    _require_within(chain, stamp.earliest, stamp.latest)


def _require_within(
    chain: Sequence[x509.Certificate], earliest: datetime, latest: datetime
) -> None:
    for cert in chain:
        if earliest < cert.not_valid_before_utc or latest > cert.not_valid_after_utc:
            raise VerificationError(
                f"certificate {cert.subject.rfc4514_string()} is valid only from "
                f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not at "
                f"{earliest:%Y-%m-%dT%H:%M:%SZ}",
                category=Category.EXPIRED,
            )


def no_signature(digest: str) -> Rejection:
    """The rejection of an image without any Notation signature (``no_trust_data``)."""
    return Rejection(
        f"no Notation signature is associated with {digest}", category=Category.NO_TRUST_DATA
    )
