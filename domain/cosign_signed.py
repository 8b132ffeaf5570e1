"""What a cosign signature or attestation signed, read the same way from every format.

The check in ``domain/cosign.py`` is one procedure for all of them; this module says, per
format, what the signature covers, which certificate and log entries come with it, what the
transparency log must record, and what it claims about the image:

* :class:`ClassicSignature` — a simple-signing layer of a ``.sig`` manifest (or of the same
  manifest stored as an OCI 1.1 referrer): the signature covers the payload, which names the
  image digest and repository;
* :class:`ClassicAttestation` — a DSSE layer of an ``.att`` manifest: the signature covers the
  envelope's pre-authentication encoding; the in-toto statement names the subjects;
* :class:`BundleSigned` — a Sigstore bundle (cosign v3, or v2 ``--new-bundle-format``): a DSSE
  envelope (signature: predicate ``https://sigstore.dev/cosign/sign/v1``; attestation: any other
  predicate), or a message signature over the image digest itself.

Reading a part that is malformed raises the :class:`Rejection` of the step that needed it, so
a broken signature is reported as far as it got.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from connaisseur.domain.cosign_layout import AttestationLayer, SignatureLayer, SimpleSigningPayload
from connaisseur.domain.dsse import COSIGN_SIGN_PREDICATE, DsseEnvelope, Statement
from connaisseur.domain.errors import Category, Rejection, TrustRootError, VerificationError
from connaisseur.domain.rekor import Logged, RekorEntry
from connaisseur.domain.sigstore import Stage, verify_raw_signature
from connaisseur.domain.sigstore_bundle import SigstoreBundle
from connaisseur.domain.trust import PublicKey, load_certificates


class Format(StrEnum):
    """How a signature is stored (``with.signatureFormat``,
    docs/decisions/0040-cosign-signature-formats.md)."""

    CLASSIC = "classic"
    BUNDLE = "bundle"


@dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """What a signature says about the image: the digests it is about, the repository (the
    simple-signing payload only), and the in-toto statement (DSSE only)."""

    digests: tuple[str, ...]
    reference: str | None = None
    statement: Statement | None = field(default=None, repr=False)

    @property
    def predicate_type(self) -> str | None:
        return self.statement.predicate_type if self.statement else None


class Signed(ABC):
    """One signature over something about an image, in one of cosign's formats."""

    format: Format
    #: an attestation (an in-toto statement with a predicate), not an image signature
    attestation: bool = False
    #: the log entry must prove inclusion (Sigstore bundles from v0.2 on)
    needs_inclusion_proof: bool = False

    @abstractmethod
    def signature(self) -> bytes:
        """The raw signature. Raises: Rejection (``PAYLOAD``)."""

    @abstractmethod
    def verify(self, key: PublicKey, signature: bytes) -> None:
        """Check ``signature`` over what this format signs. Raises: InvalidSignature."""

    @abstractmethod
    def claims(self) -> Claims:
        """What the signed content claims. Raises: Rejection (``PAYLOAD``)."""

    @abstractmethod
    def certificate(self) -> x509.Certificate | None:
        """The signing certificate it carries, if any. Raises: Rejection (``PAYLOAD``)."""

    @abstractmethod
    def chain(self) -> list[x509.Certificate]:
        """Untrusted certificates to build the chain with. Raises: Rejection (``PAYLOAD``)."""

    @abstractmethod
    def log_entries(self) -> Sequence[RekorEntry]:
        """Transparency log entries it carries. Raises: Rejection (``TLOG``)."""

    @abstractmethod
    def logged(self, signature: bytes, key: PublicKey, cert: x509.Certificate | None) -> Logged:
        """What a log entry of this signature must record."""

    def timestamps(self) -> Sequence[bytes]:
        """DER RFC 3161 ``TimeStampResponse``s over the signature."""
        return ()

    @property
    def embedded_log_entry(self) -> bool:
        """It carries its log entries (else Rekor may be asked, classic signatures only)."""
        return True


# --- classic ----------------------------------------------------------------------------------


class _ClassicAnnotations(Signed):
    """Certificate, chain and Rekor bundle as cosign's layer annotations carry them."""

    format = Format.CLASSIC
    _certificate_pem: str | None
    _chain_pem: str | None
    _bundle: str | None

    def certificate(self) -> x509.Certificate | None:
        if not self._certificate_pem:
            return None
        return _certificates(self._certificate_pem, "signing certificate")[0]

    def chain(self) -> list[x509.Certificate]:
        return _certificates(self._chain_pem, "certificate chain") if self._chain_pem else []

    def log_entries(self) -> Sequence[RekorEntry]:
        if not self._bundle:
            return ()
        try:
            return (RekorEntry.from_bundle(self._bundle),)
        except VerificationError as e:
            raise Rejection(e.message, category=e.category, stage=Stage.TLOG) from e

    @property
    def embedded_log_entry(self) -> bool:
        return bool(self._bundle)


