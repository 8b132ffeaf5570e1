"""Notary Project signature envelopes: where they are found (media and artifact types), their
JWS and COSE serialisations parsed into :class:`NotationEnvelope` values, and the steps a signature
goes through.

Pure parsing, bounded (envelopes of at most 256 KiB, chains of at most 10 certificates); COSE
is decoded with ``cbor2``, which does no I/O. Verification is ``domain/notation.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, NamedTuple

import cbor2
from cryptography import x509

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import (
    Category,
    Rejection,
    VerificationError,
)
from connaisseur.domain.trust import UNUSABLE

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
MEDIA_TYPE_JWS = "application/jose+json"
MEDIA_TYPE_COSE = "application/cose"
ENVELOPE_MEDIA_TYPES = frozenset({MEDIA_TYPE_JWS, MEDIA_TYPE_COSE})
PAYLOAD_MEDIA_TYPE = "application/vnd.cncf.notary.payload.v1+json"
THUMBPRINT_ANNOTATION = "io.cncf.notary.x509chain.thumbprint#S256"
#: notation-go's default ``MaxSignatureAttempts``, kept by Connaisseur v3.
MAX_SIGNATURE_ATTEMPTS = 10

HEADER_SIGNING_SCHEME = "io.cncf.notary.signingScheme"
HEADER_SIGNING_TIME = "io.cncf.notary.signingTime"
HEADER_AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
HEADER_EXPIRY = "io.cncf.notary.expiry"
HEADER_TIMESTAMP = "io.cncf.notary.timestampSignature"

SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"


class Step(IntEnum):
    """How far a signature got before it was rejected (the verification steps in order, see
    :func:`verify_envelope`): the further, the closer to trust."""

    FETCH = 0
    ENVELOPE = 1
    INTEGRITY = 2
    PAYLOAD = 3
    AUTHENTICITY = 4
    TIMESTAMP = 5
    EXPIRY = 6
    REVOCATION = 7
    TARGET = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The admitted artefact: the descriptor a signature's payload must name."""

    digest: str
    size: int
    media_type: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NotationEnvelope:
    """A parsed JWS or COSE envelope: what is signed, by which chain, and its signed attributes."""

    media_type: str
    alg: str
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    payload: bytes = field(repr=False)
    content_type: str
    signing_scheme: str
    signing_time: datetime | None
    authentic_signing_time: datetime | None
    expiry: datetime | None
    chain: tuple[x509.Certificate, ...]
    timestamp_token: bytes | None = field(default=None, repr=False)
    critical: tuple[str, ...] = ()


def malformed_signature(message: str, stage: Step = Step.ENVELOPE) -> Rejection:
    return Rejection(message, category=Category.MALFORMED_TRUST_DATA, stage=stage)


class EnvelopeLayer(NamedTuple):
    """The one layer of a Notation signature manifest: the envelope's media type, its digest
    and the size its descriptor declares (``None`` when absent or not a number)."""

    media_type: str
    digest: str
    size: int | None


def envelope_layer(manifest: bytes, digest: str) -> EnvelopeLayer:
    """The envelope layer of the signature manifest ``digest`` (its served bytes).

    Raises:
        Rejection: ``malformed_trust_data`` — not a JSON object, not exactly one layer, or an
            envelope of an unsupported type.
    """
    try:
        doc = jsondoc.loads(manifest)
    except ValueError as e:
        raise malformed_signature("Notation signature manifest is not JSON") from e
    if not isinstance(doc, dict):
        raise malformed_signature("Notation signature manifest is not a JSON object")
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise malformed_signature(
            f"Notation signature manifest {digest} must have exactly one layer"
        )
    layer = layers[0]
    media_type, blob_digest, size = layer.get("mediaType"), layer.get("digest"), layer.get("size")
    if media_type not in ENVELOPE_MEDIA_TYPES or not isinstance(blob_digest, str):
        raise malformed_signature(
            f"Notation signature manifest {digest} has an unsupported envelope"
        )
    return EnvelopeLayer(str(media_type), blob_digest, size if type(size) is int else None)


def thumbprints(annotations: Mapping[str, str]) -> frozenset[str]:
    """The certificate thumbprints a signature's descriptor names (lower-case hex): a hint of
    which trust root may verify it, never trusted (annotations are not signed)."""
    raw = annotations.get(THUMBPRINT_ANNOTATION)
    try:
        values = jsondoc.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return frozenset()
    if not isinstance(values, list):
        return frozenset()
    return frozenset(v.lower() for v in values if isinstance(v, str))


MAX_ENVELOPE_BYTES = 256 * 1024
MAX_CHAIN_LENGTH = 10
_COSE_ALG, _COSE_CRIT, _COSE_CTY, _COSE_X5CHAIN, _COSE_SIGN1_TAG = 1, 2, 3, 33, 18
_COSE_ALGS = {-37: "PS256", -38: "PS384", -39: "PS512", -7: "ES256", -35: "ES384", -36: "ES512"}


def parse_envelope(media_type: str, blob: bytes) -> NotationEnvelope:
    """Parse a signature envelope blob of ``media_type`` (no verification yet).

    Raises:
        VerificationError: ``malformed_trust_data`` when unparsable or of an unknown type.
    """
    if len(blob) > MAX_ENVELOPE_BYTES:
        raise malformed_signature("signature envelope is larger than 256 KiB")
    try:
        if media_type == MEDIA_TYPE_JWS:
            return _parse_jws(blob)
        if media_type == MEDIA_TYPE_COSE:
            return _parse_cose(blob)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, cbor2.CBORError) as e:
        if isinstance(e, VerificationError):
            raise
        raise malformed_signature(f"unparsable {media_type} signature envelope") from e
    raise malformed_signature(f"unsupported signature envelope type {media_type!r}")


