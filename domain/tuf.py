"""TUF building blocks as Notary v1 uses them: canonical JSON, keys, signatures, hashes, expiry.

Pure and synchronous: bytes and parsed JSON in, values or :class:`VerificationError` out. The
byte-level facts are Notary v1's as served (canonical JSON, raw ``r‖s`` ECDSA, key ids over
``{"keytype","keyval":{"private":null,"public"}}``, hashes over the exact served bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.trust import UNUSABLE, PublicKey

_MIN_RSA_BITS = 2048
_PSS_SALT_BYTES = 32
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
# Notary writes RFC 3339 with up to 9 fractional digits; Python parses at most 6.
_EXPIRES = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def canonical_json(value: Any) -> bytes:
    """The bytes TUF/Notary sign: sorted keys, no whitespace, non-ASCII kept.

    A lone surrogate (a ``\\udXXX`` escape in served JSON) is kept as is: no Notary client can
    have signed such bytes (Go decodes those escapes to U+FFFD), so its signature fails.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def key_id(keytype: str, public_b64: str) -> str:
    """TUF key id: hex SHA-256 of the canonical key object."""
    obj = {"keytype": keytype, "keyval": {"private": None, "public": public_b64}}
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def malformed_metadata(role: str, why: str) -> VerificationError:
    """The error for trust data that does not have the shape its role requires."""
    return VerificationError(
        f"trust data {role} is malformed: {why}", category=Category.MALFORMED_TRUST_DATA
    )


# --- keys -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TufKey:
    """A public key as written in root.json or a delegation: type plus base64 ``public``."""

    keytype: str
    public: str = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id(self.keytype, self.public)

    @classmethod
    def parse(cls, role: str, value: Any) -> TufKey:
        """Read ``{"keytype": …, "keyval": {"public": …}}``.

        Raises:
            VerificationError: malformed_trust_data.
        """
        if not isinstance(value, Mapping):
            raise malformed_metadata(role, "a key is not an object")
        keytype, keyval = value.get("keytype"), value.get("keyval")
        public = keyval.get("public") if isinstance(keyval, Mapping) else None
        if not isinstance(keytype, str) or not isinstance(public, str):
            raise malformed_metadata(role, "a key lacks keytype or public value")
        return cls(keytype=keytype.lower(), public=public)

    def load(self) -> PublicKey | None:
        """The usable public key, or ``None`` when the material cannot be parsed."""
        try:
            raw = base64.b64decode(self.public, validate=True)
            if self.keytype in ("ecdsa", "rsa"):
                key = serialization.load_der_public_key(raw)
            elif self.keytype in ("ecdsa-x509", "rsa-x509"):
                key = x509.load_pem_x509_certificate(raw).public_key()
            elif self.keytype == "ed25519":
                key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            else:
                return None
        except (*UNUSABLE, binascii.Error):
            return None
        if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
            return key
        return None


# --- signatures -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """One entry of ``signatures``: who claims to have signed, how, and the signature bytes."""

    keyid: str
    method: str
    sig: bytes = field(repr=False)


def signature_matches(key: PublicKey, method: str, sig: bytes, message: bytes) -> bool:
    """True when ``sig`` is a valid ``method`` signature of ``message`` under ``key``.

    The method must fit the key type: ``ecdsa`` (raw ``r‖s`` or DER, SHA-256), ``rsapss`` /
    ``pycrypto-pkcs#1 pss`` (PSS, SHA-256, salt 32), ``rsapkcs1v15`` (SHA-256), ``eddsa``.
    """
    method = method.lower()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and method == "ecdsa":
            key.verify(_ecdsa_der(key, sig), message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey) and method in ("rsapss", "pycrypto-pkcs#1 pss"):
            if key.key_size < _MIN_RSA_BITS:
                return False
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=_PSS_SALT_BYTES)
            key.verify(sig, message, pss, hashes.SHA256())
        elif isinstance(key, rsa.RSAPublicKey) and method == "rsapkcs1v15":
            if key.key_size < _MIN_RSA_BITS:
                return False
            key.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey) and method == "eddsa":
            key.verify(sig, message)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _ecdsa_der(key: ec.EllipticCurvePublicKey, sig: bytes) -> bytes:
    """Notary writes raw ``r‖s`` (each half the curve's byte length); anything else is DER."""
    half = (key.curve.key_size + 7) // 8
    if len(sig) != 2 * half:
        return sig
    r, s = int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
    return encode_dss_signature(r, s)


# --- envelopes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata:
    """A role file as served: the ``signed`` object, its signatures and the exact bytes."""

    role: str
    signed: Mapping[str, Any]
    signatures: tuple[Signature, ...]
    raw: bytes = field(repr=False)

    @classmethod
    def parse(cls, role: str, raw: bytes, expected_type: str) -> Metadata:
        """Decode a ``{signed, signatures}`` document of ``_type`` ``expected_type``.

        Raises:
            VerificationError: malformed_trust_data (not JSON, wrong shape or role type).
        """
        try:
            doc = jsondoc.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise malformed_metadata(role, "not JSON") from e
        if not isinstance(doc, dict) or not isinstance(doc.get("signed"), dict):
            raise malformed_metadata(role, "no signed object")
        signed = doc["signed"]
        if signed.get("_type") != expected_type:
            raise malformed_metadata(
                role, f"expected _type {expected_type}, got {signed.get('_type')!r}"
            )
        version = signed.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise malformed_metadata(role, "version must be an integer >= 1")
        return cls(role=role, signed=signed, signatures=_signatures(role, doc), raw=raw)

    @property
    def version(self) -> int:
        return int(self.signed["version"])

    @property
    def message(self) -> bytes:
        return canonical_json(self.signed)

    def expires(self) -> datetime:
        """The ``expires`` time (timezone-aware).

        Raises:
            VerificationError: malformed_trust_data when absent or not RFC 3339.
        """
        return parse_expires(self.role, self.signed.get("expires"))


