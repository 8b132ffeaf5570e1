"""Pure cosign verification: simple-signing payloads, keys, Rekor entries, Fulcio certificates.

Everything here is synchronous and I/O-free; time is an argument. The application fetches the
signature manifest and blobs and hands them in as :class:`SignatureLayer` values.

What is ours and what follows sigstore: the signed-entry-timestamp (SET) payload, the RFC 6962
SCT "digitally-signed" structure and the Fulcio chain policy (code-signing EKU, chain checked at
the Rekor integrated time) are re-implemented here after sigstore-python's ``models.py``,
``_internal/sct.py`` and ``verify/verifier.py``: those are private APIs built around sigstore's
own bundle format, and the domain layer imports only ``cryptography``. The legacy cosign layout
(annotations on simple-signing layers) needs this translation anyway. The public-good trust
material itself comes from the sigstore package (``adapters/sigstore_trust.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import verification as x509v
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import (
    Category,
    InvalidReferenceError,
    Rejection,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.image import ImageReference
from connaisseur.domain.signers import Judgement, Vouch
from connaisseur.domain.trust import (
    Certificates,
    KeylessIdentity,
    PemPublicKey,
    PublicKey,
    TrustRoot,
    load_certificates,
)

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
MAX_SIGNATURE_LAYERS = 64
MAX_PAYLOAD_BYTES = 64 * 1024

_OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def signature_tag(digest: str) -> str:
    """The cosign tag holding the signatures of ``digest``: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def log_id(key: PublicKey) -> str:
    """A transparency log's id: hex SHA-256 of its key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


# --------------------------------------------------------------------------------------------
# Trust material (load time)
# --------------------------------------------------------------------------------------------


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
class TransparencyMaterial:
    """Keys and certificates for Rekor bundles, SCTs and Fulcio chains (log id → key), each
    with the window it vouches for (none for keys configured by hand)."""

    rekor_keys: tuple[tuple[str, PublicKey], ...] = ()
    ct_keys: tuple[tuple[str, PublicKey], ...] = ()
    fulcio: tuple[FulcioAuthority, ...] = ()
    rekor_validity: Mapping[str, Validity] = field(default_factory=dict)
    ct_validity: Mapping[str, Validity] = field(default_factory=dict)

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
    )


# --------------------------------------------------------------------------------------------
# Signature layers, payloads and Rekor entries (run time)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureLayer:
    """One cosign signature: the simple-signing payload and the layer's annotations."""

    payload: bytes = field(repr=False)
    signature: str = field(repr=False)
    certificate: str | None = field(default=None, repr=False)
    chain: str | None = field(default=None, repr=False)
    bundle: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerDescriptor:
    """A signature layer as listed in the ``.sig`` manifest, before its blob is fetched."""

    digest: str
    annotations: Mapping[str, str]
    #: the size the manifest declares (``None`` when absent or not a number)
    size: int | None = None

    @property
    def oversized(self) -> bool:
        """Declared larger than any simple-signing payload may be: not worth fetching."""
        return self.size is not None and self.size > MAX_PAYLOAD_BYTES


def signature_layers(manifest: Any) -> list[LayerDescriptor]:
    """The simple-signing layers of a ``.sig`` manifest.

    Raises:
        VerificationError: ``malformed_trust_data`` when the manifest is not an image manifest,
            or has too many layers; ``no_trust_data`` when it has no signature layer.
    """
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if not isinstance(layers, list):
        raise VerificationError(
            "signature manifest has no layers", category=Category.MALFORMED_TRUST_DATA
        )
    if len(layers) > MAX_SIGNATURE_LAYERS:
        raise VerificationError(
            f"signature manifest has more than {MAX_SIGNATURE_LAYERS} layers",
            category=Category.MALFORMED_TRUST_DATA,
        )
    found = []
    for layer in layers:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        annotations = layer.get("annotations") or {}
        digest = layer.get("digest")
        if not isinstance(digest, str) or not isinstance(annotations, dict):
            raise VerificationError(
                "malformed signature layer", category=Category.MALFORMED_TRUST_DATA
            )
        size = layer.get("size")
        found.append(
            LayerDescriptor(
                digest=digest,
                annotations={k: v for k, v in annotations.items() if isinstance(v, str)},
                size=size if type(size) is int else None,
            )
        )
    if not found:
        raise VerificationError("no signatures found", category=Category.NO_TRUST_DATA)
    return found


