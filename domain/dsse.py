"""DSSE envelopes and the in-toto statements they carry: what cosign attestations (classic
``.att`` layers) and Sigstore bundles of cosign v3 (signatures and attestations) sign.

Pure parsing, bounded: an envelope of at most ``MAX_ENVELOPE_BYTES``, JSON at most
``jsondoc.MAX_DEPTH`` levels deep. The envelope is parsed with the ``sigstore_models`` model
(sigstore's own, a parser that does no I/O); the pre-authentication encoding and the statement
are ours (a few lines of the DSSE and in-toto specifications).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sigstore_models.intoto import Envelope as EnvelopeModel

from connaisseur.domain import jsondoc
from connaisseur.domain.errors import malformed_trust_data

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"}
)
#: The predicate type of an image *signature* made by cosign v3 (a statement with an empty
#: predicate about the image digest); every other predicate type is an attestation.
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
#: Large enough for SBOM and provenance attestations; every envelope is read at most this far.
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
MAX_SUBJECTS = 1024
MAX_ENVELOPE_SIGNATURES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class DsseEnvelope:
    """A DSSE envelope: the payload, its type and the signatures over both."""

    payload_type: str
    payload: bytes = field(repr=False)
    signatures: tuple[bytes, ...] = field(repr=False)

    @classmethod
    def parse(cls, raw: bytes) -> DsseEnvelope:
        """A DSSE envelope as JSON (a classic ``.att`` layer).

        Raises:
            VerificationError: ``malformed_trust_data``.
        """
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise malformed_trust_data(f"DSSE envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
        try:
            doc = jsondoc.loads(raw)
        except ValueError as e:
            raise malformed_trust_data("DSSE envelope is not JSON") from e
        if not isinstance(doc, dict):
            raise malformed_trust_data("DSSE envelope is not a JSON object")
        return cls.from_mapping(doc)

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> DsseEnvelope:
        """A DSSE envelope already decoded (a bundle's ``dsseEnvelope``).

        Raises:
            VerificationError: ``malformed_trust_data``.
        """
        try:
            model = EnvelopeModel.from_json(json.dumps(_strict_base64(dict(doc))))
        except (ValueError, TypeError) as e:  # pydantic's ValidationError is a ValueError
            raise malformed_trust_data("malformed DSSE envelope") from e
        return cls.from_model(model)

    @classmethod
    def from_model(cls, model: EnvelopeModel) -> DsseEnvelope:
        """Our envelope from the ``sigstore_models`` one.

        Raises:
            VerificationError: ``malformed_trust_data``: no signature, or too many.
        """
        if not model.signatures or len(model.signatures) > MAX_ENVELOPE_SIGNATURES:
            raise malformed_trust_data(
                f"a DSSE envelope has 1 to {MAX_ENVELOPE_SIGNATURES} signatures, "
                f"not {len(model.signatures)}"
            )
        return cls(
            payload_type=model.payload_type,
            payload=model.payload,
            signatures=tuple(s.sig for s in model.signatures),
        )

    def pae(self) -> bytes:
        """What each signature signs: the DSSE v1 pre-authentication encoding."""
        kind = self.payload_type.encode()
        return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(self.payload), self.payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """An in-toto statement: what it is about (subject digests), and what it says."""

    predicate_type: str
    #: (name, ``sha256:<hex>``) of every subject with a SHA-256 digest
    subjects: tuple[tuple[str, str], ...]
    predicate: Any = field(repr=False)

    @classmethod
    def parse(cls, envelope: DsseEnvelope) -> Statement:
        """The in-toto statement an envelope carries.

        Raises:
            VerificationError: ``malformed_trust_data``: another payload type, not JSON, not a
                statement.
        """
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise malformed_trust_data(
                f"DSSE payload type {envelope.payload_type[:80]!r} is not in-toto"
            )
        try:
            doc = jsondoc.loads(envelope.payload)
        except ValueError as e:
            raise malformed_trust_data("in-toto statement is not JSON") from e
        if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
            raise malformed_trust_data("the DSSE payload is not an in-toto statement")
        predicate_type, subjects = doc.get("predicateType"), doc.get("subject")
        if not isinstance(predicate_type, str) or not isinstance(subjects, list):
            raise malformed_trust_data("in-toto statement without predicateType or subject")
        if len(subjects) > MAX_SUBJECTS:
            raise malformed_trust_data(f"in-toto statement with more than {MAX_SUBJECTS} subjects")
        return cls(
            predicate_type=predicate_type,
            subjects=tuple(_sha256_subjects(subjects)),
            predicate=doc.get("predicate"),
        )

    def about(self, digest: str) -> bool:
        """Whether ``digest`` (``sha256:<hex>``) is one of the statement's subjects."""
        return any(d == digest for _, d in self.subjects)


def _sha256_subjects(subjects: list[Any]) -> list[tuple[str, str]]:
    found = []
    for subject in subjects:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        value = digests.get("sha256") if isinstance(digests, dict) else None
        if isinstance(value, str):
            name = subject.get("name")
            found.append((name if isinstance(name, str) else "", "sha256:" + value.lower()))
    return found


def _strict_base64(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` once its base64 fields are known to be base64: the model decodes leniently
    (skipping foreign characters), so two different texts could mean the same bytes."""
    texts = [doc.get("payload")]
    signatures = doc.get("signatures")
    if isinstance(signatures, list):
        texts += [s.get("sig") for s in signatures if isinstance(s, dict)]
    for text in texts:
        if isinstance(text, str):
            try:
                base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as e:
                raise ValueError("not base64") from e
    return doc
