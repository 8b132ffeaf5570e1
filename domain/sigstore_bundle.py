"""Sigstore bundles (media types v0.1 to v0.3): what cosign v3 — and cosign v2 with
``--new-bundle-format`` — stores as an OCI 1.1 referrer of the image it signs or attests.

Parsed with sigstore's own models (``sigstore_models``, pydantic models that do no I/O) into
the domain's values: the signed content (a DSSE envelope or a message signature), the
verification material (a public key hint, or the signing certificate with its chain), the
transparency log entries and the RFC 3161 timestamps. Two readings are ours, where the models
refuse valid bundles: proto3 JSON leaves out an empty ``tlogEntries`` list (cosign writes
bundles signed without a transparency log that way), and base64 fields are decoded strictly.
Pure and bounded: at most ``MAX_BUNDLE_BYTES``, a few entries, timestamps and certificates.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from sigstore_models.bundle.v1 import Bundle as BundleModel
from sigstore_models.rekor.v1 import TransparencyLogEntry as EntryModel

from connaisseur.domain import jsondoc
from connaisseur.domain.dsse import MAX_ENVELOPE_BYTES, DsseEnvelope
from connaisseur.domain.errors import malformed_trust_data
from connaisseur.domain.rekor import MAX_PROOF_HASHES, InclusionProof, RekorEntry

BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1"
BUNDLE_V02 = "application/vnd.dev.sigstore.bundle+json;version=0.2"
BUNDLE_V03_ALT = "application/vnd.dev.sigstore.bundle+json;version=0.3"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES = frozenset({BUNDLE_V01, BUNDLE_V02, BUNDLE_V03_ALT, BUNDLE_V03})
#: A bundle is its envelope plus a few kilobytes of certificates, entries and timestamps.
MAX_BUNDLE_BYTES = MAX_ENVELOPE_BYTES + 256 * 1024
MAX_LOG_ENTRIES = 8
MAX_TIMESTAMPS = 8
MAX_CERTIFICATES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSignature:
    """A signature over an artefact's SHA-256 digest (a bundle without a DSSE envelope)."""

    digest: bytes
    signature: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SigstoreBundle:
    """One bundle, parsed: exactly one of ``envelope`` and ``message``."""

    media_type: str
    envelope: DsseEnvelope | None = None
    message: MessageSignature | None = None
    #: an unauthenticated hint naming the key (public-key bundles)
    key_hint: str | None = None
    #: the signing certificate first, then the untrusted chain the bundle brings
    certificates: tuple[x509.Certificate, ...] = field(default=(), repr=False)
    log_entries: tuple[RekorEntry, ...] = ()
    #: DER ``TimeStampResponse`` of each RFC 3161 timestamp over the signature
    timestamps: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def needs_inclusion_proof(self) -> bool:
        """From v0.2 on, a log entry must prove its inclusion (the promise alone is v0.1)."""
        return self.media_type != BUNDLE_V01

    @property
    def signature(self) -> bytes:
        if self.envelope is not None:
            return self.envelope.signatures[0]
        assert self.message is not None  # noqa: S101 - one of the two is set by parse()
        return self.message.signature

    @classmethod
    def parse(cls, raw: bytes) -> SigstoreBundle:
        """A bundle as stored in the registry.

        Raises:
            VerificationError: ``malformed_trust_data``: too large, not JSON, not a bundle of a
                known version, or not one this verifier can judge (a message digest that is not
                SHA-256, a DSSE envelope with several signatures).
        """
        if len(raw) > MAX_BUNDLE_BYTES:
            raise malformed_trust_data(f"Sigstore bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        try:
            doc = jsondoc.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            # The models' strict mode reads enums from JSON text only: hand them text again.
            model = BundleModel.from_json(json.dumps(_proto3_defaults(doc)))
        except (ValueError, TypeError) as e:
            raise malformed_trust_data("malformed Sigstore bundle") from e
        return cls._from_model(model)

    @classmethod
    def _from_model(cls, model: BundleModel) -> SigstoreBundle:
        material = model.verification_material
        entries = material.tlog_entries
        stamping = material.timestamp_verification_data
        stamps = stamping.rfc3161_timestamps if stamping is not None else []
        if len(entries) > MAX_LOG_ENTRIES or len(stamps) > MAX_TIMESTAMPS:
            raise malformed_trust_data("Sigstore bundle with too many log entries or timestamps")
        envelope = DsseEnvelope.from_model(model.dsse_envelope) if model.dsse_envelope else None
        if envelope is not None and len(envelope.signatures) != 1:
            raise malformed_trust_data(
                "a Sigstore bundle's DSSE envelope has exactly one signature"
            )
        return cls(
            media_type=model.media_type,
            envelope=envelope,
            message=_message(model),
            key_hint=material.public_key.hint if material.public_key else None,
            certificates=_certificates(model),
            log_entries=tuple(_entry(e) for e in entries),
            timestamps=tuple(t.signed_timestamp for t in stamps),
        )


def _message(model: BundleModel) -> MessageSignature | None:
    signed = model.message_signature
    if signed is None:
        return None
    digest = signed.message_digest
    if digest is None or digest.algorithm.value != "SHA2_256" or len(digest.digest) != 32:
        raise malformed_trust_data("a Sigstore bundle's message digest must be SHA-256")
    return MessageSignature(digest=digest.digest, signature=signed.signature)


def _certificates(model: BundleModel) -> tuple[x509.Certificate, ...]:
    material = model.verification_material
    if material.certificate is not None:
        ders = [material.certificate.raw_bytes]
    elif material.x509_certificate_chain is not None:
        ders = [c.raw_bytes for c in material.x509_certificate_chain.certificates]
    else:
        return ()
    if not ders or len(ders) > MAX_CERTIFICATES:
        raise malformed_trust_data(f"a Sigstore bundle has 1 to {MAX_CERTIFICATES} certificates")
    try:
        return tuple(x509.load_der_x509_certificate(der) for der in ders)
    except ValueError as e:
        raise malformed_trust_data("a Sigstore bundle's certificate does not parse") from e


def _entry(model: EntryModel) -> RekorEntry:
    proof = model.inclusion_proof
    if len(proof.hashes) > MAX_PROOF_HASHES:
        raise malformed_trust_data("a transparency log inclusion proof with too many hashes")
    promise = model.inclusion_promise
    return RekorEntry(
        body=model.canonicalized_body,
        log_index=model.log_index,
        log_id=model.log_id.key_id.hex(),
        integrated_time=model.integrated_time or None,
        signed_entry_timestamp=promise.signed_entry_timestamp if promise else None,
        inclusion_proof=InclusionProof(
            log_index=proof.log_index,
            tree_size=proof.tree_size,
            root_hash=proof.root_hash,
            hashes=tuple(proof.hashes),
            checkpoint=proof.checkpoint.envelope,
        )
        if proof.checkpoint is not None
        else None,
    )


#: Where the bundle holds base64 (``bytes`` in the protobuf): decoded strictly before the
#: model decodes them leniently (it skips foreign characters).
_BASE64_PATHS = (
    ("messageSignature", "signature"),
    ("messageSignature", "messageDigest", "digest"),
    ("dsseEnvelope", "payload"),
    ("verificationMaterial", "certificate", "rawBytes"),
)


def _proto3_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """The bundle with proto3 JSON's omitted defaults written out where the models require
    them, once every base64 field is known to be strict base64.

    Raises:
        ValueError: a base64 field is not base64.
    """
    for path in _BASE64_PATHS:
        _strict(_at(doc, path))
    signatures = _at(doc, ("dsseEnvelope", "signatures"))
    for signature in signatures if isinstance(signatures, list) else ():
        _strict(signature.get("sig") if isinstance(signature, Mapping) else None)
    material = doc.get("verificationMaterial")
    if isinstance(material, dict):
        material = dict(material)
        material.setdefault("tlogEntries", [])
        for entry in material["tlogEntries"] if isinstance(material["tlogEntries"], list) else ():
            if isinstance(entry, dict):
                _strict(entry.get("canonicalizedBody"))
        doc = {**doc, "verificationMaterial": material}
    return doc


def _at(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _strict(text: Any) -> None:
    if isinstance(text, str):
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValueError("not base64") from e


def is_bundle_media_type(media_type: str) -> bool:
    return media_type in BUNDLE_MEDIA_TYPES
