"""Trust roots: the pinned keys, certificates and keyless identities a validator trusts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from connaisseur.domain.errors import Category, TrustRootError

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
#: What cryptography raises for a certificate or key it cannot use: ``ValueError`` for malformed
#: DER or a point off its curve, ``InvalidVersion`` (not a ValueError) for an unknown X.509
#: version, ``UnsupportedAlgorithm`` for a key type or curve it does not implement. Attacker
#: material (a registry's certificate, a Notary key, a TSA's token) can be any of them.
UNUSABLE = (ValueError, x509.InvalidVersion, UnsupportedAlgorithm)

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\s*([A-Za-z0-9+/=\s]*?)\s*-----END \1-----", re.DOTALL
)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeylessIdentity:
    """Who must have signed a keyless (Fulcio) signature; regexes are searched, not anchored.

    Built by the configuration loader, which guarantees exactly one issuer form and one subject
    form, and regexes that compile.
    """

    issuer: str | None = None
    subject: str | None = None
    issuer_regex: str | None = None
    subject_regex: str | None = None


@dataclass(frozen=True, slots=True)
class PemPublicKey:
    """A public key as configured (``pem``, which identifies it) and parsed (``key``)."""

    pem: str
    key: PublicKey = field(repr=False, compare=False)

    @classmethod
    def parse(cls, pem: str) -> PemPublicKey:
        """Parse ``pem`` (see :func:`load_public_key`).

        Raises:
            TrustRootError: not one PEM public key of a supported type (invalid_key).
        """
        return cls(pem, load_public_key(pem))


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM certificates as configured (``pem``, which identifies them) and parsed."""

    pem: str
    certificates: tuple[x509.Certificate, ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, pem: str) -> Certificates:
        """Parse ``pem`` (see :func:`load_certificates`).

        Raises:
            TrustRootError: not PEM certificates (invalid_key).
        """
        return cls(pem, tuple(load_certificates(pem)))


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesKeyRef:
    """``k8s://<namespace>/<secret>``: a ``cosign.pub`` in a Kubernetes secret."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustRoot:
    """A named anchor of trust, parsed when the configuration loads: a public key or a key
    reference, certificates (+ TSA certificates), or a keyless identity."""

    name: str
    key: PemPublicKey | None = None
    key_ref: KubernetesKeyRef | None = None
    cert: Certificates | None = None
    ts_cert: Certificates | None = None
    keyless: KeylessIdentity | None = None
    #: Notation only: the trust store type of ``cert`` (``None`` is ``ca``; ``signingAuthority``
    #: must be configured explicitly, see docs/decisions/0025-notation-signing-authority.md).
    store_type: str | None = None


def select_trust_roots(
    roots: Sequence[TrustRoot], refs: Sequence[str | None], *, use_default: bool = True
) -> tuple[TrustRoot, ...]:
    """The one trust-root selection of every validator, as Connaisseur v3 resolves a rule's
    ``trustRoot`` (and cosign's ``required``): ``*`` alone is every root; no reference (or
    only empty ones) is ``default`` when ``use_default``; otherwise the roots named, each once
    (the first root of a name wins).

    Raises:
        TrustRootError: a name is unknown, no root is defined, or there is no reference and
            ``use_default`` is false.
    """
    names = [r for r in refs if r]
    if not names:
        if not use_default:
            raise TrustRootError("no trust root references given")
        names = ["default"]
    if names == ["*"]:
        if not roots:
            raise TrustRootError("no trust roots are defined")
        return tuple(roots)
    by_name = {root.name: root for root in reversed(roots)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise TrustRootError(f"unable to find trust root {', '.join(missing)}")
    return tuple(by_name[n] for n in dict.fromkeys(names))


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The trust roots a rule consults and how many distinct signers must vouch (D3,
    docs/decisions/0003-thresholds-count-signers.md): ``threshold`` 0 means any one."""

    roots: tuple[TrustRoot, ...]
    threshold: int = 0
    required: tuple[str, ...] = ()
    #: evidence the rule needs besides signatures, each fulfilled by a candidate of its own
    #: (cosign's ``with.attestations``: one predicate type each)
    requirements: tuple[str, ...] = ()

    @property
    def names(self) -> str:
        """For messages: ``default, other`` (every consulted root, in order)."""
        return ", ".join(dict.fromkeys(root.name for root in self.roots))