def to_signature_layer(descriptor: LayerDescriptor, payload: bytes) -> SignatureLayer:
    """Combine a layer descriptor with its fetched payload blob."""
    a = descriptor.annotations
    return SignatureLayer(
        payload=payload,
        signature=a.get(SIGNATURE_ANNOTATION, ""),
        certificate=a.get(CERTIFICATE_ANNOTATION) or None,
        chain=a.get(CHAIN_ANNOTATION) or None,
        bundle=a.get(BUNDLE_ANNOTATION) or None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleSigningPayload:
    """The claims of a cosign signature (``critical`` section of the payload)."""

    digest: str
    docker_reference: str

    @classmethod
    def parse(cls, raw: bytes) -> SimpleSigningPayload:
        """Parse the simple-signing JSON.

        Raises:
            VerificationError: ``malformed_trust_data`` for anything that is not a cosign payload.
        """
        try:
            if len(raw) > MAX_PAYLOAD_BYTES:
                raise ValueError("payload too large")
            doc = jsondoc.loads(raw)
            critical = doc["critical"]
            digest = critical["image"]["docker-manifest-digest"]
            reference = critical["identity"]["docker-reference"]
            kind = critical["type"]
        except (ValueError, KeyError, TypeError) as e:
            raise VerificationError(
                "signature payload is not a cosign simple-signing document",
                category=Category.MALFORMED_TRUST_DATA,
            ) from e
        if not (isinstance(digest, str) and isinstance(reference, str)) or (
            kind != "cosign container image signature"
        ):
            raise VerificationError(
                "signature payload is not a cosign container image signature",
                category=Category.MALFORMED_TRUST_DATA,
            )
        return cls(digest=digest, docker_reference=reference)


@dataclass(frozen=True, slots=True, kw_only=True)
class RekorEntry:
    """A transparency log entry with its signed entry timestamp (SET)."""

    body: bytes = field(repr=False)
    integrated_time: int
    log_index: int
    log_id: str
    signed_entry_timestamp: bytes = field(repr=False)

    @classmethod
    def from_bundle(cls, annotation: str) -> RekorEntry:
        """Parse cosign's ``dev.sigstore.cosign/bundle`` annotation.

        Raises:
            VerificationError: ``malformed_trust_data``.
        """
        try:
            doc = jsondoc.loads(annotation)
            payload = doc["Payload"]
            return cls._build(payload["body"], payload, doc["SignedEntryTimestamp"])
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise VerificationError(
                "malformed Rekor bundle", category=Category.MALFORMED_TRUST_DATA
            ) from e

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> RekorEntry:
        """Parse one value of a Rekor ``/api/v1/log/entries`` answer.

        Raises:
            VerificationError: ``malformed_trust_data``.
        """
        try:
            return cls._build(entry["body"], entry, entry["verification"]["signedEntryTimestamp"])
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise VerificationError(
                "malformed Rekor entry", category=Category.MALFORMED_TRUST_DATA
            ) from e

    @classmethod
    def _build(cls, body: str, meta: Mapping[str, Any], set_b64: str) -> RekorEntry:
        integrated, index, lid = meta["integratedTime"], meta["logIndex"], meta["logID"]
        if not (isinstance(integrated, int) and isinstance(index, int) and isinstance(lid, str)):
            raise TypeError("integratedTime, logIndex and logID have wrong types")
        return cls(
            body=base64.b64decode(body, validate=True),
            integrated_time=integrated,
            log_index=index,
            log_id=lid,
            signed_entry_timestamp=base64.b64decode(set_b64, validate=True),
        )

    def canonical_payload(self) -> bytes:
        """What the SET signs: RFC 8785 JSON of body, integratedTime, logID, logIndex."""
        doc = {
            "body": base64.b64encode(self.body).decode(),
            "integratedTime": self.integrated_time,
            "logID": self.log_id,
            "logIndex": self.log_index,
        }
        # For ASCII strings and integers, sorted compact JSON is exactly RFC 8785.
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


class Stage(IntEnum):
    """How far a signature got before it failed; the furthest failure is reported."""

    SIGNATURE = 1
    PAYLOAD = 2
    TLOG = 3
    CHAIN = 4
    IDENTITY = 5
    SCT = 6
    CLAIMS = 7


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


def _decode_signature(layer: SignatureLayer) -> bytes:
    try:
        return base64.b64decode(layer.signature, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Rejection(
            "signature is not base64", category=Category.MALFORMED_TRUST_DATA, stage=Stage.PAYLOAD
        ) from e


def _check_signature(key: PublicKey, signature: bytes, payload: bytes, who: str) -> None:
    try:
        verify_raw_signature(key, signature, payload)
    except InvalidSignature as e:
        raise Rejection(
            f"signature does not verify with {who}",
            category=Category.SIGNATURE_INVALID,
            stage=Stage.SIGNATURE,
        ) from e


def verify_log_entry(
    entry: RekorEntry,
    material: TransparencyMaterial,
    *,
    signature: bytes,
    payload: bytes,
    signer_key: PublicKey,
    signer_cert: x509.Certificate | None,
) -> datetime:
    """Check the SET offline and that the entry's body records this very signature.

    Returns:
        The integrated time of the entry (UTC).

    Raises:
        Rejection: at stage ``TLOG``.
    """
    key = material.rekor_key(entry.log_id)
    if key is None:
        raise _tlog_error(f"Rekor log id {entry.log_id[:12]}… is not trusted")
    integrated = datetime.fromtimestamp(entry.integrated_time, tz=UTC)
    window = material.rekor_validity.get(entry.log_id, ALWAYS)
    if not window.contains(integrated):
        raise _tlog_error(
            f"Rekor log id {entry.log_id[:12]}… vouches only for entries integrated "
            f"{window.describe()}, not at {integrated:%Y-%m-%dT%H:%M:%SZ}"
        )
    try:
        verify_raw_signature(key, entry.signed_entry_timestamp, entry.canonical_payload())
    except InvalidSignature as e:
        raise _tlog_error("the Rekor signed entry timestamp does not verify") from e
    _check_body(
        entry.body,
        signature=signature,
        payload=payload,
        signer_key=signer_key,
        signer_cert=signer_cert,
    )
    return integrated


def _tlog_error(reason: str) -> Rejection:
    return Rejection(reason, category=Category.SIGNATURE_INVALID, stage=Stage.TLOG)


def _check_body(
    body: bytes,
    *,
    signature: bytes,
    payload: bytes,
    signer_key: PublicKey,
    signer_cert: x509.Certificate | None,
) -> None:
    try:
        doc = jsondoc.loads(body)
        if doc["kind"] != "hashedrekord":
            raise ValueError(f"unsupported Rekor entry kind {doc['kind']!r}")
        spec = doc["spec"]
        algorithm, digest = spec["data"]["hash"]["algorithm"], spec["data"]["hash"]["value"]
        logged_sig = base64.b64decode(spec["signature"]["content"], validate=True)
        logged_pem = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise _tlog_error("the Rekor entry is not a hashedrekord entry") from e
    if algorithm != "sha256" or digest != hashlib.sha256(payload).hexdigest():
        raise _tlog_error("the Rekor entry records another payload")
    if logged_sig != signature:
        raise _tlog_error("the Rekor entry records another signature")
    if not _same_signer(logged_pem, signer_key, signer_cert):
        raise _tlog_error("the Rekor entry records another signing key")


def _same_signer(logged_pem: bytes, key: PublicKey, cert: x509.Certificate | None) -> bool:
    try:
        if cert is not None:
            return x509.load_pem_x509_certificate(logged_pem) == cert
        logged = serialization.load_pem_public_key(logged_pem)
    except ValueError:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return logged.public_bytes(serialization.Encoding.DER, spki) == key.public_bytes(
        serialization.Encoding.DER, spki
    )


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


def certificate_identity(cert: x509.Certificate) -> tuple[str, str]:
    """The (OIDC issuer, subject) of a Fulcio certificate; empty strings when absent."""
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
    return issuer, subject


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


# --------------------------------------------------------------------------------------------
# One signature, one trust root
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions:
    """Per-rule switches and what the signature must claim (D2)."""

    image: ImageReference
    digest: str
    verify_tlog: bool = True
    verify_sct: bool = True
    ignore_reference: bool = False


def check_signature(
    layer: SignatureLayer,
    root: TrustRoot,
    key: PublicKey | None,
    material: TransparencyMaterial,
    options: CheckOptions,
    *,
    log_entries: Sequence[RekorEntry],
    now: datetime,
) -> bytes:
    """Verify one signature layer for one trust root; return who signed: the SPKI of a key, or
    the OIDC issuer and subject of a keyless certificate (its key is thrown away after one
    signature, so two signatures by one identity are one signer, D3).

    Steps (D2, docs/decisions/0002-cosign-claims-are-checked.md): 1 signature over the payload
    with the key or the certificate's key;
    2 payload parse; 3 Rekor entry (bundle or looked-up entries): SET and body; 4 keyless:
    chain at the integrated time; 5 identity; 6 SCT; 7 claims: digest, then repository.

    Raises:
        Rejection: the first failing step, with its stage.
    """
    # Step 1: signature over the payload bytes (nothing in the payload is read before).
    signature = _decode_signature(layer)
    cert = _leaf_certificate(layer) if root.keyless is not None else None
    signer_key = _signer_key(root, key, cert)
    _check_signature(signer_key, signature, layer.payload, f"trust root {root.name}")
    # Step 2: payload.
    try:
        claims = SimpleSigningPayload.parse(layer.payload)
    except VerificationError as e:
        raise Rejection(e.message, category=e.category, stage=Stage.PAYLOAD) from e
    # Step 3: transparency log.
    signed_at = now
    if options.verify_tlog:
        signed_at = _verified_log_time(layer, material, signature, signer_key, cert, log_entries)
    # Steps 4-6: keyless certificate.
    if cert is not None and root.keyless is not None:
        chain = verify_chain(cert, _chain(layer), material, signed_at)
        if not identity_matches(root.keyless, *certificate_identity(cert)):
            raise Rejection(
                "none of the expected identities matched",
                category=Category.IDENTITY_MISMATCH,
                stage=Stage.IDENTITY,
            )
        if options.verify_sct:
            verify_sct(cert, chain[0], material)
    # Step 7: claims (D2).
    _check_claims(claims, options)
    if cert is not None:
        issuer, subject = certificate_identity(cert)
        return b"keyless\0" + issuer.encode() + b"\0" + subject.encode()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return signer_key.public_bytes(serialization.Encoding.DER, spki)


def judge_signature(
    layer: SignatureLayer,
    roots: Sequence[TrustRoot],
    keys: Mapping[str, PublicKey],
    material: TransparencyMaterial,
    options: CheckOptions,
    *,
    log_entries: Sequence[RekorEntry],
    now: datetime,
) -> Judgement:
    """One signature layer against every selected trust root (see :func:`check_signature`):
    the roots it satisfies, with who signed, and why it satisfies none of the others."""
    vouches: list[Vouch] = []
    refused: list[Rejection] = []
    for root in roots:
        try:
            who = check_signature(
                layer,
                root,
                keys.get(root.name),
                material,
                options,
                log_entries=log_entries,
                now=now,
            )
        except Rejection as e:
            refused.append(e)
            continue
        vouches.append(Vouch(root.name, who))
    return Judgement(digest=options.digest, vouches=tuple(vouches), refused=tuple(refused))


def worth_a_log_lookup(
    layer: SignatureLayer,
    root: TrustRoot,
    key: PublicKey | None,
    material: TransparencyMaterial,
    options: CheckOptions,
    *,
    now: datetime,
) -> bool:
    """Whether ``layer`` passes every check that needs no transparency log for ``root``:
    only then is Rekor asked about it, so a registry listing forged signatures cannot make
    this process query Rekor for each. A keyless certificate's chain is checked at its own
    issuance time here (the Rekor entry proves the signing time later)."""
    at = now
    if root.keyless is not None:
        try:
            at = _leaf_certificate(layer).not_valid_before_utc
        except Rejection:
            return False
    offline = CheckOptions(
        image=options.image,
        digest=options.digest,
        verify_tlog=False,
        verify_sct=options.verify_sct,
        ignore_reference=options.ignore_reference,
    )
    try:
        check_signature(layer, root, key, material, offline, log_entries=(), now=at)
    except Rejection:
        return False
    return True


def _signer_key(root: TrustRoot, key: PublicKey | None, cert: x509.Certificate | None) -> PublicKey:
    if cert is not None:
        public = cert.public_key()
        if isinstance(
            public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ):
            return public
        raise Rejection(
            "unsupported certificate key type",
            category=Category.SIGNATURE_INVALID,
            stage=Stage.SIGNATURE,
        )
    if key is None:
        raise Rejection(
            f"trust root {root.name} has no key",
            category=Category.SIGNATURE_INVALID,
            stage=Stage.SIGNATURE,
        )
    return key


def _leaf_certificate(layer: SignatureLayer) -> x509.Certificate:
    if not layer.certificate:
        raise Rejection(
            "keyless signature without certificate",
            category=Category.SIGNATURE_INVALID,
            stage=Stage.SIGNATURE,
        )
    try:
        return load_certificates(layer.certificate)[0]
    except TrustRootError as e:
        raise Rejection(
            "unparsable signing certificate",
            category=Category.MALFORMED_TRUST_DATA,
            stage=Stage.PAYLOAD,
        ) from e


def _chain(layer: SignatureLayer) -> list[x509.Certificate]:
    if not layer.chain:
        return []
    try:
        return load_certificates(layer.chain)
    except TrustRootError as e:
        raise Rejection(
            "unparsable certificate chain",
            category=Category.MALFORMED_TRUST_DATA,
            stage=Stage.PAYLOAD,
        ) from e


def _verified_log_time(
    layer: SignatureLayer,
    material: TransparencyMaterial,
    signature: bytes,
    signer_key: PublicKey,
    cert: x509.Certificate | None,
    looked_up: Sequence[RekorEntry],
) -> datetime:
    if layer.bundle:
        try:
            entries: Sequence[RekorEntry] = [RekorEntry.from_bundle(layer.bundle)]
        except VerificationError as e:
            raise Rejection(e.message, category=e.category, stage=Stage.TLOG) from e
    else:
        entries = looked_up
    if not entries:
        raise _tlog_error("the signature has no transparency log entry")
    failures: list[Rejection] = []
    for entry in entries:
        try:
            return verify_log_entry(
                entry,
                material,
                signature=signature,
                payload=layer.payload,
                signer_key=signer_key,
                signer_cert=cert,
            )
        except Rejection as e:
            failures.append(e)
    raise failures[-1]


def _check_claims(claims: SimpleSigningPayload, options: CheckOptions) -> None:
    if claims.digest != options.digest:
        raise Rejection(
            f"the signature is for digest {claims.digest}, not {options.digest}",
            category=Category.DIGEST_MISMATCH,
            stage=Stage.CLAIMS,
        )
    if options.ignore_reference:
        return
    try:
        signed = ImageReference.parse(claims.docker_reference).context
    except InvalidReferenceError:
        signed = claims.docker_reference
    if signed != options.image.context:
        raise Rejection(
            f"the signature names repository {signed}, not {options.image.context}"
            " (with.ignoreReference allows copied signatures)",
            category=Category.REFERENCE_NOT_FOUND,
            stage=Stage.CLAIMS,
        )
