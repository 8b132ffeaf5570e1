"""Rekor transparency log entries: parsed from cosign's bundle annotation or the Rekor API,
and checked offline.

What is ours and what follows sigstore: the signed-entry-timestamp (SET) payload is rebuilt and
checked after sigstore-python's ``models.py`` (a private API built around its own bundle
format); the entry's body must record this very signature, payload and signer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import (
    Category,
    Rejection,
    VerificationError,
)
from connaisseur.domain.sigstore import ALWAYS, Stage, TransparencyMaterial, verify_raw_signature
from connaisseur.domain.trust import (
    UNUSABLE,
    PublicKey,
)


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
        raise tlog_error(f"Rekor log id {entry.log_id[:12]}… is not trusted")
    integrated = datetime.fromtimestamp(entry.integrated_time, tz=UTC)
    window = material.rekor_validity.get(entry.log_id, ALWAYS)
    if not window.contains(integrated):
        raise tlog_error(
            f"Rekor log id {entry.log_id[:12]}… vouches only for entries integrated "
            f"{window.describe()}, not at {integrated:%Y-%m-%dT%H:%M:%SZ}"
        )
    try:
        verify_raw_signature(key, entry.signed_entry_timestamp, entry.canonical_payload())
    except InvalidSignature as e:
        raise tlog_error("the Rekor signed entry timestamp does not verify") from e
    _check_body(
        entry.body,
        signature=signature,
        payload=payload,
        signer_key=signer_key,
        signer_cert=signer_cert,
    )
    return integrated


def tlog_error(reason: str) -> Rejection:
    """The rejection of a signature whose transparency log evidence does not hold."""
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
        raise tlog_error("the Rekor entry is not a hashedrekord entry") from e
    if algorithm != "sha256" or digest != hashlib.sha256(payload).hexdigest():
        raise tlog_error("the Rekor entry records another payload")
    if logged_sig != signature:
        raise tlog_error("the Rekor entry records another signature")
    if not _same_signer(logged_pem, signer_key, signer_cert):
        raise tlog_error("the Rekor entry records another signing key")


def _same_signer(logged_pem: bytes, key: PublicKey, cert: x509.Certificate | None) -> bool:
    try:
        if cert is not None:
            return x509.load_pem_x509_certificate(logged_pem) == cert
        logged = serialization.load_pem_public_key(logged_pem)
    except UNUSABLE:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return logged.public_bytes(serialization.Encoding.DER, spki) == key.public_bytes(
        serialization.Encoding.DER, spki
    )
