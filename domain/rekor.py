"""Rekor transparency log entries: parsed from cosign's bundle annotation, the Rekor API or a
Sigstore bundle, and checked offline.

An entry is evidence in two ways, each checked against the Rekor keys of the trust material and
their ``validFor`` windows (docs/decisions/0028-trust-material-has-a-lifetime.md):

* the inclusion promise — a signed entry timestamp (SET) over the entry and its integrated time,
  which is then the signing time;
* the inclusion proof — a Merkle audit path from the entry to a tree root (RFC 6962 §2.1.1,
  RFC 9162 §2.1.3.2) and a checkpoint: a signed note naming that root and the tree size.

Either way, the entry's body must record this very signature, signer and signed content
(:class:`Logged`), for the kinds cosign writes: ``hashedrekord`` (simple signing, bundle
message signatures), ``dsse`` and ``intoto`` (DSSE envelopes).

What is ours and what follows sigstore: the SET payload, the audit path and the signed note
follow the Rekor and transparency-dev formats as sigstore-python's ``models.py``,
``_internal/merkle.py`` and ``_internal/rekor/checkpoint.py`` read them; those are private
APIs bound to its own bundle class, and importing them pulls sigstore's network clients into
the domain, so the few lines are written here (tests compare our Merkle check with sigstore's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import (
    Category,
    Rejection,
    VerificationError,
)
from connaisseur.domain.sigstore import (
    ALWAYS,
    Stage,
    TransparencyMaterial,
    Validity,
    verify_raw_signature,
)
from connaisseur.domain.trust import (
    UNUSABLE,
    PublicKey,
)

#: Deeper audit paths than this would need a log of more than 2**64 entries.
MAX_PROOF_HASHES = 64
MAX_CHECKPOINT_BYTES = 16 * 1024
_NOTE_SIGNATURE = re.compile(r"\u2014 (\S+) (\S+)\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class InclusionProof:
    """An entry's audit path to a tree root, and the checkpoint signing that root."""

    log_index: int
    tree_size: int
    root_hash: bytes = field(repr=False)
    hashes: tuple[bytes, ...] = field(repr=False)
    checkpoint: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RekorEntry:
    """A transparency log entry with its inclusion promise (SET) and/or inclusion proof."""

    body: bytes = field(repr=False)
    log_index: int
    log_id: str
    integrated_time: int | None = None
    signed_entry_timestamp: bytes | None = field(default=None, repr=False)
    inclusion_proof: InclusionProof | None = None

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Logged:
    """What an entry's body must record: this signature by this signer over this content.

    ``data_sha256`` is the hash a ``hashedrekord`` entry names (of the simple-signing payload,
    or a bundle's message digest); ``payload_sha256`` the hash of a DSSE payload that ``dsse``
    and ``intoto`` entries name; ``envelope_sha256`` the hash of a classic ``.att`` layer (the
    envelope as stored), which ``intoto`` entries name too.
    """

    signature: bytes = field(repr=False)
    signer_key: PublicKey = field(repr=False)
    signer_cert: x509.Certificate | None = field(default=None, repr=False)
    data_sha256: bytes | None = None
    payload_sha256: bytes | None = None
    envelope_sha256: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEvidence:
    """What a verified entry proves: the signed integrated time, when it has a promise."""

    integrated_time: datetime | None


def verify_log_entry(
    entry: RekorEntry,
    material: TransparencyMaterial,
    logged: Logged,
    *,
    require_proof: bool = False,
    signed_at: Sequence[datetime] = (),
) -> LogEvidence:
    """Check an entry offline: its promise (SET) and/or inclusion proof with the log's key,
    and that its body records ``logged``.

    ``require_proof``: the entry must carry an inclusion proof with a checkpoint (Sigstore
    bundles from v0.2 on); otherwise a promise is enough (cosign's bundle annotation).
    ``signed_at``: when the signature existed by other evidence (timestamps, else now): an
    entry without a promise has no signed time, so its log key must be in service then.

    Raises:
        Rejection: at stage ``TLOG``.
    """
    key = material.rekor_key(entry.log_id)
    if key is None:
        raise tlog_error(f"Rekor log id {entry.log_id[:12]}… is not trusted")
    window = material.rekor_validity.get(entry.log_id, ALWAYS)
    if entry.inclusion_proof is not None:
        verify_inclusion(entry, entry.inclusion_proof, key)
    elif require_proof:
        raise tlog_error("the transparency log entry has no inclusion proof")
    signed_time = None
    if entry.signed_entry_timestamp:
        signed_time = _verified_promise(entry, key, window)
    elif entry.inclusion_proof is None:
        raise tlog_error("the transparency log entry has neither a promise nor a proof")
    else:
        for moment in signed_at:
            if not window.contains(moment):
                raise tlog_error(
                    f"Rekor log id {entry.log_id[:12]}… vouches only for entries "
                    f"{window.describe()}, not at {moment:%Y-%m-%dT%H:%M:%SZ}"
                )
    check_body(entry.body, logged)
    return LogEvidence(integrated_time=signed_time)


