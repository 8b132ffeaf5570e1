"""Sigstore bundles as OCI 1.1 referrers, judged by the cosign validator over a fake registry:
the negative cases the real cosign will not write (docs/decisions/0041-sigstore-bundles.md) —
tampered subjects and payloads, wrong keys and identities, broken inclusion proofs and
checkpoints, entries recording something else, retired log keys, expired certificates with and
without RFC 3161 timestamps, certificates without SCTs — and what holds across formats (D3,
signatureFormat, what ``verify --explain`` lists).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.application.cosign import NOT_COUNTED, CosignValidator
from connaisseur.application.cosign_discovery import MAX_REFERRERS
from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import Finding
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.sigstore import (
    TimestampAuthority,
    TransparencyMaterial,
    Validity,
    keyring,
)
from connaisseur.domain.sigstore_bundle import BUNDLE_V01, BUNDLE_V02
from connaisseur.domain.trust import PemPublicKey
from connaisseur.domain.verdict import TrustedDigest
from tests.support.cosign import Signer, sign_layout
from tests.support.cosign_validator import IMAGE, REPOSITORY, push_image, push_signatures, signed
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import DEFAULT_NOW, FakeClock, FakeTransparencyLog
from tests.support.fulcio import FakeFulcio
from tests.support.notation_signing import REAL_NOW
from tests.support.notation_signing import Signer as TsaSigner  # a key with its certificate chain
from tests.support.settings import validator_settings
from tests.support.sigstore_bundles import (
    MerkleRekor,
    Signing,
    dsse_bundle,
    message_bundle,
    push_bundle,
    statement,
)
from tests.support.tsa import as_response, authority, stamping_leaf, token_by_openssl_ts

NO_TLOG = RuleOptions(verify_in_transparency_log=False)
ISSUER = "https://token.actions.githubusercontent.com"
EMAIL = "builder@acme.example"
SLSA = "https://slsa.dev/provenance/v1"


def validator(
    reg: FakeRegistry,
    roots: Sequence[Mapping[str, Any]],
    material: TransparencyMaterial | None = None,
    now: datetime = DEFAULT_NOW,
) -> tuple[CosignValidator, FakeClock]:
    settings = validator_settings({"name": "cosign", "type": "cosign", "trustRoots": list(roots)})
    clock = FakeClock(now)
    v = CosignValidator(settings, reg, FakeTransparencyLog(), clock, public_good=material)
    return v, clock


async def run(
    v: CosignValidator, clock: FakeClock, options: RuleOptions = NO_TLOG
) -> TrustedDigest:
    return await v.validate(IMAGE, options, Deadline.after(clock, 5))


async def denied(
    v: CosignValidator, clock: FakeClock, options: RuleOptions = NO_TLOG
) -> ConnaisseurError:
    with pytest.raises(ConnaisseurError) as err:
        await run(v, clock, options)
    return err.value


def keyed(signer: Signer, name: str = "default") -> dict[str, str]:
    return {"name": name, "key": signer.public_pem}


def rekor_material(rekor: MerkleRekor, **more: Any) -> TransparencyMaterial:
    return TransparencyMaterial(rekor_keys=keyring(PemPublicKey.parse(rekor.public_pem)), **more)


# ------------------------------------------------------------------ key, no transparency log


async def test_a_key_bundle_verifies(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    v, clock = validator(reg, [keyed(key)])
    assert (await run(v, clock)).digest == digest


async def test_a_bundle_without_a_log_entry_needs_the_rule_to_waive_the_log(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    v, clock = validator(reg, [keyed(key)])
    err = await denied(v, clock, RuleOptions())
    assert err.category is Category.SIGNATURE_INVALID
    assert "has no transparency log entry" in err.message


async def test_a_statement_about_another_digest_is_refused(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    other_digest = "sha256:" + "ab" * 32
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(other_digest)))
    v, clock = validator(reg, [keyed(key)])
    err = await denied(v, clock)
    assert err.category is Category.DIGEST_MISMATCH
    assert other_digest in err.message


async def test_a_statement_naming_a_second_subject_is_refused(key: Signer) -> None:
    # D2: a signature is for exactly the admitted digest, not for it among others.
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    doc = json.loads(statement(digest))
    doc["subject"].append({"digest": {"sha256": "cd" * 32}})
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), json.dumps(doc).encode()))
    v, clock = validator(reg, [keyed(key)])
    assert (await denied(v, clock)).category is Category.DIGEST_MISMATCH


async def test_a_payload_changed_after_signing_does_not_verify(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    bundle = json.loads(dsse_bundle(Signing(key), statement("sha256:" + "ab" * 32)))
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(statement(digest)).decode()
    push_bundle(reg, REPOSITORY, digest, json.dumps(bundle).encode())
    v, clock = validator(reg, [keyed(key)])
    err = await denied(v, clock)
    assert err.category is Category.SIGNATURE_INVALID
    assert "does not verify with trust root default" in err.message


async def test_a_bundle_by_another_key_does_not_verify(key: Signer, other: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(other), statement(digest)))
    v, clock = validator(reg, [keyed(key)])
    assert (await denied(v, clock)).category is Category.SIGNATURE_INVALID


async def test_referrers_beyond_the_cap_are_never_fetched(key: Signer, other: Signer) -> None:
    """A registry listing more referrers than the cap costs at most the cap in fetches; a
    trusted signature hidden behind them is not found, so the image is denied (fail closed)."""
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    flood = dsse_bundle(Signing(other), statement(digest))
    listed = [push_bundle(reg, REPOSITORY, digest, flood + b" " * n) for n in range(MAX_REFERRERS)]
    hidden = push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    v, clock = validator(reg, [keyed(key)])
    assert (await denied(v, clock)).category is Category.SIGNATURE_INVALID
    read = {r.rpartition("/")[2] for r in reg.requests if "/manifests/sha256:" in r}
    assert read == set(listed)
    assert hidden not in read


async def test_an_attestation_announced_as_a_signature_is_not_one(key: Signer) -> None:
    # The annotation is unsigned; the statement decides what the bundle is.
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    provenance = statement(digest, SLSA, predicate={"builder": {"id": "x"}})
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), provenance))
    v, clock = validator(reg, [keyed(key)])
    err = await denied(v, clock)
    assert err.category is Category.NO_TRUST_DATA
    assert "no signatures found" in err.message


async def test_a_message_signature_over_the_digest_verifies(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, message_bundle(Signing(key), digest), predicate_type=None)
    v, clock = validator(reg, [keyed(key)])
    assert (await run(v, clock)).digest == digest


async def test_a_message_signature_over_another_digest_is_refused(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    other_digest = "sha256:" + "ef" * 32
    bundle = message_bundle(Signing(key), other_digest)
    push_bundle(reg, REPOSITORY, digest, bundle, predicate_type=None)
    v, clock = validator(reg, [keyed(key)])
    assert (await denied(v, clock)).category is Category.DIGEST_MISMATCH


async def test_a_referrer_listed_with_the_empty_type_is_still_read(key: Signer) -> None:
    # cosign v2 writes the empty config type into the referrers tag schema's index.
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    bundle = dsse_bundle(Signing(key), statement(digest))
    push_bundle(reg, REPOSITORY, digest, bundle, listed_type="application/vnd.oci.empty.v1+json")
    v, clock = validator(reg, [keyed(key)])
    assert (await run(v, clock)).digest == digest


async def test_a_malformed_bundle_is_rejected_and_another_still_counts(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, b'{"mediaType": "nonsense"}')
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    v, clock = validator(reg, [keyed(key)])
    assert (await run(v, clock)).digest == digest
    reg2 = FakeRegistry()
    digest2 = push_image(reg2, "1.0")
    push_bundle(reg2, REPOSITORY, digest2, b'{"mediaType": "nonsense"}')
    v2, clock2 = validator(reg2, [keyed(key)])
    err = await denied(v2, clock2)
    assert err.category is Category.MALFORMED_TRUST_DATA


# ------------------------------------------------------------------ transparency log evidence


def logged_bundle(
    signing: Signing, digest: str, rekor: MerkleRekor, integrated: int, **options: Any
) -> bytes:
    return dsse_bundle(signing, statement(digest), rekor=rekor, integrated=integrated, **options)


NOW_SECONDS = int(DEFAULT_NOW.timestamp())


def logged_image(key: Signer) -> tuple[FakeRegistry, MerkleRekor, str]:
    """A registry holding an image with a bundle by ``key`` that ``rekor`` logged now."""
    reg, rekor = FakeRegistry(), MerkleRekor()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, logged_bundle(Signing(key), digest, rekor, NOW_SECONDS))
    return reg, rekor, digest


async def test_inclusion_proof_checkpoint_and_promise_verify(key: Signer) -> None:
    reg, rekor, digest = logged_image(key)
    v, clock = validator(reg, [keyed(key)], rekor_material(rekor))
    assert (await run(v, clock, RuleOptions())).digest == digest


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("hash", "does not lead to its root hash"),
        ("root", "does not lead to its root hash"),
        ("size", "is shorter than its tree is deep"),
        ("checkpoint-key", "checkpoint is not signed by the transparency log"),
        ("checkpoint-tree", "checkpoint signs another tree"),
        ("missing", "has no inclusion proof"),
    ],
)
async def test_a_bad_inclusion_proof_is_refused(key: Signer, breakage: str, reason: str) -> None:
    reg, rekor = FakeRegistry(), MerkleRekor()
    digest = push_image(reg, "1.0")
    bundle = json.loads(logged_bundle(Signing(key), digest, rekor, NOW_SECONDS))
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    proof = entry["inclusionProof"]
    if breakage == "hash":
        proof["hashes"][0] = base64.b64encode(b"\x00" * 32).decode()
    elif breakage == "root":
        proof["rootHash"] = base64.b64encode(b"\x01" * 32).decode()
    elif breakage == "size":
        proof["treeSize"] = str(int(proof["treeSize"]) * 4)
    elif breakage == "checkpoint-key":
        impostor = MerkleRekor(origin=rekor.origin)
        root = base64.b64decode(proof["rootHash"])
        proof["checkpoint"]["envelope"] = rekor.checkpoint(
            int(proof["treeSize"]), root, signer=impostor
        )
    elif breakage == "checkpoint-tree":
        proof["checkpoint"]["envelope"] = rekor.checkpoint(int(proof["treeSize"]) + 1, b"\x02" * 32)
    else:
        del entry["inclusionProof"]
        bundle["mediaType"] = BUNDLE_V02
    push_bundle(reg, REPOSITORY, digest, json.dumps(bundle).encode())
    v, clock = validator(reg, [keyed(key)], rekor_material(rekor))
    err = await denied(v, clock, RuleOptions())
    assert err.category in (Category.SIGNATURE_INVALID, Category.MALFORMED_TRUST_DATA)
    if breakage != "missing":
        assert reason in err.message
    else:  # sigstore's models, like sigstore-python, require the proof: malformed
        assert err.category is Category.MALFORMED_TRUST_DATA


async def test_a_promise_alone_serves_a_v01_bundle_only(key: Signer) -> None:
    reg, rekor = FakeRegistry(), MerkleRekor()
    digest = push_image(reg, "1.0")
    bundle = json.loads(logged_bundle(Signing(key), digest, rekor, NOW_SECONDS))
    bundle["mediaType"] = BUNDLE_V01
    push_bundle(reg, REPOSITORY, digest, json.dumps(bundle).encode())
    v, clock = validator(reg, [keyed(key)], rekor_material(rekor))
    assert (await run(v, clock, RuleOptions())).digest == digest


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"payloadHash": {"algorithm": "sha256", "value": "00" * 32}}, "another DSSE payload"),
        ({"signatures": []}, "another signature or signer"),
    ],
)
async def test_an_entry_recording_something_else_is_refused(
    key: Signer, tamper: dict[str, Any], reason: str
) -> None:
    reg, rekor = FakeRegistry(), MerkleRekor()
    digest = push_image(reg, "1.0")
    bundle = logged_bundle(Signing(key), digest, rekor, NOW_SECONDS, tamper=tamper)
    push_bundle(reg, REPOSITORY, digest, bundle)
    v, clock = validator(reg, [keyed(key)], rekor_material(rekor))
    err = await denied(v, clock, RuleOptions())
    assert err.category is Category.SIGNATURE_INVALID
    assert reason in err.message


async def test_an_entry_of_another_signer_is_refused(key: Signer, other: Signer) -> None:
    reg, rekor = FakeRegistry(), MerkleRekor()
    digest = push_image(reg, "1.0")
    verifier = base64.b64encode(other.public_pem.encode()).decode()
    signing = Signing(key)
    bundle = json.loads(logged_bundle(signing, digest, rekor, NOW_SECONDS))
    sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
    rekor2 = MerkleRekor(key=rekor.key)
    tampered = logged_bundle(
        signing,
        digest,
        rekor2,
        NOW_SECONDS,
        tamper={"signatures": [{"signature": sig, "verifier": verifier}]},
    )
    push_bundle(reg, REPOSITORY, digest, tampered)
    v, clock = validator(reg, [keyed(key)], rekor_material(rekor))
    err = await denied(v, clock, RuleOptions())
    assert "another signature or signer" in err.message


async def test_an_untrusted_log_is_refused(key: Signer) -> None:
    reg, _, _ = logged_image(key)
    v, clock = validator(reg, [keyed(key)], rekor_material(MerkleRekor()))
    err = await denied(v, clock, RuleOptions())
    assert "is not trusted" in err.message


async def test_a_retired_log_key_vouches_for_nothing_after_its_window(key: Signer) -> None:
    reg, rekor, _ = logged_image(key)
    retired = Validity(end=DEFAULT_NOW - timedelta(days=1))
    material = rekor_material(rekor, rekor_validity={rekor.log_id: retired})
    v, clock = validator(reg, [keyed(key)], material)
    err = await denied(v, clock, RuleOptions())
    assert "vouches only for entries integrated" in err.message


# ------------------------------------------------------------------ keyless


def keyless_root(**identity: str) -> dict[str, Any]:
    return {"name": "default", "keyless": identity or {"issuer": ISSUER, "subject": EMAIL}}


def fulcio_signing(fulcio: FakeFulcio) -> Signing:
    issued = fulcio.issue(ISSUER, EMAIL)
    return Signing(Signer(issued.key), cert_pem=issued.cert_pem)


async def test_a_keyless_bundle_verifies_at_its_integrated_time() -> None:
    reg, rekor, fulcio = FakeRegistry(), MerkleRekor(), FakeFulcio(DEFAULT_NOW)
    digest = push_image(reg, "1.0")
    bundle = logged_bundle(fulcio_signing(fulcio), digest, rekor, NOW_SECONDS)
    push_bundle(reg, REPOSITORY, digest, bundle)
    material = rekor_material(rekor, fulcio=fulcio.material.fulcio)
    # a day later the ten-minute certificate has long expired: the entry proves when it signed
    v, clock = validator(reg, [keyless_root()], material, DEFAULT_NOW + timedelta(days=1))
    assert (await run(v, clock, RuleOptions(verify_sct=False))).digest == digest


async def test_a_keyless_bundle_of_another_identity_is_refused() -> None:
    reg, rekor, fulcio = FakeRegistry(), MerkleRekor(), FakeFulcio(DEFAULT_NOW)
    digest = push_image(reg, "1.0")
    push_bundle(
        reg, REPOSITORY, digest, logged_bundle(fulcio_signing(fulcio), digest, rekor, NOW_SECONDS)
    )
    material = rekor_material(rekor, fulcio=fulcio.material.fulcio)
    root = keyless_root(issuer=ISSUER, subject="someone-else@acme.example")
    v, clock = validator(reg, [root], material)
    err = await denied(v, clock, RuleOptions(verify_sct=False))
    assert err.category is Category.IDENTITY_MISMATCH


async def test_a_keyless_bundle_from_another_ca_is_refused() -> None:
    reg, rekor = FakeRegistry(), MerkleRekor()
    fulcio, trusted = FakeFulcio(DEFAULT_NOW), FakeFulcio(DEFAULT_NOW)
    digest = push_image(reg, "1.0")
    push_bundle(
        reg, REPOSITORY, digest, logged_bundle(fulcio_signing(fulcio), digest, rekor, NOW_SECONDS)
    )
    material = rekor_material(rekor, fulcio=trusted.material.fulcio)
    v, clock = validator(reg, [keyless_root()], material)
    err = await denied(v, clock, RuleOptions(verify_sct=False))
    assert "does not chain to the Fulcio roots" in err.message


async def test_a_keyless_bundle_with_only_a_key_hint_is_refused(key: Signer) -> None:
    reg, fulcio = FakeRegistry(), FakeFulcio(DEFAULT_NOW)
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    v, clock = validator(reg, [keyless_root()], fulcio.material)
    err = await denied(v, clock, dataclasses.replace(NO_TLOG, verify_sct=False))
    assert "keyless signature without certificate" in err.message


async def test_a_keyless_bundle_needs_an_sct_unless_the_rule_waives_it() -> None:
    reg, rekor, fulcio = FakeRegistry(), MerkleRekor(), FakeFulcio(DEFAULT_NOW)
    digest = push_image(reg, "1.0")
    push_bundle(
        reg, REPOSITORY, digest, logged_bundle(fulcio_signing(fulcio), digest, rekor, NOW_SECONDS)
    )
    v, clock = validator(
        reg, [keyless_root()], rekor_material(rekor, fulcio=fulcio.material.fulcio)
    )
    err = await denied(v, clock, RuleOptions())  # the test Fulcio embeds no SCT
    assert "no embedded SCT" in err.message
    assert (await run(v, clock, RuleOptions(verify_sct=False))).digest == digest


async def test_an_expired_certificate_without_a_timestamp_is_refused() -> None:
    reg, fulcio = FakeRegistry(), FakeFulcio(DEFAULT_NOW)
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(fulcio_signing(fulcio), statement(digest)))
    options = dataclasses.replace(NO_TLOG, verify_sct=False)
    fresh, clock = validator(reg, [keyless_root()], fulcio.material, DEFAULT_NOW)
    assert (await run(fresh, clock, options)).digest == digest  # within its ten minutes
    late, clock = validator(
        reg, [keyless_root()], fulcio.material, DEFAULT_NOW + timedelta(hours=1)
    )
    err = await denied(late, clock, options)
    assert "does not chain to the Fulcio roots at signing time" in err.message


# ------------------------------------------------------------------ RFC 3161 timestamps


def stamped_bundle(fulcio: FakeFulcio, digest: str, stamp_by: TsaSigner | None) -> bytes:
    """A keyless bundle with a timestamp over its signature by ``stamp_by`` (openssl ts,
    at the real time — the certificate is issued around it)."""
    signing = fulcio_signing(fulcio)
    bundle = json.loads(dsse_bundle(signing, statement(digest)))
    signature = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    if stamp_by is not None:
        stamp = as_response(token_by_openssl_ts(stamp_by, signature))
        bundle["verificationMaterial"]["timestampVerificationData"] = {
            "rfc3161Timestamps": [{"signedTimestamp": base64.b64encode(stamp).decode()}]
        }
    return json.dumps(bundle).encode()


def stamped_image(stamp_by: TsaSigner) -> tuple[FakeRegistry, FakeFulcio, str]:
    """A registry holding an image with a keyless bundle stamped by ``stamp_by``."""
    reg, fulcio = FakeRegistry(), FakeFulcio(REAL_NOW)
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, stamped_bundle(fulcio, digest, stamp_by))
    return reg, fulcio, digest


def tsa_material(fulcio: FakeFulcio, *roots: TsaSigner, window: Validity | None = None) -> Any:
    authorities = tuple(
        TimestampAuthority(certificates=(r.cert,), validity=window or Validity()) for r in roots
    )
    return dataclasses.replace(fulcio.material, timestamp_authorities=authorities)


@pytest.fixture(scope="module")
def tsa() -> tuple[TsaSigner, TsaSigner]:
    root = authority(None, "test tsa root")
    return root, stamping_leaf(root)


async def test_a_timestamp_proves_when_an_expired_certificate_signed(
    tsa: tuple[TsaSigner, TsaSigner],
) -> None:
    root, leaf = tsa
    reg, fulcio, digest = stamped_image(leaf)
    options = dataclasses.replace(NO_TLOG, verify_sct=False)
    later = REAL_NOW + timedelta(days=2)
    v, clock = validator(reg, [keyless_root()], tsa_material(fulcio, root), later)
    assert (await run(v, clock, options)).digest == digest


async def test_a_timestamp_by_an_untrusted_authority_rejects_the_signature(
    tsa: tuple[TsaSigner, TsaSigner],
) -> None:
    root, _ = tsa
    stranger = stamping_leaf(authority(None, "stranger tsa"))
    reg, fulcio, _ = stamped_image(stranger)
    options = dataclasses.replace(NO_TLOG, verify_sct=False)
    v, clock = validator(reg, [keyless_root()], tsa_material(fulcio, root), REAL_NOW)
    err = await denied(v, clock, options)
    assert "RFC 3161 timestamp" in err.message


async def test_a_timestamp_outside_its_authority_window_rejects_the_signature(
    tsa: tuple[TsaSigner, TsaSigner],
) -> None:
    root, leaf = tsa
    reg, fulcio, _ = stamped_image(leaf)
    retired = Validity(end=REAL_NOW - timedelta(days=1))
    v, clock = validator(reg, [keyless_root()], tsa_material(fulcio, root, window=retired))
    err = await denied(v, clock, dataclasses.replace(NO_TLOG, verify_sct=False))
    assert "outside its authority's validity" in err.message


# ------------------------------------------------------------------ across formats


def signed_in_both_formats(key: Signer) -> tuple[FakeRegistry, str]:
    """A registry holding an image that ``key`` signed twice: classic and in a bundle."""
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(key, digest)]))
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    return reg, digest


async def test_one_key_in_a_classic_signature_and_a_bundle_is_one_signer(
    key: Signer, other: Signer
) -> None:
    reg, digest = signed_in_both_formats(key)
    roots = [keyed(key), keyed(other, "other")]
    v, clock = validator(reg, roots)
    err = await denied(v, clock, dataclasses.replace(NO_TLOG, trust_root="*", threshold=2))
    assert err.category is Category.THRESHOLD_NOT_MET
    assert "(1/2)" in err.message
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(other), statement(digest)))
    both = await run(v, clock, dataclasses.replace(NO_TLOG, trust_root="*", threshold=2))
    assert both.signers == ("default", "other")


async def test_a_required_signer_may_sign_in_either_format(key: Signer, other: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(key, digest)]))
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(other), statement(digest)))
    v, clock = validator(reg, [keyed(key), keyed(other, "other")])
    options = dataclasses.replace(NO_TLOG, trust_root="*", required=("default", "other"))
    assert (await run(v, clock, options)).signers == ("default", "other")


@pytest.mark.parametrize(
    ("accepted", "present", "excluded"),
    [("classic", "bundle", "1 Sigstore bundle signature"), ("bundle", "classic", "1 classic")],
)
async def test_signatures_only_in_an_excluded_format_are_named(
    key: Signer, accepted: str, present: str, excluded: str
) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    if present == "bundle":
        push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    else:
        push_signatures(reg, digest, sign_layout([signed(key, digest)]))
    v, clock = validator(reg, [keyed(key)])
    options = dataclasses.replace(NO_TLOG, signature_format=accepted)
    err = await denied(v, clock, options)
    assert err.category is Category.NO_TRUST_DATA
    assert excluded in err.message
    assert "with.signatureFormat excludes" in err.message
    assert (await run(v, clock, NO_TLOG)).digest == digest


async def test_a_bundle_by_a_pem_key_of_each_curve_verifies() -> None:
    for curve in (ec.SECP256R1(), ec.SECP384R1()):
        signer = Signer(ec.generate_private_key(curve))
        reg = FakeRegistry()
        digest = push_image(reg, "1.0")
        push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(signer), statement(digest)))
        pem = signer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        v, clock = validator(reg, [{"name": "default", "key": pem.decode()}])
        assert (await run(v, clock)).digest == digest


async def test_inspect_lists_each_format_its_signer_and_why_it_did_not_count(
    key: Signer, other: Signer
) -> None:
    reg, digest = signed_in_both_formats(key)
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(other), statement(digest)))
    v, clock = validator(reg, [keyed(key)])
    options = dataclasses.replace(NO_TLOG, signature_format="bundle")
    inspection = await v.inspect(IMAGE, options, Deadline.after(clock, 5))
    assert inspection.trusted is not None
    assert inspection.trusted.digest == digest
    by_format: dict[str, list[Finding]] = {"classic": [], "bundle": []}
    for finding in inspection.findings:
        by_format[finding.described["format"]].append(finding)
    [excluded] = by_format["classic"]
    assert excluded.judgement is not None
    assert excluded.judgement.requirement == NOT_COUNTED
    assert excluded.judgement.refused[0].message == "with.signatureFormat: bundle excludes it"
    assert excluded.described["signer"] == "unknown (not read)"
    vouches = [f.judgement.vouches if f.judgement else () for f in by_format["bundle"]]
    assert sorted(tuple(vouch.root for vouch in v) for v in vouches) == [(), ("default",)]
    [wrong_key] = [f for f, v in zip(by_format["bundle"], vouches, strict=True) if not v]
    assert wrong_key.judgement is not None
    assert wrong_key.judgement.refused[0].category is Category.SIGNATURE_INVALID
    assert all(f.described["signer"].startswith("key") for f in by_format["bundle"])
