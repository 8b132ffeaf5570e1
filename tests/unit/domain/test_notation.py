"""Notation envelope verification with a PKI generated per session."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from connaisseur.domain.errors import (
    Category,
    ConfigError,
    Rejection,
    TrustRootError,
)
from connaisseur.domain.notation import (
    NotationResult,
    RevocationStatus,
    no_signature,
    verify_envelope,
)
from connaisseur.domain.notation_envelope import (
    MEDIA_TYPE_COSE,
    MEDIA_TYPE_JWS,
    Step,
    Target,
    parse_envelope,
)
from connaisseur.domain.notation_policy import NotationPolicy, NotationTrustStore, StoreType
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.trust import TrustRoot, select_trust_roots
from tests.support.notation_signing import (
    DAY,
    REAL_NOW,
    Signer,
    issue,
    make_ca,
    openssl_available,
    openssl_stamper,
    sign_cose,
    sign_jws,
    target,
)
from tests.support.settings import trust_root, validator_settings

IMAGE = "registry.example/app/web:1.0"
DIGEST = "sha256:" + "ab" * 32
SIZE = 1234
TARGET = Target(digest=DIGEST, size=SIZE)
PAYLOAD = target(DIGEST, SIZE)
NOW = REAL_NOW + DAY

needs_openssl = pytest.mark.skipif(not openssl_available(), reason="openssl CLI not installed")


@dataclass
class Pki:
    root: Signer
    other_root: Signer
    leaf: Signer
    rsa_leaf: Signer
    expired_leaf: Signer
    short_leaf: Signer  # valid one hour either side of REAL_NOW
    tsa_root: Signer
    tsa: Signer


@pytest.fixture(scope="session")
def pki() -> Pki:
    root, other, tsa_root = make_ca("root"), make_ca("other root"), make_ca("tsa root")
    hour = DAY / 24
    return Pki(
        root=root,
        other_root=other,
        leaf=issue(root, "signer"),
        rsa_leaf=issue(root, "rsa signer", kind="rsa"),
        expired_leaf=issue(root, "old signer", start=REAL_NOW - 20 * DAY, end=REAL_NOW - 2 * DAY),
        short_leaf=issue(root, "short signer", start=REAL_NOW - hour, end=REAL_NOW + hour),
        tsa_root=tsa_root,
        tsa=issue(tsa_root, "tsa", eku=ExtendedKeyUsageOID.TIME_STAMPING, end=REAL_NOW + 300 * DAY),
    )


def roots(pki: Pki, *, tsa: bool = False) -> list[TrustRoot]:
    ts_cert = {"tsCert": pki.tsa_root.pem()} if tsa else {}
    return [
        trust_root("notation", "default", cert=pki.root.pem(), **ts_cert),
        trust_root("notation", "other", cert=pki.other_root.pem()),
    ]


def verify(
    pki: Pki,
    blob: bytes,
    *,
    media_type: str = MEDIA_TYPE_JWS,
    now: datetime = NOW,
    tsa: bool = False,
    target_: Target = TARGET,
    revocation: RevocationStatus = RevocationStatus.UNCHECKED,
    trust_roots: Sequence[TrustRoot] | None = None,
    **options: str,
) -> NotationResult:
    configured = trust_roots or roots(pki, tsa=tsa)
    rule = RuleOptions(**options)  # type: ignore[arg-type]
    selected = select_trust_roots(configured, [rule.trust_root])
    policy = NotationPolicy.build("registry.example/app/web", rule, selected)
    return verify_envelope(
        parse_envelope(media_type, blob),
        target=target_,
        policy=policy,
        store=NotationTrustStore.from_roots(configured),
        now=now,
        revocation=lambda chain, at: revocation,
    )


def denial(pki: Pki, blob: bytes, **kwargs: object) -> Rejection:
    with pytest.raises(Rejection) as info:
        verify(pki, blob, **kwargs)  # type: ignore[arg-type]
    return info.value


# --- valid signatures ------------------------------------------------------------------


def test_jws_signed_by_a_chain_to_the_trust_root_is_trusted(pki: Pki) -> None:
    result = verify(pki, sign_jws(pki.leaf, PAYLOAD))
    assert result.evidence.digest == DIGEST
    assert result.evidence.signers == ("default",)
    assert result.logged == ()


def test_cose_envelope_verifies(pki: Pki) -> None:
    result = verify(pki, sign_cose(pki.leaf, PAYLOAD), media_type=MEDIA_TYPE_COSE)
    assert result.evidence.signers == ("default",)


def test_rsa_pss_signature_verifies(pki: Pki) -> None:
    assert verify(pki, sign_jws(pki.rsa_leaf, PAYLOAD)).evidence.digest == DIGEST


def test_wildcard_trust_root_accepts_any_configured_root(pki: Pki) -> None:
    result = verify(pki, sign_jws(pki.leaf, PAYLOAD), trust_root="*")
    assert result.evidence.signers == ("default",)


# --- authenticity ----------------------------------------------------------------------


def test_wrong_root_is_untrusted_in_strict_and_permissive(pki: Pki) -> None:
    blob = sign_jws(pki.leaf, PAYLOAD)
    for level in ("strict", "permissive"):
        error = denial(pki, blob, trust_root="other", verification_level=level)
        assert error.category is Category.SIGNATURE_INVALID
        assert error.stage is Step.AUTHENTICITY
        assert error.message == (
            "the Notation signature is not signed by a certificate that chains to the trust roots"
        )


def test_wrong_root_only_logged_in_audit(pki: Pki) -> None:
    result = verify(
        pki, sign_jws(pki.leaf, PAYLOAD), trust_root="other", verification_level="audit"
    )
    assert result.evidence.digest == DIGEST
    assert result.evidence.signers == ()
    assert result.logged[0].startswith("authenticity:")


def test_missing_trust_root_is_reported_before_verification(pki: Pki) -> None:
    with pytest.raises(TrustRootError) as info:
        verify(pki, sign_jws(pki.leaf, PAYLOAD), trust_root="missing")
    assert info.value.category is Category.TRUST_ROOT_NOT_FOUND


# --- integrity (enforced at every level) -----------------------------------------------


def _tamper_payload(blob: bytes) -> bytes:
    doc = json.loads(blob)
    forged = json.dumps(target("sha256:" + "cd" * 32, SIZE)).encode()
    doc["payload"] = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    return json.dumps(doc).encode()


@pytest.mark.parametrize("level", ["strict", "permissive", "audit"])
def test_tampered_payload_fails_at_every_level(pki: Pki, level: str) -> None:
    error = denial(pki, _tamper_payload(sign_jws(pki.leaf, PAYLOAD)), verification_level=level)
    assert error.category is Category.SIGNATURE_INVALID
    assert "does not verify" in error.message


def test_tampered_cose_signature_fails(pki: Pki) -> None:
    blob = bytearray(sign_cose(pki.leaf, PAYLOAD))
    blob[-1] ^= 0x01
    error = denial(pki, bytes(blob), media_type=MEDIA_TYPE_COSE)
    assert error.category is Category.SIGNATURE_INVALID


def test_unknown_critical_header_fails(pki: Pki) -> None:
    extra = {
        "io.cncf.notary.verificationPlugin": "x",
        "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.verificationPlugin"],
    }
    error = denial(pki, sign_jws(pki.leaf, PAYLOAD, extra=extra), verification_level="audit")
    assert "unsupported critical headers" in error.message


def test_algorithm_must_match_the_signing_key(pki: Pki) -> None:
    error = denial(pki, sign_jws(pki.leaf, PAYLOAD, extra={"alg": "ES384"}))
    assert "algorithm ES384" in error.message


def test_unparsable_envelope_is_malformed(pki: Pki) -> None:
    assert denial(pki, b"{not json").category is Category.MALFORMED_TRUST_DATA
    assert (
        denial(pki, b"\xa0", media_type=MEDIA_TYPE_COSE).category is Category.MALFORMED_TRUST_DATA
    )


def test_chain_that_does_not_link_fails(pki: Pki) -> None:
    broken = Signer(pki.leaf.key, [pki.leaf.cert, pki.other_root.cert])
    assert denial(pki, sign_jws(broken, PAYLOAD)).category is Category.SIGNATURE_INVALID


# --- the signed target -----------------------------------------------------------------


@pytest.mark.parametrize("level", ["strict", "permissive", "audit"])
def test_payload_for_another_digest_is_a_digest_mismatch(pki: Pki, level: str) -> None:
    other = target("sha256:" + "ef" * 32, SIZE)
    error = denial(pki, sign_jws(pki.leaf, other), verification_level=level)
    assert error.category is Category.DIGEST_MISMATCH
    assert error.stage is Step.TARGET
    assert error.message == (
        f"the Notation signature signs sha256:{'ef' * 32} (size {SIZE}), "
        f"not the admitted {DIGEST} (size {SIZE})"
    )


def test_payload_with_another_size_is_a_digest_mismatch(pki: Pki) -> None:
    error = denial(pki, sign_jws(pki.leaf, target(DIGEST, SIZE + 1)))
    assert error.category is Category.DIGEST_MISMATCH


# --- expiry without a timestamp ---------------------------------------------------------


def test_expired_leaf_is_expired_in_strict(pki: Pki) -> None:
    blob = sign_jws(pki.expired_leaf, PAYLOAD, signing_time=REAL_NOW - 10 * DAY)
    error = denial(pki, blob)
    assert error.category is Category.EXPIRED
    assert error.stage is Step.TIMESTAMP
    assert error.message.startswith(
        "the Notation signature fails the timestamp check: certificate CN=old signer is valid "
        "only from "
    )


@pytest.mark.parametrize("level", ["permissive", "audit"])
def test_expired_leaf_is_only_logged_below_strict(pki: Pki, level: str) -> None:
    blob = sign_jws(pki.expired_leaf, PAYLOAD, signing_time=REAL_NOW - 10 * DAY)
    result = verify(pki, blob, verification_level=level)
    assert result.logged
    assert result.logged[0].startswith("authenticTimestamp:")


def test_signing_time_outside_the_certificate_fails_integrity(pki: Pki) -> None:
    blob = sign_jws(pki.expired_leaf, PAYLOAD, signing_time=REAL_NOW)
    error = denial(pki, blob, verification_level="audit")
    assert "not valid at the signing time" in error.message


def test_signature_expiry_header(pki: Pki) -> None:
    blob = sign_jws(pki.leaf, PAYLOAD, expiry=REAL_NOW + DAY / 2)
    assert denial(pki, blob).category is Category.EXPIRED
    assert verify(pki, blob, verification_level="permissive").logged[0].startswith("expiry:")
    assert verify(pki, blob, now=REAL_NOW).logged == ()


# --- notary.x509.signingAuthority (docs/decisions/0025-notation-signing-authority.md) --------

SIGNING_AUTHORITY = "notary.x509.signingAuthority"


def authority_roots(pki: Pki, *, tsa: bool = False) -> list[TrustRoot]:
    ts_cert = {"tsCert": pki.tsa_root.pem()} if tsa else {}
    authority = {"cert": pki.root.pem(), "storeType": "signingAuthority", **ts_cert}
    return [trust_root("notation", "default", **authority)]


def test_notation_signing_authority_signature_is_refused_against_ca_trust_roots(pki: Pki) -> None:
    # Before: accepted against the ordinary (ca) root, and its own authenticSigningTime let an
    # expired leaf key back-date signatures past "valid now".
    blob = sign_jws(pki.short_leaf, PAYLOAD, scheme=SIGNING_AUTHORITY)
    for now in (REAL_NOW, REAL_NOW + 100 * DAY):
        for level in ("strict", "permissive"):
            error = denial(pki, blob, now=now, verification_level=level)
            assert error.category is Category.SIGNATURE_INVALID
            assert "storeType: signingAuthority" in error.message
            assert error.message.endswith("none of the trust roots is one")


def test_notation_signing_authority_cannot_skip_verify_timestamp_always(pki: Pki) -> None:
    # A tsa store with verifyTimestamp: always demands a countersignature; a self-claimed
    # authentic signing time is no substitute.
    blob = sign_jws(pki.short_leaf, PAYLOAD, scheme=SIGNING_AUTHORITY)
    error = denial(pki, blob, now=REAL_NOW + 100 * DAY, trust_roots=authority_roots(pki, tsa=True))
    assert "no timestamp countersignature" in error.message


def test_notation_signing_authority_time_claim_does_not_extend_the_certificate(pki: Pki) -> None:
    blob = sign_jws(pki.short_leaf, PAYLOAD, scheme=SIGNING_AUTHORITY)
    error = denial(pki, blob, now=REAL_NOW + 100 * DAY, trust_roots=authority_roots(pki))
    assert error.category is Category.EXPIRED


def test_notation_signing_authority_verifies_against_a_configured_signing_authority(
    pki: Pki,
) -> None:
    blob = sign_jws(pki.leaf, PAYLOAD, scheme=SIGNING_AUTHORITY)
    result = verify(pki, blob, trust_roots=authority_roots(pki))
    assert result.evidence.signers == ("default",)


@needs_openssl
def test_notation_signing_authority_outlives_its_certificate_only_with_a_timestamp(
    pki: Pki,
) -> None:
    blob = sign_jws(
        pki.short_leaf, PAYLOAD, scheme=SIGNING_AUTHORITY, stamp=openssl_stamper(pki.tsa)
    )
    result = verify(pki, blob, now=REAL_NOW + 100 * DAY, trust_roots=authority_roots(pki, tsa=True))
    assert result.evidence.signers == ("default",)


def test_notation_x509_signature_is_refused_by_a_signing_authority_root(pki: Pki) -> None:
    error = denial(pki, sign_jws(pki.leaf, PAYLOAD), trust_roots=authority_roots(pki))
    assert error.category is Category.SIGNATURE_INVALID
    assert "storeType: ca" in error.message


def test_notation_store_types_split_the_trust_store(pki: Pki) -> None:
    store = NotationTrustStore.from_roots([*authority_roots(pki), *roots(pki)[1:]])
    assert store.certificates(StoreType.SIGNING_AUTHORITY, "default") == (pki.root.cert,)
    assert store.certificates(StoreType.CA, "other") == (pki.other_root.cert,)
    with pytest.raises(TrustRootError):
        store.certificates(StoreType.CA, "default")


# --- RFC 3161 timestamps -------------------------------------------------------------------


@needs_openssl
def test_timestamp_keeps_a_signature_valid_after_certificate_expiry(pki: Pki) -> None:
    blob = sign_jws(pki.short_leaf, PAYLOAD, stamp=openssl_stamper(pki.tsa))
    assert verify(pki, blob, tsa=True).evidence.signers == ("default",)


@needs_openssl
def test_cose_timestamp_verifies(pki: Pki) -> None:
    blob = sign_cose(pki.short_leaf, PAYLOAD, stamp=openssl_stamper(pki.tsa))
    assert verify(pki, blob, media_type=MEDIA_TYPE_COSE, tsa=True).evidence.digest == DIGEST


@needs_openssl
def test_timestamp_after_certificate_expiry_is_expired(pki: Pki) -> None:
    late = issue(pki.root, "late", start=REAL_NOW - 5 * DAY, end=REAL_NOW - DAY)
    blob = sign_jws(late, PAYLOAD, signing_time=REAL_NOW - 2 * DAY, stamp=openssl_stamper(pki.tsa))
    error = denial(pki, blob, tsa=True)
    assert error.category is Category.EXPIRED
    assert "timestamp" in error.message


@needs_openssl
def test_timestamp_from_an_untrusted_tsa_is_invalid(pki: Pki) -> None:
    rogue = issue(make_ca("rogue tsa root"), "rogue", eku=ExtendedKeyUsageOID.TIME_STAMPING)
    blob = sign_jws(pki.short_leaf, PAYLOAD, stamp=openssl_stamper(rogue))
    error = denial(pki, blob, tsa=True)
    assert error.category is Category.SIGNATURE_INVALID
    assert "trusted timestamp authority" in error.message


@needs_openssl
def test_timestamp_of_another_signature_is_invalid(pki: Pki) -> None:
    stamp = openssl_stamper(pki.tsa)
    blob = sign_jws(pki.short_leaf, PAYLOAD, stamp=lambda sig: stamp(sig + b"x"))
    assert "does not countersign" in denial(pki, blob, tsa=True).message


def test_tsa_store_without_timestamp_fails_with_always(pki: Pki) -> None:
    error = denial(pki, sign_jws(pki.leaf, PAYLOAD), tsa=True)
    assert error.category is Category.SIGNATURE_INVALID
    assert "no timestamp countersignature" in error.message


def test_after_cert_expiry_skips_the_timestamp_while_the_chain_is_valid(pki: Pki) -> None:
    blob = sign_jws(pki.leaf, PAYLOAD)
    assert verify(pki, blob, tsa=True, verify_timestamp="afterCertExpiry").logged == ()


def test_after_cert_expiry_requires_the_timestamp_once_expired(pki: Pki) -> None:
    blob = sign_jws(pki.expired_leaf, PAYLOAD, signing_time=REAL_NOW - 10 * DAY)
    error = denial(pki, blob, tsa=True, verify_timestamp="afterCertExpiry")
    assert "no timestamp countersignature" in error.message


# --- revocation hook -----------------------------------------------------------------------


def test_revoked_chain_fails_in_strict_and_is_logged_in_permissive(pki: Pki) -> None:
    blob = sign_jws(pki.leaf, PAYLOAD)
    assert (
        denial(pki, blob, revocation=RevocationStatus.REVOKED).category
        is Category.SIGNATURE_INVALID
    )
    result = verify(pki, blob, revocation=RevocationStatus.REVOKED, verification_level="permissive")
    assert result.logged[0].startswith("revocation:")


def test_default_revocation_hook_reports_unchecked(pki: Pki) -> None:
    assert verify(pki, sign_jws(pki.leaf, PAYLOAD)).revocation is RevocationStatus.UNCHECKED


# --- trust store, policy and error selection -----------------------------------------------


@pytest.mark.parametrize(
    ("anchors", "problem"),
    [
        ([{"key": "PUBLIC KEY"}], "validators[0].trustRoots[0].cert: no certificate provided"),
        ([{"cert": "not pem"}], "validators[0].trustRoots[0].cert: invalid certificate"),
        ([], "validators[0].trustRoots: no trust roots provided"),
    ],
)
def test_missing_and_invalid_certificates_are_refused_when_the_configuration_loads(
    pki: Pki, anchors: list[dict[str, str]], problem: str
) -> None:
    key = pki.root.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    written = [
        {"name": "default", **{k: key.decode() if v == "PUBLIC KEY" else v for k, v in a.items()}}
        for a in anchors
    ]
    with pytest.raises(ConfigError) as info:
        validator_settings({"name": "n", "type": "notation", "trustRoots": written})
    assert info.value.problems[0].startswith(problem), info.value.problems


def test_trust_store_holds_the_parsed_certificates_by_store(pki: Pki) -> None:
    store = NotationTrustStore.from_roots(roots(pki, tsa=True))
    assert store.certificates(StoreType.TSA, "default") == (pki.tsa_root.cert,)
    with pytest.raises(TrustRootError):
        store.certificates(StoreType.TSA, "other")


def test_no_signature_names_the_digest() -> None:
    error = no_signature(DIGEST)
    assert error.category is Category.NO_TRUST_DATA
    assert error.message == f"no Notation signature is associated with {DIGEST}"


def test_certificate_in_chain_must_match_trust_store_exactly(pki: Pki) -> None:
    # A look-alike root (same name, other key) must not be accepted.
    impostor = make_ca("root")
    signer = issue(impostor, "signer")
    assert denial(pki, sign_jws(signer, PAYLOAD)).category is Category.SIGNATURE_INVALID
    assert isinstance(pki.root.cert, x509.Certificate)