def select_signers(
    roots: Sequence[TrustRoot],
    trust_root: str | None,
    threshold: int | None = None,
    required: Sequence[str] = (),
) -> Selection:
    """The roots and signer count for a rule's ``trustRoot``, ``threshold`` and ``required``:
    a named (or default) root needs any one signature, and the ``required`` roots too; ``*``
    needs ``threshold`` distinct signers (all roots when unset, unless roots are required),
    consulting only the required roots when they alone can meet it.

    Raises:
        TrustRootError: a named or required trust root does not exist.
    """
    k = threshold or 0
    if trust_root != "*":
        chosen = select_trust_roots(roots, [trust_root])
        if required:
            select_trust_roots(roots, list(required), use_default=False)
        return Selection(roots=chosen, required=tuple(required))
    if required and k <= len(required):
        chosen = select_trust_roots(roots, list(required), use_default=False)
    else:
        chosen = select_trust_roots(roots, ["*"], use_default=False)
        if required:
            select_trust_roots(roots, list(required), use_default=False)
    effective = k if k > 0 else (0 if required else len({root.name for root in chosen}))
    return Selection(roots=chosen, threshold=effective, required=tuple(required))


def duplicate_names(roots: Sequence[TrustRoot]) -> list[str]:
    """Names given to more than one trust root, in order: such a configuration could let one
    signer count twice (docs/decisions/0003-thresholds-count-signers.md), so it is refused."""
    seen: set[str] = set()
    twice: list[str] = []
    for root in roots:
        if root.name in seen and root.name not in twice:
            twice.append(root.name)
        seen.add(root.name)
    return twice


class PemBlock(NamedTuple):
    """One PEM block: its label (``PUBLIC KEY``, ``CERTIFICATE``) and its DER bytes."""

    label: str
    der: bytes


def pem_blocks(text: str) -> list[PemBlock]:
    """The PEM blocks of ``text``; any other non-blank text is an error.

    Raises:
        TrustRootError: not PEM, or extraneous characters around the blocks (invalid_key).
    """
    import base64

    blocks: list[PemBlock] = []
    pos = 0
    for m in _PEM_BLOCK.finditer(text):
        if text[pos : m.start()].strip():
            break
        try:
            der = base64.b64decode("".join(m.group(2).split()), validate=True)
        except ValueError as e:  # binascii.Error, or text that is not ASCII
            raise TrustRootError(
                "PEM block is not valid base64", category=Category.INVALID_KEY
            ) from e
        blocks.append(PemBlock(m.group(1), der))
        pos = m.end()
    if not blocks or text[pos:].strip():
        raise TrustRootError(
            "key material must be PEM without extraneous characters", category=Category.INVALID_KEY
        )
    return blocks


def certificate_key(cert: x509.Certificate) -> PublicKey | None:
    """The certificate's public key if it is one we verify with (ECDSA, RSA, Ed25519); ``None``
    for another type or a key cryptography cannot load."""
    try:
        key = cert.public_key()
    except UNUSABLE:
        return None
    if isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    return None


def load_public_key(pem: str) -> PublicKey:
    """Parse one PEM ``PUBLIC KEY`` (SPKI): ECDSA, RSA or Ed25519.

    Raises:
        TrustRootError: not a single PEM public key of a supported type (invalid_key).
    """
    blocks = pem_blocks(pem)
    if len(blocks) != 1 or blocks[0].label != "PUBLIC KEY":
        raise TrustRootError(
            "provide exactly one PEM encoded public key", category=Category.INVALID_KEY
        )
    try:
        key = serialization.load_der_public_key(blocks[0].der)
    except UNUSABLE as e:
        raise TrustRootError("error parsing public key", category=Category.INVALID_KEY) from e
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise TrustRootError("unsupported public key type", category=Category.INVALID_KEY)
    return key


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Parse one or more PEM certificates.

    Raises:
        TrustRootError: not PEM certificates (invalid_key).
    """
    certs = []
    for label, der in pem_blocks(pem):
        if label != "CERTIFICATE":
            raise TrustRootError(
                f"expected a CERTIFICATE, got {label}", category=Category.INVALID_KEY
            )
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except UNUSABLE as e:
            raise TrustRootError(
                "failed to parse certificate", category=Category.INVALID_KEY
            ) from e
    return certs