def tlog_error(reason: str) -> Rejection:
    """The rejection of a signature whose transparency log evidence does not hold."""
    return Rejection(reason, category=Category.SIGNATURE_INVALID, stage=Stage.TLOG)


def _verified_promise(entry: RekorEntry, key: PublicKey, window: Validity) -> datetime:
    if entry.integrated_time is None:
        raise tlog_error("the Rekor inclusion promise has no integrated time")
    integrated = datetime.fromtimestamp(entry.integrated_time, tz=UTC)
    if not window.contains(integrated):
        raise tlog_error(
            f"Rekor log id {entry.log_id[:12]}… vouches only for entries integrated "
            f"{window.describe()}, not at {integrated:%Y-%m-%dT%H:%M:%SZ}"
        )
    try:
        verify_raw_signature(key, entry.signed_entry_timestamp or b"", entry.canonical_payload())
    except InvalidSignature as e:
        raise tlog_error("the Rekor signed entry timestamp does not verify") from e
    return integrated


# --- inclusion proof ---------------------------------------------------------------------------


def leaf_hash(body: bytes) -> bytes:
    """RFC 6962 §2.1: the hash of a leaf."""
    return hashlib.sha256(b"\x00" + body).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_audit_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The tree root an audit path leads to from leaf ``index`` of a tree of ``size`` leaves
    (RFC 9162 §2.1.3.2).

    Raises:
        Rejection: the path does not fit the index and size.
    """
    if not 0 <= index < size or len(path) > MAX_PROOF_HASHES:
        raise tlog_error("the inclusion proof does not fit its tree")
    fn, sn, root = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise tlog_error("the inclusion proof is longer than its tree is deep")
        if fn & 1 or fn == sn:
            root = _node_hash(sibling, root)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = _node_hash(root, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise tlog_error("the inclusion proof is shorter than its tree is deep")
    return root


def verify_inclusion(entry: RekorEntry, proof: InclusionProof, key: PublicKey) -> None:
    """The entry's body is leaf ``log_index`` of the tree whose root the log signed.

    Raises:
        Rejection: at stage ``TLOG``.
    """
    root = root_from_audit_path(
        proof.log_index, proof.tree_size, leaf_hash(entry.body), proof.hashes
    )
    if root != proof.root_hash:
        raise tlog_error("the inclusion proof does not lead to its root hash")
    signed = verify_checkpoint(proof.checkpoint, entry.log_id, key)
    if (signed.size, signed.root_hash) != (proof.tree_size, proof.root_hash):
        raise tlog_error("the checkpoint signs another tree than the inclusion proof")


class SignedTree(NamedTuple):
    """The tree a checkpoint signs: its size and root hash."""

    size: int
    root_hash: bytes


def verify_checkpoint(text: str, log_id: str, key: PublicKey) -> SignedTree:
    """A Rekor checkpoint (a transparency-dev signed note): the tree size and root hash it
    signs, once a signature by the log's key verifies over the note.

    Raises:
        Rejection: at stage ``TLOG``.
    """
    if len(text) > MAX_CHECKPOINT_BYTES or text.count("\n\n") != 1:
        raise tlog_error("malformed checkpoint")
    split = text.index("\n\n")
    note, signatures = text[: split + 1], text[split + 2 :]
    hint = bytes.fromhex(log_id)[:4]
    verified = False
    for _, encoded in _NOTE_SIGNATURE.findall(signatures):
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if raw[:4] != hint:
            continue
        try:
            verify_raw_signature(key, raw[4:], note.encode())
        except InvalidSignature:
            continue
        verified = True
        break
    if not verified:
        raise tlog_error("the checkpoint is not signed by the transparency log")
    return _checkpoint_tree(note)


def _checkpoint_tree(note: str) -> SignedTree:
    lines = note.rstrip("\n").split("\n")
    try:
        if len(lines) < 3 or not lines[0] or not lines[1].isdigit():
            raise ValueError("origin, size, root hash")
        return SignedTree(size=int(lines[1]), root_hash=base64.b64decode(lines[2], validate=True))
    except (binascii.Error, ValueError) as e:
        raise tlog_error("malformed checkpoint") from e


# --- the entry's body --------------------------------------------------------------------------


def check_body(body: bytes, logged: Logged) -> None:
    """The entry records ``logged``: for its kind, the signed content's hash, the signature
    and the signer (key, or certificate).

    Raises:
        Rejection: at stage ``TLOG``.
    """
    try:
        doc = jsondoc.loads(body)
        kind, version, spec = doc["kind"], doc["apiVersion"], doc["spec"]
        check = _BODY_CHECKS.get((kind, version))
        if check is None:
            raise tlog_error(f"unsupported Rekor entry kind {str(kind)[:40]} {str(version)[:10]}")
        check(spec, logged)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as e:
        raise tlog_error("the Rekor entry body is malformed") from e


def _hashedrekord(spec: Mapping[str, Any], logged: Logged) -> None:
    _same_hash(spec["data"]["hash"], logged.data_sha256, "payload")
    signature = base64.b64decode(spec["signature"]["content"], validate=True)
    if signature != logged.signature:
        raise tlog_error("the Rekor entry records another signature")
    pem = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
    _same_signer(pem, logged)


def _dsse(spec: Mapping[str, Any], logged: Logged) -> None:
    _same_hash(spec["payloadHash"], logged.payload_sha256, "DSSE payload")
    for entry in spec["signatures"]:
        signature = base64.b64decode(entry["signature"], validate=True)
        pem = base64.b64decode(entry["verifier"], validate=True)
        if signature == logged.signature and _signer_matches(pem, logged):
            return
    raise tlog_error("the Rekor entry records another signature or signer")


def _intoto(spec: Mapping[str, Any], logged: Logged) -> None:
    content = spec["content"]
    if "payloadHash" in content:
        _same_hash(content["payloadHash"], logged.payload_sha256, "DSSE payload")
    elif logged.envelope_sha256 is not None:
        _same_hash(content["hash"], logged.envelope_sha256, "DSSE envelope")
    else:
        raise tlog_error("the Rekor entry names no DSSE payload")
    for entry in content["envelope"]["signatures"]:
        pem = base64.b64decode(entry["publicKey"], validate=True)
        if _intoto_signature(entry["sig"]) == logged.signature and _signer_matches(pem, logged):
            return
    raise tlog_error("the Rekor entry records another signature or signer")


def _intoto_signature(text: str) -> bytes:
    # intoto v0.0.2 stores the envelope's base64 signature base64-encoded once more.
    once = base64.b64decode(text, validate=True)
    try:
        return base64.b64decode(once, validate=True)
    except (binascii.Error, ValueError):
        return once


_BODY_CHECKS: dict[tuple[str, str], Callable[[Mapping[str, Any], Logged], None]] = {
    ("hashedrekord", "0.0.1"): _hashedrekord,
    ("dsse", "0.0.1"): _dsse,
    ("intoto", "0.0.2"): _intoto,
}


def _same_hash(named: Mapping[str, Any], expected: bytes | None, what: str) -> None:
    if expected is None:
        raise tlog_error(f"the Rekor entry kind does not fit this signature ({what})")
    if named["algorithm"] != "sha256" or named["value"] != expected.hex():
        raise tlog_error(f"the Rekor entry records another {what}")


def _same_signer(pem: bytes, logged: Logged) -> None:
    if not _signer_matches(pem, logged):
        raise tlog_error("the Rekor entry records another signing key")


def _signer_matches(logged_pem: bytes, logged: Logged) -> bool:
    try:
        if logged.signer_cert is not None:
            return x509.load_pem_x509_certificate(logged_pem) == logged.signer_cert
        key = serialization.load_pem_public_key(logged_pem)
    except UNUSABLE:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.DER, spki) == logged.signer_key.public_bytes(
        serialization.Encoding.DER, spki
    )
