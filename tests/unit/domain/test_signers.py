"""The tally every validator decides with: any one candidate, or D3's distinct signers, and
the rejection closest to trust when nothing verified."""

from __future__ import annotations

import pytest

from connaisseur.domain.errors import Category, Rejection, VerificationError
from connaisseur.domain.notation_envelope import Step
from connaisseur.domain.signers import Judgement, Tally, Vouch
from connaisseur.domain.trust import Selection, TrustRoot

DIGEST = "sha256:" + "ab" * 32
ROOTS = (TrustRoot(name="alice"), TrustRoot(name="bob"))
ANY_ONE = Selection(roots=ROOTS[:1])


def test_the_signature_closest_to_trust_explains_the_denial() -> None:
    tally = Tally(ANY_ONE)
    tally.reject(Rejection("bad", category=Category.MALFORMED_TRUST_DATA, stage=Step.ENVELOPE))
    tally.add(
        Judgement(
            digest=DIGEST,
            refused=(Rejection("old", category=Category.EXPIRED, stage=Step.EXPIRY),),
        )
    )
    tally.reject(Rejection("forged", category=Category.SIGNATURE_INVALID, stage=Step.INTEGRITY))
    assert not tally.settled
    with pytest.raises(Rejection) as info:
        tally.verdict()
    assert info.value.category is Category.EXPIRED
    assert info.value.message == "none of 3 signatures verified; old"


def test_one_rejected_candidate_is_reported_as_it_is() -> None:
    tally = Tally(ANY_ONE)
    only = Rejection("no signatures found", category=Category.NO_TRUST_DATA)
    tally.reject(only)
    with pytest.raises(Rejection) as info:
        tally.verdict()
    assert info.value is only


def test_the_first_verified_candidate_settles_a_rule_that_needs_any_one() -> None:
    tally = Tally(ANY_ONE)
    tally.reject(Rejection("forged", category=Category.SIGNATURE_INVALID, stage=1))
    tally.add(Judgement(digest=DIGEST, vouches=(Vouch("alice", b"k1"),)))
    assert tally.settled
    evidence = tally.verdict()
    assert (evidence.digest, evidence.signers) == (DIGEST, ("alice",))


def test_a_candidate_nothing_refused_counts_without_a_signer() -> None:
    """A Notation ``audit`` level accepts a signature that no trust root vouches for."""
    tally = Tally(ANY_ONE)
    tally.add(Judgement(digest=DIGEST))
    assert tally.settled
    assert tally.verdict().signers == ()


def test_a_counting_rule_judges_every_candidate_and_counts_distinct_signers() -> None:
    tally = Tally(Selection(roots=ROOTS, threshold=2))
    tally.add(Judgement(digest=DIGEST, vouches=(Vouch("alice", b"k1"), Vouch("bob", b"k1"))))
    assert not tally.settled  # one key under two names is one signer
    with pytest.raises(VerificationError) as info:
        tally.verdict()
    assert info.value.category is Category.THRESHOLD_NOT_MET
    tally.add(Judgement(digest=DIGEST, vouches=(Vouch("bob", b"k2"),)))
    assert tally.verdict().signers == ("alice", "bob")


def test_a_missed_threshold_names_the_rejection_closest_to_trust() -> None:
    tally = Tally(Selection(roots=ROOTS, threshold=2))
    tally.add(
        Judgement(
            digest=DIGEST,
            vouches=(Vouch("alice", b"k1"),),
            refused=(Rejection("forged", category=Category.SIGNATURE_INVALID, stage=1),),
        )
    )
    tally.reject(Rejection("another digest", category=Category.DIGEST_MISMATCH, stage=7))
    with pytest.raises(VerificationError) as info:
        tally.verdict()
    assert info.value.message == (
        "validation threshold not reached (1/2); other signatures: another digest"
    )