def _b64url(text: Any) -> bytes:
    if not isinstance(text, str):
        raise malformed_signature("JWS member is not a base64url string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError as e:  # binascii.Error, or text that is not ASCII
        raise malformed_signature("JWS member is not valid base64url") from e


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise malformed_signature("JWS header value is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as e:  # binascii.Error, or text that is not ASCII
        raise malformed_signature("JWS header value is not valid base64") from e


def _parse_jws(blob: bytes) -> NotationEnvelope:
    """signature-envelope-jws.md: flattened JWS JSON serialisation."""
    doc = jsondoc.loads(blob)
    if not isinstance(doc, dict) or not {"payload", "protected", "signature"} <= doc.keys():
        raise malformed_signature("JWS envelope lacks payload, protected or signature")
    headers = jsondoc.loads(_b64url(doc["protected"]))
    unprotected = doc.get("header") or {}
    if not isinstance(headers, dict) or not isinstance(unprotected, dict):
        raise malformed_signature("JWS headers are not JSON objects")
    x5c = unprotected.get("x5c")
    if not isinstance(x5c, list):
        raise malformed_signature("JWS envelope has no x5c certificate chain")
    token = unprotected.get(HEADER_TIMESTAMP)
    return NotationEnvelope(
        media_type=MEDIA_TYPE_JWS,
        alg=str(headers.get("alg", "")),
        signing_input=f"{doc['protected']}.{doc['payload']}".encode("ascii"),
        signature=_b64url(doc["signature"]),
        payload=_b64url(doc["payload"]),
        content_type=str(headers.get("cty", "")),
        signing_scheme=str(headers.get(HEADER_SIGNING_SCHEME, "")),
        signing_time=_rfc3339(headers.get(HEADER_SIGNING_TIME)),
        authentic_signing_time=_rfc3339(headers.get(HEADER_AUTHENTIC_SIGNING_TIME)),
        expiry=_rfc3339(headers.get(HEADER_EXPIRY)),
        chain=_chain(_b64(c) for c in x5c),
        timestamp_token=_b64(token) if token is not None else None,
        critical=_critical(headers.get("crit")),
    )


def _rfc3339(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed_signature("a time header is not an RFC 3339 string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise malformed_signature("a time header has no UTC offset")
    return moment.astimezone(UTC)


def _critical(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str | int) for v in value):
        raise malformed_signature("crit is not a list of header names")
    return tuple(str(v) for v in value)


def _chain(ders: Iterable[bytes]) -> tuple[x509.Certificate, ...]:
    try:
        certs = tuple(x509.load_der_x509_certificate(d) for d in ders)
    except UNUSABLE as e:
        raise malformed_signature(
            "signature certificate chain holds an unparsable certificate"
        ) from e
    if not certs or len(certs) > MAX_CHAIN_LENGTH:
        raise malformed_signature("signature certificate chain is empty or longer than 10")
    return certs


def _parse_cose(blob: bytes) -> NotationEnvelope:
    """signature-envelope-cose.md: COSE_Sign1_Tagged."""
    outer = cbor2.loads(blob)
    if not isinstance(outer, cbor2.CBORTag) or outer.tag != _COSE_SIGN1_TAG:
        raise malformed_signature("COSE envelope is not a tagged COSE_Sign1")
    protected_bytes, unprotected, payload, signature = outer.value
    headers = cbor2.loads(_byte_string(protected_bytes))
    if not isinstance(headers, Mapping) or not isinstance(unprotected, Mapping):
        raise malformed_signature("COSE headers are not maps")
    chain = unprotected.get(_COSE_X5CHAIN, headers.get(_COSE_X5CHAIN))
    ders = [chain] if isinstance(chain, bytes) else list(chain or [])
    to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    return NotationEnvelope(
        media_type=MEDIA_TYPE_COSE,
        alg=_cose_alg(headers.get(_COSE_ALG)),
        signing_input=to_be_signed,
        signature=_byte_string(signature),
        payload=_byte_string(payload),
        content_type=str(headers.get(_COSE_CTY, "")),
        signing_scheme=str(headers.get(HEADER_SIGNING_SCHEME, "")),
        signing_time=_cbor_time(headers.get(HEADER_SIGNING_TIME)),
        authentic_signing_time=_cbor_time(headers.get(HEADER_AUTHENTIC_SIGNING_TIME)),
        expiry=_cbor_time(headers.get(HEADER_EXPIRY)),
        chain=_chain(_byte_string(d) for d in ders),
        timestamp_token=_optional_bytes(unprotected.get(HEADER_TIMESTAMP)),
        critical=_critical(headers.get(_COSE_CRIT)),
    )


def _byte_string(value: Any) -> bytes:
    """A COSE member that must be a byte string. Never ``bytes(value)``: for an integer that
    allocates that many zero bytes (9 bytes of CBOR can ask for gigabytes)."""
    if not isinstance(value, bytes):
        raise malformed_signature("a COSE member that must be a byte string is not")
    return value


def _cose_alg(value: Any) -> str:
    return _COSE_ALGS.get(value, f"cose:{value}") if isinstance(value, int) else f"cose:{value}"


def _cbor_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:  # tag 1, decoded by cbor2
        return value.astimezone(UTC)
    raise malformed_signature("a COSE time header is not an epoch date/time (tag 1)")


def _optional_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise malformed_signature("COSE timestamp signature is not a byte string")
    return value
