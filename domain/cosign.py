"""The cosign signature check: one signature layer against one trust root, step by step.

Everything here is synchronous and I/O-free; time is an argument. The application fetches the
signature manifest, blobs, keys and Rekor entries and hands them in; the layout is read in
``domain/cosign_layout.py``, the transparency evidence and certificates are checked by
``domain/rekor.py`` and ``domain/fulcio.py``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from connaisseur.domain.cosign_layout import SignatureLayer, SimpleSigningPayload
from connaisseur.domain.errors import (
    Category,
    InvalidReferenceError,
    Rejection,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.fulcio import (
    certificate_identity,
    identity_matches,
    verify_chain,
    verify_sct,
)
from connaisseur.domain.image import ImageReference
from connaisseur.domain.rekor import RekorEntry, tlog_error, verify_log_entry
from connaisseur.domain.signers import Judgement, Vouch
from connaisseur.domain.sigstore import Stage, TransparencyMaterial, verify_raw_signature
from connaisseur.domain.trust import (
    PublicKey,
    TrustRoot,
    certificate_key,
    load_certificates,
)


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
        who = certificate_identity(cert)
        return b"keyless\0" + who.issuer.encode() + b"\0" + who.subject.encode()
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
        public = certificate_key(cert)
        if public is not None:
            return public
        raise _unverified("unsupported certificate key type")
    if key is None:
        raise _unverified(f"trust root {root.name} has no key")
    return key


def _leaf_certificate(layer: SignatureLayer) -> x509.Certificate:
    if not layer.certificate:
        raise _unverified("keyless signature without certificate")
    return _certificates(layer.certificate, "signing certificate")[0]


def _chain(layer: SignatureLayer) -> list[x509.Certificate]:
    return _certificates(layer.chain, "certificate chain") if layer.chain else []


def _certificates(pem: str, what: str) -> list[x509.Certificate]:
    try:
        return load_certificates(pem)
    except TrustRootError as e:
        raise Rejection(
            f"unparsable {what}", category=Category.MALFORMED_TRUST_DATA, stage=Stage.PAYLOAD
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
        raise tlog_error("the signature has no transparency log entry")
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
        raise _unverified(f"signature does not verify with {who}") from e


def _unverified(reason: str) -> Rejection:
    """The rejection of a signature that cannot be checked, or does not verify, with the key."""
    return Rejection(reason, category=Category.SIGNATURE_INVALID, stage=Stage.SIGNATURE)