def _signatures(role: str, doc: Mapping[str, Any]) -> tuple[Signature, ...]:
    entries = doc.get("signatures") or []
    if not isinstance(entries, list):
        raise malformed_metadata(role, "signatures is not a list")
    sigs = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise malformed_metadata(role, "a signature is not an object")
        keyid, method, sig = entry.get("keyid"), entry.get("method"), entry.get("sig")
        if not (isinstance(keyid, str) and isinstance(method, str) and isinstance(sig, str)):
            raise malformed_metadata(role, "a signature lacks keyid, method or sig")
        try:
            sig_bytes = base64.b64decode(sig, validate=True)
        except ValueError as e:  # binascii.Error, or text that is not ASCII
            raise malformed_metadata(role, "a signature is not base64") from e
        sigs.append(Signature(keyid=keyid, method=method, sig=sig_bytes))
    return tuple(sigs)


def parse_expires(role: str, value: Any) -> datetime:
    """Parse a Notary ``expires`` value (RFC 3339, up to 9 fractional digits).

    Raises:
        VerificationError: malformed_trust_data.
    """
    m = _EXPIRES.match(value) if isinstance(value, str) else None
    if m is None:
        raise malformed_metadata(role, "expires is not an RFC 3339 time")
    fraction = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{fraction}{zone}")
    except ValueError as e:
        raise malformed_metadata(role, "expires is not an RFC 3339 time") from e


def check_expiry(envelope: Metadata, now: datetime) -> None:
    """Raises:
    VerificationError: ``expired`` when ``now`` is past the role's ``expires``.
    """
    if envelope.expires() <= now:
        raise VerificationError(f"trust data {envelope.role} expired", category=Category.EXPIRED)


# --- roles and thresholds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RoleKeys:
    """Who may sign a role and how many of them must: key ids → keys, and the threshold."""

    name: str
    keys: Mapping[str, TufKey]
    threshold: int

    @classmethod
    def build(cls, name: str, role: Any, keys: Mapping[str, TufKey], owner: str) -> RoleKeys:
        """The role ``name`` declared in ``owner`` with ``keyids`` from ``keys``.

        Raises:
            VerificationError: malformed_trust_data (threshold < 1, key ids unknown or not
                matching the key they name).
        """
        if not isinstance(role, Mapping):
            raise malformed_metadata(owner, f"role {name} is not declared")
        threshold, keyids = role.get("threshold"), role.get("keyids")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise malformed_metadata(owner, f"role {name} needs a threshold >= 1")
        if not isinstance(keyids, list) or not all(isinstance(k, str) for k in keyids):
            raise malformed_metadata(owner, f"role {name} has no key id list")
        chosen: dict[str, TufKey] = {}
        for kid in keyids:
            key = keys.get(kid)
            if key is None or key.key_id != kid:
                raise malformed_metadata(
                    owner, f"role {name} names key {kid[:12]} that it does not hold"
                )
            chosen[kid] = key
        return cls(name=name, keys=chosen, threshold=threshold)

    def verify(self, envelope: Metadata) -> tuple[str, ...]:
        """The distinct key ids of this role with a valid signature, at least ``threshold``.

        Raises:
            VerificationError: signature_invalid when fewer keys than the threshold signed.
        """
        signers: list[str] = []
        message = envelope.message
        for sig in envelope.signatures:
            key = self.keys.get(sig.keyid)
            if key is None or sig.keyid in signers:
                continue
            public = key.load()
            if public is not None and signature_matches(public, sig.method, sig.sig, message):
                signers.append(sig.keyid)
        if len(signers) < self.threshold:
            raise VerificationError(
                f"{envelope.role} has {len(signers)} valid signature(s) from role {self.name}, "
                f"{self.threshold} required",
                category=Category.SIGNATURE_INVALID,
            )
        return tuple(signers)


def parse_keys(owner: str, value: Any) -> dict[str, TufKey]:
    """The ``keys`` map of root.json or of a ``delegations`` block.

    Raises:
        VerificationError: malformed_trust_data.
    """
    if not isinstance(value, Mapping):
        raise malformed_metadata(owner, "keys is not an object")
    return {str(kid): TufKey.parse(owner, key) for kid, key in value.items()}


# --- hashes -----------------------------------------------------------------------------------


def check_hashes(role: str, raw: bytes, meta: Any, listed_by: str) -> None:
    """The exact served bytes of ``role`` match every sha256/sha512 in ``meta`` (never ``length``).

    Raises:
        VerificationError: checksum_mismatch when no known hash is listed or one differs.
    """
    listed = meta.get("hashes") if isinstance(meta, Mapping) else None
    known = {alg: v for alg, v in (listed or {}).items() if alg in _HASHES}
    if not known:
        raise VerificationError(
            f"{listed_by} lists no checksum for {role}", category=Category.CHECKSUM_MISMATCH
        )
    for alg, expected in known.items():
        try:
            want = base64.b64decode(str(expected), validate=True)
        except ValueError as e:  # binascii.Error, or text that is not ASCII
            raise malformed_metadata(listed_by, f"hash of {role} is not base64") from e
        if not hmac.compare_digest(_HASHES[alg](raw).digest(), want):
            raise VerificationError(
                f"checksum of {role} does not match {listed_by}",
                category=Category.CHECKSUM_MISMATCH,
            )
