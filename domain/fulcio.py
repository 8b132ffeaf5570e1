"""Fulcio certificates: the chain to a Fulcio CA at signing time, the OIDC identity, and the
embedded SCTs checked against the CT log keys.

What is ours and what follows sigstore: the RFC 6962 SCT "digitally-signed" structure and the
Fulcio chain policy (code-signing EKU, chain checked at the Rekor integrated time) follow
sigstore-python's ``_internal/sct.py`` and ``verify/verifier.py`` (private APIs built around
its own bundle format).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import verification as x509v
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from connaisseur.domain.errors import (
    Category,
    Rejection,
)
from connaisseur.domain.sigstore import (
    ALWAYS,
    FulcioAuthority,
    Stage,
    TransparencyMaterial,
    verify_raw_signature,
)
from connaisseur.domain.trust import (
    KeylessIdentity,
)

_OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def verify_chain(
    cert: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    material: TransparencyMaterial,
    at: datetime,
) -> list[x509.Certificate]:
    """Verify a Fulcio certificate at time ``at`` (code-signing EKU) to a Fulcio certificate
    authority that was in service when the certificate was issued (its ``validFor`` window
    holds the certificate's ``notBefore``, as sigstore-go checks).

    Returns:
        The chain above ``cert`` (issuer first).

    Raises:
        Rejection: at stage ``CHAIN``.
    """
    authorities = [a for a in material.fulcio if a.validity.contains(cert.not_valid_before_utc)]
    if not authorities:
        reason = (
            "no Fulcio roots are configured"
            if not material.fulcio
            else "no Fulcio certificate authority of the trusted root was in service when the "
            f"certificate was issued ({cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ})"
        )
        raise Rejection(reason, category=Category.SIGNATURE_INVALID, stage=Stage.CHAIN)
    for authority in authorities:
        chain = _chain_to(authority, cert, untrusted, at)
        if chain is not None:
            return chain
    raise Rejection(
        "the certificate does not chain to the Fulcio roots at signing time",
        category=Category.SIGNATURE_INVALID,
        stage=Stage.CHAIN,
    )


def _chain_to(
    authority: FulcioAuthority,
    cert: x509.Certificate,
    untrusted: Sequence[x509.Certificate],
    at: datetime,
) -> list[x509.Certificate] | None:
    """The chain above ``cert`` to ``authority`` at ``at`` (code-signing EKU), else None."""
    # Fulcio leaves carry the code-signing EKU, not client-auth: relax only the EKU rule,
    # exactly as sigstore-python's verifier does.
    eku = x509.ExtendedKeyUsage
    ca_policy = x509v.ExtensionPolicy.webpki_defaults_ca().may_be_present(
        eku, x509v.Criticality.NON_CRITICAL, None
    )
    ee_policy = x509v.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        eku, x509v.Criticality.NON_CRITICAL, None
    )
    verifier = (
        x509v.PolicyBuilder()
        .store(x509v.Store(list(authority.roots)))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        chain = verifier.verify(cert, [*authority.intermediates, *untrusted]).chain[1:]
        usage = cert.extensions.get_extension_for_class(eku).value
    except (x509v.VerificationError, x509.ExtensionNotFound, ValueError):
        return None
    if ExtendedKeyUsageOID.CODE_SIGNING not in usage:
        raise Rejection(
            "the certificate is not for code signing",
            category=Category.SIGNATURE_INVALID,
            stage=Stage.CHAIN,
        )
    return list(chain)


class Identity(NamedTuple):
    """Who a Fulcio certificate was issued to: the OIDC issuer and subject ("" when absent)."""

    issuer: str
    subject: str


def certificate_identity(cert: x509.Certificate) -> Identity:
    """The OIDC issuer and subject of a Fulcio certificate."""
    issuer = ""
    for ext in cert.extensions:
        if ext.oid == _OIDC_ISSUER_V2 and isinstance(ext.value, x509.UnrecognizedExtension):
            issuer = _der_utf8(ext.value.value)
            break
        if ext.oid == _OIDC_ISSUER_V1 and isinstance(ext.value, x509.UnrecognizedExtension):
            issuer = ext.value.value.decode("utf-8", "replace")
    subject = ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [
            *san.get_values_for_type(x509.RFC822Name),
            *san.get_values_for_type(x509.UniformResourceIdentifier),
        ]
        subject = names[0] if names else ""
    except x509.ExtensionNotFound:
        pass
    return Identity(issuer, subject)


def _der_utf8(der: bytes) -> str:
    # A DER UTF8String (tag 0x0c) with a short or long-form length.
    if len(der) < 2 or der[0] != 0x0C:
        return ""
    length, offset = der[1], 2
    if length & 0x80:
        n = length & 0x7F
        length, offset = int.from_bytes(der[2 : 2 + n], "big"), 2 + n
    return der[offset : offset + length].decode("utf-8", "replace")


def identity_matches(identity: KeylessIdentity, issuer: str, subject: str) -> bool:
    """Exact match, or regex *searched* anywhere in the value (not anchored,
    as Connaisseur v3 matches identities)."""
    issuer_ok = (
        issuer == identity.issuer
        if identity.issuer
        else bool(identity.issuer_regex and re.search(identity.issuer_regex, issuer))
    )
    subject_ok = (
        subject == identity.subject
        if identity.subject
        else bool(identity.subject_regex and re.search(identity.subject_regex, subject))
    )
    return issuer_ok and subject_ok


def verify_sct(
    cert: x509.Certificate, issuer: x509.Certificate, material: TransparencyMaterial
) -> None:
    """Verify an embedded SCT of ``cert`` against the CT log keys (RFC 6962 §3.2).

    Raises:
        Rejection: at stage ``SCT``.
    """
    try:
        scts = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
        tbs = cert.tbs_precertificate_bytes
    except (x509.ExtensionNotFound, ValueError) as e:
        raise Rejection(
            "the certificate has no embedded SCT",
            category=Category.SIGNATURE_INVALID,
            stage=Stage.SCT,
        ) from e
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    for sct in scts:
        log = sct.log_id.hex()
        key = material.ct_key(log)
        if key is None or not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
            continue
        if not material.ct_validity.get(log, ALWAYS).contains(sct.timestamp.replace(tzinfo=UTC)):
            continue  # the log key vouches only for SCTs issued inside its window
        signed = _sct_signed_data(sct, issuer_key_hash, tbs)
        try:
            verify_raw_signature(key, sct.signature, signed)
            return
        except InvalidSignature:
            continue
    raise Rejection(
        "no SCT verifies with a trusted CT log key",
        category=Category.SIGNATURE_INVALID,
        stage=Stage.SCT,
    )


def _sct_signed_data(
    sct: x509.certificate_transparency.SignedCertificateTimestamp,
    issuer_key_hash: bytes,
    tbs: bytes,
) -> bytes:
    millis = int(sct.timestamp.replace(tzinfo=UTC).timestamp() * 1000)
    entry = issuer_key_hash + len(tbs).to_bytes(3, "big") + tbs
    return (
        struct.pack("!BBQH", sct.version.value, 0, millis, 1)
        + entry
        + struct.pack("!H", len(sct.extension_bytes))
        + sct.extension_bytes
    )