class ClassicSignature(_ClassicAnnotations):
    """A simple-signing layer (``.sig`` tag, or a classic referrer)."""

    def __init__(self, layer: SignatureLayer) -> None:
        self.layer = layer
        self._certificate_pem, self._chain_pem = layer.certificate, layer.chain
        self._bundle = layer.bundle

    def signature(self) -> bytes:
        return _base64(self.layer.signature, "signature")

    def verify(self, key: PublicKey, signature: bytes) -> None:
        verify_raw_signature(key, signature, self.layer.payload)

    def claims(self) -> Claims:
        try:
            payload = SimpleSigningPayload.parse(self.layer.payload)
        except VerificationError as e:
            raise Rejection(e.message, category=e.category, stage=Stage.PAYLOAD) from e
        return Claims(digests=(payload.digest,), reference=payload.docker_reference)

    def logged(self, signature: bytes, key: PublicKey, cert: x509.Certificate | None) -> Logged:
        return Logged(
            signature=signature,
            signer_key=key,
            signer_cert=cert,
            data_sha256=hashlib.sha256(self.layer.payload).digest(),
        )


class ClassicAttestation(_ClassicAnnotations):
    """A DSSE layer of an ``.att`` manifest."""

    attestation = True

    def __init__(self, layer: AttestationLayer) -> None:
        self.layer = layer
        self._certificate_pem, self._chain_pem = layer.certificate, layer.chain
        self._bundle = layer.bundle

    @cached_property
    def _envelope(self) -> DsseEnvelope:
        try:
            return DsseEnvelope.parse(self.layer.envelope)
        except VerificationError as e:
            raise Rejection(e.message, category=e.category, stage=Stage.PAYLOAD) from e

    def signature(self) -> bytes:
        return self._envelope.signatures[0]

    def verify(self, key: PublicKey, signature: bytes) -> None:
        verify_raw_signature(key, signature, self._envelope.pae())

    def claims(self) -> Claims:
        return _statement_claims(self._envelope)

    def logged(self, signature: bytes, key: PublicKey, cert: x509.Certificate | None) -> Logged:
        return Logged(
            signature=signature,
            signer_key=key,
            signer_cert=cert,
            payload_sha256=hashlib.sha256(self._envelope.payload).digest(),
            envelope_sha256=hashlib.sha256(self.layer.envelope).digest(),
        )


# --- Sigstore bundles -------------------------------------------------------------------------


class BundleSigned(Signed):
    """A Sigstore bundle stored as a referrer of the image."""

    format = Format.BUNDLE

    def __init__(self, bundle: SigstoreBundle) -> None:
        self.bundle = bundle
        self.needs_inclusion_proof = bundle.needs_inclusion_proof
        envelope = bundle.envelope
        self.attestation = envelope is not None and _predicate_type(envelope) not in (
            None,
            COSIGN_SIGN_PREDICATE,
        )

    def signature(self) -> bytes:
        return self.bundle.signature

    def verify(self, key: PublicKey, signature: bytes) -> None:
        if self.bundle.envelope is not None:
            verify_raw_signature(key, signature, self.bundle.envelope.pae())
            return
        assert self.bundle.message is not None  # noqa: S101 - the bundle holds one of the two
        _verify_prehashed(key, signature, self.bundle.message.digest)

    def claims(self) -> Claims:
        if self.bundle.envelope is not None:
            return _statement_claims(self.bundle.envelope)
        assert self.bundle.message is not None  # noqa: S101 - the bundle holds one of the two
        return Claims(digests=("sha256:" + self.bundle.message.digest.hex(),))

    def certificate(self) -> x509.Certificate | None:
        return self.bundle.certificates[0] if self.bundle.certificates else None

    def chain(self) -> list[x509.Certificate]:
        return list(self.bundle.certificates[1:])

    def log_entries(self) -> Sequence[RekorEntry]:
        return self.bundle.log_entries

    def timestamps(self) -> Sequence[bytes]:
        return self.bundle.timestamps

    def logged(self, signature: bytes, key: PublicKey, cert: x509.Certificate | None) -> Logged:
        envelope, message = self.bundle.envelope, self.bundle.message
        return Logged(
            signature=signature,
            signer_key=key,
            signer_cert=cert,
            data_sha256=message.digest if message else None,
            payload_sha256=hashlib.sha256(envelope.payload).digest() if envelope else None,
        )


def _predicate_type(envelope: DsseEnvelope) -> str | None:
    try:
        return Statement.parse(envelope).predicate_type
    except VerificationError:
        return None  # judged (and rejected) as a signature, at the payload step


def _statement_claims(envelope: DsseEnvelope) -> Claims:
    try:
        statement = Statement.parse(envelope)
    except VerificationError as e:
        raise Rejection(e.message, category=e.category, stage=Stage.PAYLOAD) from e
    return Claims(digests=tuple(d for _, d in statement.subjects), statement=statement)


def _verify_prehashed(key: PublicKey, signature: bytes, digest: bytes) -> None:
    """A signature over an artefact known only by its SHA-256 digest (ECDSA, RSA PKCS#1 v1.5;
    Ed25519 signs the message itself, which a bundle does not carry)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, digest, PKCS1v15(), Prehashed(hashes.SHA256()))
    else:
        raise InvalidSignature


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Rejection(
            f"{what} is not base64", category=Category.MALFORMED_TRUST_DATA, stage=Stage.PAYLOAD
        ) from e


def _certificates(pem: str, what: str) -> list[x509.Certificate]:
    try:
        return load_certificates(pem)
    except TrustRootError as e:
        raise Rejection(
            f"unparsable {what}", category=Category.MALFORMED_TRUST_DATA, stage=Stage.PAYLOAD
        ) from e
