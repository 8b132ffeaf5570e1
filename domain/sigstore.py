"""Sigstore trust material and the primitives every Sigstore check shares.

Pure: keys, certificates and windows come in at load time; no I/O, no clock. The Rekor
(``domain/rekor.py``) and Fulcio/CT (``domain/fulcio.py``) checks and the cosign procedure
(``domain/cosign.py``) build on this module. The public-good material itself comes from the
sigstore package (``adapters/sigstore_trust.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from connaisseur.domain.trust import (
    Certificates,
    PemPublicKey,
    PublicKey,
)


class Stage(IntEnum):
    """How far a signature got before it failed; the furthest failure is reported."""

    SIGNATURE = 1
    PAYLOAD = 2
    TLOG = 3
    CHAIN = 4
    IDENTITY = 5
    SCT = 6
    CLAIMS = 7
    #: an attestation's predicate against the rule's conditions
    PREDICATE = 8


def log_id(key: PublicKey) -> str:
    """A transparency log's id: hex SHA-256 of its key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """A trusted root's ``validFor`` window (both ends inclusive; no end: still in service).

    A Rekor or CT log key vouches only for entries and SCTs stamped inside its window, a Fulcio
    CA only for certificates issued inside its window
    (docs/decisions/0028-trust-material-has-a-lifetime.md).
    """

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment <= self.end
        )

    def describe(self) -> str:
        start = f"{self.start:%Y-%m-%dT%H:%M:%SZ}" if self.start else "the beginning"
        end = f"{self.end:%Y-%m-%dT%H:%M:%SZ}" if self.end else "now"
        return f"from {start} to {end}"


ALWAYS = Validity()


@dataclass(frozen=True, slots=True, kw_only=True)
class FulcioAuthority:
    """One Fulcio certificate authority: its roots, intermediates and ``validFor`` window."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    validity: Validity = ALWAYS


@dataclass(frozen=True, slots=True, kw_only=True)
class TimestampAuthority:
    """One RFC 3161 timestamp authority: its certificates and ``validFor`` window."""

    certificates: tuple[x509.Certificate, ...]
    validity: Validity = ALWAYS


@dataclass(frozen=True, slots=True, kw_only=True)
class TransparencyMaterial:
    """Keys and certificates for Rekor bundles, SCTs, Fulcio chains (log id → key) and
    timestamp authorities, each with the window it vouches for (none for keys configured by
    hand)."""

    rekor_keys: tuple[tuple[str, PublicKey], ...] = ()
    ct_keys: tuple[tuple[str, PublicKey], ...] = ()
    fulcio: tuple[FulcioAuthority, ...] = ()
    rekor_validity: Mapping[str, Validity] = field(default_factory=dict)
    ct_validity: Mapping[str, Validity] = field(default_factory=dict)
    timestamp_authorities: tuple[TimestampAuthority, ...] = ()

    def rekor_key(self, entry_log_id: str) -> PublicKey | None:
        return dict(self.rekor_keys).get(entry_log_id)

    def ct_key(self, sct_log_id: str) -> PublicKey | None:
        return dict(self.ct_keys).get(sct_log_id)


def keyring(key: PemPublicKey) -> tuple[tuple[str, PublicKey], ...]:
    """One public key as a one-entry keyring keyed by log id."""
    return ((log_id(key.key), key.key),)


def override_material(
    default: TransparencyMaterial | None,
    *,
    rekor_pubkey: PemPublicKey | None,
    fulcio_cert: Certificates | None,
    ct_log_pubkey: PemPublicKey | None,
) -> TransparencyMaterial:
    """The public-good material with the validator's ``host`` overrides applied.

    A configured ``fulcioCert`` is used as roots only, without the default intermediates.
    """
    base = default or TransparencyMaterial()
    fulcio = base.fulcio
    if fulcio_cert:
        fulcio = (FulcioAuthority(roots=fulcio_cert.certificates),)
    # A key configured by hand has no window; the public-good windows stay with their keys.
    return TransparencyMaterial(
        rekor_keys=keyring(rekor_pubkey) if rekor_pubkey else base.rekor_keys,
        ct_keys=keyring(ct_log_pubkey) if ct_log_pubkey else base.ct_keys,
        fulcio=fulcio,
        rekor_validity={} if rekor_pubkey else base.rekor_validity,
        ct_validity={} if ct_log_pubkey else base.ct_validity,
        timestamp_authorities=base.timestamp_authorities,
    )


def verify_raw_signature(key: PublicKey, signature: bytes, data: bytes) -> None:
    """Check ``signature`` over ``data``: ECDSA (SHA-256 or the curve's hash), RSA PKCS#1 v1.5
    or PSS with SHA-256, Ed25519.

    Raises:
        InvalidSignature: the signature does not verify with ``key``.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, data)
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        for algorithm in _ecdsa_hashes(key):
            try:
                key.verify(signature, data, ec.ECDSA(algorithm))
                return
            except InvalidSignature:
                continue
        raise InvalidSignature
    if isinstance(key, rsa.RSAPublicKey):
        try:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            key.verify(signature, data, pss, hashes.SHA256())
        return
    raise InvalidSignature


def _ecdsa_hashes(key: ec.EllipticCurvePublicKey) -> list[hashes.HashAlgorithm]:
    # cosign signs with SHA-256 by default; keys on larger curves may use the curve's own hash.
    natural: dict[str, hashes.HashAlgorithm] = {
        "secp384r1": hashes.SHA384(),
        "secp521r1": hashes.SHA512(),
    }
    extra = natural.get(key.curve.name)
    return [hashes.SHA256(), extra] if extra else [hashes.SHA256()]
