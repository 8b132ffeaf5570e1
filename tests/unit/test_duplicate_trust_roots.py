"""Regression: duplicate trust roots must never let one signer count twice (D3,
docs/decisions/0003-thresholds-count-signers.md).

Two roots with one name, one key under two names, and one keyless identity matched by two
roots (or signing twice with two ephemeral keys) each let a single signer meet a
``threshold`` of two or a ``required`` list of two; duplicate names are a configuration error.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.config.loader import build_settings
from connaisseur.domain.cosign import CheckOptions, check_signature
from connaisseur.domain.cosign_layout import SignatureLayer
from connaisseur.domain.cosign_signed import ClassicSignature
from connaisseur.domain.errors import Category, ConfigError, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.signers import Vouch, aggregate
from connaisseur.domain.trust import KeylessIdentity, Selection, TrustRoot
from tests.support.cosign import Signer, payload
from tests.support.cosign_validator import (
    NO_TLOG,
    denied,
    signed_image,
    validator,
)
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import DEFAULT_NOW
from tests.support.fulcio import FakeFulcio

IMAGE = ImageReference.parse("registry.example/team/app:1.0")
DIGEST = "sha256:" + "c0" * 32
GITHUB = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def alice() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def test_two_roots_with_one_name_never_reach_a_validator(alice: Signer) -> None:
    """The loader refuses them (a validator takes its checked settings as given)."""
    same = {"name": "alice", "key": alice.public_pem}
    with pytest.raises(ConfigError) as err:
        validator([same, same], FakeRegistry())
    assert any("alice" in p and "more than once" in p for p in err.value.problems)


def test_outcomes_under_one_name_count_once() -> None:
    """Should a duplicate name reach the tally, it is still one root."""
    outcomes = [Vouch("alice", b"k1")] * 2
    with pytest.raises(VerificationError) as err:
        aggregate(outcomes, Selection(roots=(), threshold=2, required=()))
    assert err.value.category is Category.THRESHOLD_NOT_MET


async def test_required_roots_sharing_one_key_need_two_signers(alice: Signer) -> None:
    reg, _ = signed_image(alice)
    roots = [{"name": "a", "key": alice.public_pem}, {"name": "b", "key": alice.public_pem}]
    options = dataclasses.replace(NO_TLOG, trust_root="*", required=("a", "b"))
    err = await denied(validator(roots, reg), options)
    assert err.category is Category.REQUIRED_SIGNER_MISSING


def test_required_roots_keep_a_signer_of_their_own() -> None:
    """The matching serves required roots first: 'b' signed only with the key 'a' shares."""
    outcomes = [Vouch("a", b"k1"), Vouch("a", b"k2"), Vouch("b", b"k1")]
    signers = aggregate(outcomes, Selection(roots=(), threshold=2, required=("b",)))
    assert sorted(signers) == ["a", "b"]


def _keyless_outcome(fulcio: FakeFulcio, root: str, identity: KeylessIdentity, email: str) -> Vouch:
    issued = fulcio.issue(GITHUB, email)
    body = payload(DIGEST, IMAGE.context)
    signature = Signer(issued.key).sign(body)
    layer = SignatureLayer(
        payload=body, signature=base64.b64encode(signature).decode(), certificate=issued.cert_pem
    )
    check = CheckOptions(image=IMAGE, digest=DIGEST, verify_tlog=False, verify_sct=False)
    fingerprint = check_signature(
        ClassicSignature(layer),
        TrustRoot(name=root, keyless=identity),
        None,
        fulcio.material,
        check,
        log_entries=(),
        now=DEFAULT_NOW,
    )
    return Vouch(root, fingerprint)


def test_one_keyless_identity_signing_twice_is_one_signer() -> None:
    """Two signatures by alice@ci (two ephemeral keys), matched by two roots that both name
    her, are one signer: a keyless signer is its identity, not its throw-away key."""
    fulcio = FakeFulcio(DEFAULT_NOW)
    by_regex = KeylessIdentity(issuer=GITHUB, subject_regex="alice")
    exact = KeylessIdentity(issuer=GITHUB, subject="alice@example.com")
    outcomes = [
        _keyless_outcome(fulcio, "ci", by_regex, "alice@example.com"),
        _keyless_outcome(fulcio, "release", exact, "alice@example.com"),
    ]
    with pytest.raises(VerificationError) as err:
        aggregate(outcomes, Selection(roots=(), threshold=2, required=()))
    assert err.value.category is Category.THRESHOLD_NOT_MET
    other = _keyless_outcome(
        fulcio, "release", KeylessIdentity(issuer=GITHUB, subject_regex="b"), "bob@example.com"
    )
    assert len(aggregate([outcomes[0], other], Selection(roots=(), threshold=2, required=()))) == 2


def _config(vtype: str, roots: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "validators": [{"name": "v", "type": vtype, "trustRoots": roots}],
        "policy": [{"pattern": "*", "validator": "v"}],
    }


@pytest.mark.parametrize("vtype", ["cosign", "notaryv1", "notation"])
def test_duplicate_trust_root_names_are_a_configuration_error(vtype: str, alice: Signer) -> None:
    ca_pem = FakeFulcio(DEFAULT_NOW).ca.public_bytes(serialization.Encoding.PEM).decode()
    material = {"cert": ca_pem} if vtype == "notation" else {"key": alice.public_pem}
    roots = [{"name": "alice", **material}, {"name": "alice", **material}]
    with pytest.raises(ConfigError) as err:
        build_settings(_config(vtype, roots), secrets_dir=None, env={})
    assert any(
        "validators[0].trustRoots" in p and "alice" in p and "more than once" in p
        for p in err.value.problems
    ), err.value.problems


def test_one_key_under_two_names_is_allowed_and_counted_once(alice: Signer) -> None:
    roots = [{"name": "a", "key": alice.public_pem}, {"name": "b", "key": alice.public_pem}]
    build_settings(_config("cosign", roots), secrets_dir=None, env={})
