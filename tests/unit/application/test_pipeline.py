"""The validator pipeline, through a fourth validator type written for this test.

``DetachedSignatureValidator`` is what adding a validator takes: its fetch (``candidates``)
and its pure check (``check``). Trust-root selection, stopping once the rule is met, the
rejection closest to trust and the message context come from the pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import SignatureValidator, Verification
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain import errors
from connaisseur.domain.errors import Category, ConnaisseurError, Rejection
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.signers import Judgement, Vouch
from connaisseur.domain.trust import PemPublicKey, TrustRoot
from tests.support.fakes import FakeClock

IMAGE = ImageReference.parse("registry.test/team/app@sha256:" + "ab" * 32)
CLOCK = FakeClock(frozen=True)
UNREADABLE, WRONG_KEY = 1, 2  # how far a detached signature got


@dataclass
class SignatureStore:
    """Where the fourth validator's detached signatures live (a port's fake)."""

    signatures: list[bytes] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)
    fail: ConnaisseurError | None = None


class DetachedSignatureValidator(SignatureValidator[bytes]):
    """Ed25519 signatures over the image digest, kept in a :class:`SignatureStore`."""

    type = "detached"

    def __init__(self, settings: ValidatorSettings, store: SignatureStore) -> None:
        super().__init__(settings, CLOCK)
        self._store = store

    async def candidates(
        self, verification: Verification, deadline: Deadline
    ) -> AsyncGenerator[bytes | Rejection, None]:
        if self._store.fail is not None:
            raise self._store.fail
        for i, signature in enumerate(self._store.signatures):
            self._store.fetched.append(i)
            yield signature

    def check(self, candidate: bytes, verification: Verification, now: datetime) -> Judgement:
        if len(candidate) != 64:
            raise Rejection(
                "unreadable signature", category=Category.MALFORMED_TRUST_DATA, stage=UNREADABLE
            )
        for root in verification.roots:
            assert root.key is not None
            assert isinstance(root.key.key, ed25519.Ed25519PublicKey)
            try:
                root.key.key.verify(candidate, IMAGE.digest.encode())
            except InvalidSignature:
                continue
            return Judgement(
                digest=IMAGE.digest, vouches=(Vouch(root.name, root.key.pem.encode()),)
            )
        raise Rejection(
            "signed by another key", category=Category.SIGNATURE_INVALID, stage=WRONG_KEY
        )


def key_root(name: str, key: ed25519.Ed25519PrivateKey) -> TrustRoot:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TrustRoot(name=name, key=PemPublicKey.parse(pem.decode()))


ALICE, BOB = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
SETTINGS = ValidatorSettings(
    name="v", type="detached", trust_roots=(key_root("default", ALICE), key_root("bob", BOB))
)


async def validate(store: SignatureStore, **options: str) -> tuple[str | None, tuple[str, ...]]:
    validator = DetachedSignatureValidator(SETTINGS, store)
    evidence = await validator.validate(
        IMAGE,
        RuleOptions(**options),  # type: ignore[arg-type]
        Deadline.after(CLOCK, 5),
    )
    return evidence.digest, evidence.signers


async def denial(store: SignatureStore, **options: str) -> ConnaisseurError:
    with pytest.raises(ConnaisseurError) as info:
        await validate(store, **options)
    return info.value


def signed(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.sign(IMAGE.digest.encode())


async def test_the_first_verified_candidate_decides_and_later_ones_are_never_fetched() -> None:
    store = SignatureStore([b"junk", signed(ALICE), signed(ALICE)])
    assert await validate(store) == (IMAGE.digest, ("default",))
    assert store.fetched == [0, 1]


async def test_the_rule_selects_the_trust_roots() -> None:
    store = SignatureStore([signed(ALICE)])
    error = await denial(store, trust_root="bob")
    assert error.message == (
        f"detached: image {IMAGE.name} (trust roots: bob): signed by another key"
    )
    assert await validate(SignatureStore([signed(BOB)]), trust_root="*") == (
        IMAGE.digest,
        ("bob",),
    )


async def test_an_unknown_trust_root_is_refused_before_any_fetch() -> None:
    store = SignatureStore([signed(ALICE)])
    error = await denial(store, trust_root="carol")
    assert isinstance(error, errors.TrustRootError)
    assert error.message == "unable to find trust root carol"
    assert store.fetched == []


async def test_the_rejection_closest_to_trust_explains_the_denial() -> None:
    store = SignatureStore([b"junk", signed(BOB), b"more junk"])
    error = await denial(store)
    assert error.category is Category.SIGNATURE_INVALID
    assert error.message == (
        f"detached: image {IMAGE.name} (trust roots: default): "
        "none of 3 signatures verified; signed by another key"
    )


async def test_without_any_candidate_the_denial_still_names_image_and_roots() -> None:
    error = await denial(SignatureStore())
    assert error.category is Category.SIGNATURE_INVALID
    assert error.message == (
        f"detached: image {IMAGE.name} (trust roots: default): no signed digests"
    )


@pytest.mark.parametrize(
    "failure",
    [
        errors.VerificationError("registry down", category=Category.UNAVAILABLE),
        errors.ConfigError("CA unreadable", ("validators[0].cert: unreadable",)),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_failure_of_the_fetch_keeps_its_class_and_category(
    failure: ConnaisseurError,
) -> None:
    error = await denial(SignatureStore([signed(ALICE)], fail=failure))
    assert type(error) is type(failure)
    assert error.category is failure.category
    assert error.message == (
        f"detached: image {IMAGE.name} (trust roots: default): {failure.message}"
    )
