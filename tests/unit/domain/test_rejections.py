"""The one rejection type and the one ranking rule every validator reports its denial with."""

from __future__ import annotations

import pytest

from connaisseur.domain import errors
from connaisseur.domain.errors import Category, ConnaisseurError, Rejection, closest_to_trust
from connaisseur.domain.rfc3161 import TimestampError


@pytest.mark.parametrize(
    "error",
    [
        errors.ConfigError("bad file", ("a.b: bad", "a.c: worse")),
        errors.TrustRootError("no key", category=Category.INVALID_KEY),
        errors.VerificationError("down", category=Category.UNAVAILABLE),
        TimestampError("bad stamp"),
        Rejection("forged", category=Category.SIGNATURE_INVALID, stage=3),
        ConnaisseurError("plain", category=Category.TIMEOUT),
    ],
    ids=lambda e: type(e).__name__,
)
def test_rewording_keeps_class_category_and_details(error: ConnaisseurError) -> None:
    said = error.reworded(f"context: {error.message}")
    assert type(said) is type(error)
    assert said.category is error.category
    assert said.message == f"context: {error.message}"
    assert vars(said) == vars(error)
    assert error.message != said.message  # the original is left as it was


def test_the_rejection_that_got_furthest_explains_the_denial() -> None:
    early = Rejection("not base64", category=Category.MALFORMED_TRUST_DATA, stage=1)
    far = Rejection("another digest", category=Category.DIGEST_MISMATCH, stage=7)
    equally_far = Rejection("another repository", category=Category.REFERENCE_NOT_FOUND, stage=7)
    assert closest_to_trust([early, far, equally_far]) is far
    assert closest_to_trust([equally_far, early, far]) is equally_far
    assert closest_to_trust([]) is None


def test_a_rejection_is_a_verification_error_with_its_category() -> None:
    rejection = Rejection("expired", category=Category.EXPIRED, stage=2)
    assert isinstance(rejection, errors.VerificationError)
    assert rejection.category is Category.EXPIRED
    assert rejection.stage == 2
    assert Rejection("unknown").stage == 0
