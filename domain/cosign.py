"""The cosign signature check: one signature against one trust root, step by step, in any
of cosign's formats (classic simple signing, classic DSSE attestations, Sigstore bundles).

Everything here is synchronous and I/O-free; time is an argument. The application fetches the
signature manifests, referrers, blobs, keys and Rekor entries and hands them in; what each
format signed is read by ``domain/cosign_signed.py``, the transparency evidence and certificates
are checked by ``domain/rekor.py`` and ``domain/fulcio.py``, timestamps by
``domain/rfc3161.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from connaisseur.domain.cosign_signed import Claims, Signed
from connaisseur.domain.dsse import COSIGN_SIGN_PREDICATE
from connaisseur.domain.errors import (
    Category,
    InvalidReferenceError,
    Rejection,
)
from connaisseur.domain.fulcio import (
    certificate_identity,
    identity_matches,
    verify_chain,
    verify_sct,
)
from connaisseur.domain.image import ImageReference
from connaisseur.domain.rekor import RekorEntry, tlog_error, verify_log_entry
from connaisseur.domain.rfc3161 import TimestampError, timestamp_token, verify_timestamp_token
from connaisseur.domain.signers import Judgement, Vouch
from connaisseur.domain.sigstore import Stage, TransparencyMaterial
from connaisseur.domain.trust import PublicKey, TrustRoot, certificate_key


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions:
    """Per-rule switches and what the signature must claim (D2)."""

    image: ImageReference
    digest: str
    verify_tlog: bool = True
    verify_sct: bool = True
    ignore_reference: bool = False


def check_signature(
    signed: Signed,
    root: TrustRoot,
    key: PublicKey | None,
    material: TransparencyMaterial,
    options: CheckOptions,
    *,
    log_entries: Sequence[RekorEntry] = (),
    now: datetime,
) -> bytes:
    """Verify one signature (or attestation) for one trust root; return who signed: the SPKI
    of a key, or the OIDC issuer and subject of a keyless certificate (its key is thrown away
    after one signature, so two signatures by one identity are one signer, D3 — in whichever
    format each is stored).

    Steps (D2, docs/decisions/0002-cosign-claims-are-checked.md, and for Sigstore bundles
    docs/decisions/0041-sigstore-bundles.md): 1 signature over what the format signs (the
    simple-signing payload, a DSSE envelope's PAE, a bundle's message digest) with the key or
    the certificate's key; 2 the signed content parses; 3 transparency log (entries carried by
    the signature, or looked up for classic ones): inclusion promise and/or proof, and a body
    recording this signature — and RFC 3161 timestamps over the signature; 4 keyless: chain at
    every signed time (integrated time, timestamps; now when there is none); 5 identity; 6 SCT;
    7 claims: the admitted digest (and for simple signing, the repository).

    Raises:
        Rejection: the first failing step, with its stage.
    """
    # Step 1: signature over the signed bytes (nothing they say is read before).
    signature = signed.signature()
    cert = _leaf_certificate(signed) if root.keyless is not None else None
    signer_key = _signer_key(root, key, cert)
    try:
        signed.verify(signer_key, signature)
    except InvalidSignature as e:
        raise _unverified(f"signature does not verify with trust root {root.name}") from e
    # Step 2: the signed content.
    claims = signed.claims()
    if not signed.attestation and claims.statement is not None:
        _signature_statement(claims)
    # Step 3: transparency log and timestamps: the times the signature provably existed.
    stamped = _verified_timestamps(signed, material, signature)
    logged: list[datetime] = []
    if options.verify_tlog:
        logged = _verified_log_times(
            signed, material, signature, signer_key, cert, log_entries, stamped or [now]
        )
    # Steps 4-6: keyless certificate.
    if cert is not None and root.keyless is not None:
        chain: list[x509.Certificate] = []
        for at in [*logged, *stamped] or [now]:
            chain = verify_chain(cert, signed.chain(), material, at)
        if not identity_matches(root.keyless, *certificate_identity(cert)):
            raise Rejection(
                "none of the expected identities matched",
                category=Category.IDENTITY_MISMATCH,
                stage=Stage.IDENTITY,
            )
        if options.verify_sct:
            verify_sct(cert, chain[0], material)
    # Step 7: claims (D2).
    _check_claims(signed, claims, options)
    if cert is not None:
        who = certificate_identity(cert)
        return b"keyless\0" + who.issuer.encode() + b"\0" + who.subject.encode()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return signer_key.public_bytes(serialization.Encoding.DER, spki)


def judge_signature(
    signed: Signed,
    roots: Sequence[TrustRoot],
    keys: Mapping[str, PublicKey],
    material: TransparencyMaterial,
    options: CheckOptions,
    *,
    log_entries: Sequence[RekorEntry] = (),
    now: datetime,
) -> Judgement:
    """One signature against every selected trust root (see :func:`check_signature`): the
    roots it satisfies, with who signed, and why it satisfies none of the others."""
    vouches: list[Vouch] = []
    refused: list[Rejection] = []
    for root in roots:
        try:
            who = check_signature(
                signed,
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
    signed: Signed,
    root: TrustRoot,
    key: PublicKey | None,
    material: TransparencyMaterial,
    options: CheckOptions,
    *,
    now: datetime,
) -> bool:
    """Whether a classic signature without a log entry of its own passes every check that
    needs no transparency log for ``root``: only then is Rekor asked about it, so a registry
    listing forged signatures cannot make this process query Rekor for each. A keyless
    certificate's chain is checked at its own issuance time here (the Rekor entry proves the
    signing time later)."""
    if signed.embedded_log_entry:
        return False
    at = now
    if root.keyless is not None:
        try:
            at = _leaf_certificate(signed).not_valid_before_utc
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
        check_signature(signed, root, key, material, offline, now=at)
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


def _leaf_certificate(signed: Signed) -> x509.Certificate:
    cert = signed.certificate()
    if cert is None:
        raise _unverified("keyless signature without certificate")
    return cert


def _unverified(reason: str) -> Rejection:
    """The rejection of a signature that cannot be checked, or does not verify, with the key."""
    return Rejection(reason, category=Category.SIGNATURE_INVALID, stage=Stage.SIGNATURE)


def _verified_timestamps(
    signed: Signed, material: TransparencyMaterial, signature: bytes
) -> list[datetime]:
    """The times RFC 3161 timestamps over the signature vouch for, each by a timestamp
    authority of the trust material inside its ``validFor`` window. One that does not verify
    rejects the signature: a timestamp is never silently ignored."""
    return [_verified_timestamp(r, signature, material) for r in signed.timestamps()]


def _verified_timestamp(
    response: bytes, signature: bytes, material: TransparencyMaterial
) -> datetime:
    try:
        token = timestamp_token(response)
    except TimestampError as e:
        raise tlog_error(f"RFC 3161 timestamp: {e.message}") from e
    failure = "no timestamp authority is trusted"
    for authority in material.timestamp_authorities:
        try:
            info = verify_timestamp_token(token, signature, authority.certificates)
        except TimestampError as e:
            failure = e.message
            continue
        if authority.validity.contains(info.gen_time):
            return info.gen_time
        failure = (
            f"stamped at {info.gen_time:%Y-%m-%dT%H:%M:%SZ}, outside its authority's "
            f"validity ({authority.validity.describe()})"
        )
    raise tlog_error(f"RFC 3161 timestamp: {failure}")


def _verified_log_times(
    signed: Signed,
    material: TransparencyMaterial,
    signature: bytes,
    signer_key: PublicKey,
    cert: x509.Certificate | None,
    looked_up: Sequence[RekorEntry],
    signed_at: Sequence[datetime],
) -> list[datetime]:
    """The integrated time of the first entry that verifies (none for an entry that proves
    inclusion only: the timestamps then say when)."""
    entries = list(signed.log_entries()) if signed.embedded_log_entry else list(looked_up)
    if not entries:
        raise tlog_error("the signature has no transparency log entry")
    logged = signed.logged(signature, signer_key, cert)
    failures: list[Rejection] = []
    for entry in entries:
        try:
            evidence = verify_log_entry(
                entry,
                material,
                logged,
                require_proof=signed.needs_inclusion_proof,
                signed_at=signed_at,
            )
        except Rejection as e:
            failures.append(e)
            continue
        return [evidence.integrated_time] if evidence.integrated_time else []
    raise failures[-1]


def _check_claims(signed: Signed, claims: Claims, options: CheckOptions) -> None:
    wanted = options.digest
    if signed.attestation:
        if wanted not in claims.digests:
            raise _digest_mismatch("the attestation is about", claims.digests, wanted)
        return
    if not claims.digests or any(d != wanted for d in claims.digests):
        raise _digest_mismatch("the signature is for", claims.digests, wanted)
    if claims.reference is None or options.ignore_reference:
        return  # a bundle signs the digest alone (docs/decisions/0041-sigstore-bundles.md)
    try:
        signed_repository = ImageReference.parse(claims.reference).context
    except InvalidReferenceError:
        signed_repository = claims.reference
    if signed_repository != options.image.context:
        raise Rejection(
            f"the signature names repository {signed_repository}, not {options.image.context}"
            " (with.ignoreReference allows copied signatures)",
            category=Category.REFERENCE_NOT_FOUND,
            stage=Stage.CLAIMS,
        )


def _signature_statement(claims: Claims) -> None:
    if claims.predicate_type != COSIGN_SIGN_PREDICATE:
        raise Rejection(
            f"the statement is an attestation ({str(claims.predicate_type)[:200]}), "
            "not an image signature",
            category=Category.MALFORMED_TRUST_DATA,
            stage=Stage.PAYLOAD,
        )


def _digest_mismatch(what: str, digests: Sequence[str], wanted: str) -> Rejection:
    named = ", ".join(digests[:3]) + (", …" if len(digests) > 3 else "") or "no digest"
    return Rejection(
        f"{what} digest {named}, not {wanted}",
        category=Category.DIGEST_MISMATCH,
        stage=Stage.CLAIMS,
    )
