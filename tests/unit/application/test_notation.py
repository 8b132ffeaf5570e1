"""NotationValidator orchestration against a FakeRegistry (referrers tag schema)."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization

from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.errors import Category, ConfigError, TrustRootError, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.fake_oci_registry import CountingRegistry, FakeRegistry
from tests.support.fakes import FakeClock
from tests.support.notation_signing import (
    DAY,
    REAL_NOW,
    Signer,
    issue,
    make_ca,
    sign_jws,
    target,
)
from tests.support.settings import validator_settings

REPO = "team/app"
IMAGE = f"registry.test/{REPO}:v1"
CLOCK = FakeClock(REAL_NOW, frozen=True)


@pytest.fixture(scope="module")
def pki() -> tuple[Signer, Signer, Signer]:
    root, other = make_ca("root"), make_ca("other")
    return root, other, issue(root, "signer")


def settings(root: Signer, other: Signer) -> ValidatorSettings:
    roots = [{"name": "default", "cert": root.pem()}, {"name": "other", "cert": other.pem()}]
    return validator_settings({"name": "notation", "type": "notation", "trustRoots": roots})


def validator(root: Signer, other: Signer, registry: FakeRegistry) -> NotationValidator:
    """Trusting ``root`` (as "default") and ``other``, over ``registry``."""
    return NotationValidator(settings(root, other), registry, CLOCK)


def push_image(registry: FakeRegistry) -> tuple[str, int]:
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    )
    digest = registry.put_manifest(REPO, body.encode(), "v1")
    return digest, len(body)


def push_signature(
    registry: FakeRegistry, subject: str, envelope: bytes, signer: Signer, *, layers: int = 1
) -> str:
    blob = registry.put_blob(REPO, envelope)
    layer = {"mediaType": "application/jose+json", "digest": blob, "size": len(envelope)}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.notary.signature", "digest": blob, "size": 2},
        "layers": [layer] * layers,
        "subject": {"digest": subject},
    }
    digest = registry.put_manifest(REPO, json.dumps(manifest).encode())
    thumbprints = [
        hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest() for c in signer.chain
    ]
    tag = f"{REPO}/manifests/{subject.replace(':', '-')}"
    index = json.loads(registry.files.get(tag, b'{"schemaVersion": 2, "manifests": []}'))
    index["manifests"].append(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "artifactType": "application/vnd.cncf.notary.signature",
            "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": json.dumps(thumbprints)},
        }
    )
    registry.files[tag] = json.dumps(index).encode()
    return digest


def unsigned_image() -> tuple[FakeRegistry, str, int]:
    """A registry holding the image, unsigned: the registry, the digest and the size."""
    registry = FakeRegistry()
    digest, size = push_image(registry)
    return registry, digest, size


def signed_image(signer: Signer) -> tuple[FakeRegistry, str, int]:
    """A registry holding the image, signed by ``signer`` over its digest and size: the
    registry, the digest and the size."""
    registry, digest, size = unsigned_image()
    push_signature(registry, digest, sign_jws(signer, target(digest, size)), signer)
    return registry, digest, size


async def denial(root: Signer, other: Signer, registry: FakeRegistry) -> VerificationError:
    """The error a validator trusting ``root`` and ``other`` denies :data:`IMAGE` with."""
    with pytest.raises(VerificationError) as info:
        await validate(validator(root, other, registry))
    return info.value


async def validate(
    validator: NotationValidator, image: str = IMAGE, trust_root: str | None = None
) -> str | None:
    deadline = Deadline.after(CLOCK, 10)
    evidence = await validator.validate(
        ImageReference.parse(image), RuleOptions(trust_root=trust_root), deadline
    )
    return evidence.digest


async def test_tag_is_resolved_and_the_signed_digest_returned(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry, digest, _ = signed_image(leaf)
    assert await validate(validator(root, other, registry)) == digest


async def test_pinned_image_is_not_resolved_again(pki: tuple[Signer, Signer, Signer]) -> None:
    root, other, leaf = pki
    registry, digest, _ = signed_image(leaf)
    pinned = validator(root, other, registry)
    assert await validate(pinned, f"registry.test/{REPO}@{digest}") == digest
    assert f"{REPO}/manifests/v1" not in registry.requests


async def test_trusted_signature_is_tried_first(pki: tuple[Signer, Signer, Signer]) -> None:
    root, other, leaf = pki
    stranger = issue(other, "stranger")
    registry, digest, size = unsigned_image()
    untrusted = push_signature(registry, digest, sign_jws(stranger, target(digest, size)), stranger)
    push_signature(registry, digest, sign_jws(leaf, target(digest, size)), leaf)
    assert await validate(validator(root, other, registry)) == digest
    assert f"{REPO}/manifests/{untrusted}" not in registry.requests


async def test_unsigned_image_has_no_trust_data(pki: tuple[Signer, Signer, Signer]) -> None:
    registry, digest, _ = unsigned_image()
    with pytest.raises(VerificationError) as info:
        await validate(validator(pki[0], pki[1], registry))
    assert info.value.category is Category.NO_TRUST_DATA
    assert info.value.message == (
        f"notation: image {IMAGE} (trust roots: default): "
        f"no Notation signature is associated with {digest}"
    )


async def test_all_signatures_failing_reports_the_most_relevant(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry, digest, size = unsigned_image()
    push_signature(registry, digest, b"{garbage", leaf)
    push_signature(registry, digest, sign_jws(leaf, target("sha256:" + "1" * 64, size)), leaf)
    error = await denial(root, other, registry)
    assert error.category is Category.DIGEST_MISMATCH
    assert error.message.startswith(
        f"notation: image {IMAGE} (trust roots: default): none of 2 signatures verified; "
        "the Notation signature signs sha256:1111"
    )


async def test_the_signature_rejected_at_the_latest_step_explains_the_denial(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    """One ranking rule for every validator: the rejection closest to trust is the one that
    got furthest through the verification steps. A trusted, current signature over another
    digest fails at the last step (the target); an expired one at the timestamp step."""
    root, other, leaf = pki
    old = issue(root, "old", start=REAL_NOW - 20 * DAY, end=REAL_NOW - 2 * DAY)
    registry, digest, size = unsigned_image()
    stale = sign_jws(old, target(digest, size), signing_time=REAL_NOW - 9 * DAY)
    push_signature(registry, digest, stale, old)
    push_signature(registry, digest, sign_jws(leaf, target("sha256:" + "1" * 64, size)), leaf)
    error = await denial(root, other, registry)
    assert error.category is Category.DIGEST_MISMATCH
    assert "sha256:" + "1" * 64 in error.message


async def test_transient_registry_failure_is_not_swallowed(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry, digest, size = unsigned_image()
    sig = push_signature(registry, digest, sign_jws(leaf, target(digest, size)), leaf)
    registry.fail[f"{REPO}/manifests/{sig}"] = VerificationError(
        "down", category=Category.UNAVAILABLE
    )
    error = await denial(root, other, registry)
    assert error.category is Category.UNAVAILABLE


async def test_signature_manifest_with_two_layers_is_malformed(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry, digest, size = unsigned_image()
    push_signature(registry, digest, sign_jws(leaf, target(digest, size)), leaf, layers=2)
    error = await denial(root, other, registry)
    assert error.category is Category.MALFORMED_TRUST_DATA


async def test_unknown_trust_root_fails_before_any_request(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    registry = FakeRegistry()
    with pytest.raises(TrustRootError):
        await validate(
            validator(pki[0], pki[1], registry),
            trust_root="nope",
        )
    assert registry.requests == []


def test_bad_certificate_is_refused_when_the_configuration_loads() -> None:
    bad = {"name": "n", "type": "notation", "trustRoots": [{"name": "default", "cert": "x"}]}
    with pytest.raises(ConfigError) as info:
        validator_settings(bad)
    assert info.value.problems[0].startswith(
        "validators[0].trustRoots[0].cert: invalid certificate"
    )


async def test_missing_tag_is_image_not_found(pki: tuple[Signer, Signer, Signer]) -> None:
    registry = FakeRegistry()
    with pytest.raises(VerificationError) as info:
        await validate(validator(pki[0], pki[1], registry))
    assert info.value.category is Category.IMAGE_NOT_FOUND


async def test_tag_is_resolved_by_the_manifest_fetch_itself(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry, digest, _ = signed_image(leaf)
    await validate(validator(root, other, registry))
    image_fetches = [r for r in registry.requests if r.startswith(f"{REPO}/manifests/")]
    # the tag once (no separate resolve), never the same manifest again by digest
    assert image_fetches[0] == f"{REPO}/manifests/v1"
    assert f"{REPO}/manifests/{digest}" not in registry.requests


async def test_a_later_signature_failing_to_fetch_does_not_spoil_a_verified_one(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry, digest, size = signed_image(leaf)
    later = push_signature(registry, digest, sign_jws(leaf, target(digest, size)), leaf)
    registry.fail[f"{REPO}/manifests/{later}"] = VerificationError(
        "down", category=Category.UNAVAILABLE
    )
    assert await validate(validator(root, other, registry)) == digest


async def test_rotated_key_the_expired_signature_first_the_current_one_verifies(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, _ = pki
    old = issue(root, "old", start=REAL_NOW - 20 * DAY, end=REAL_NOW - 2 * DAY)
    current = issue(root, "current")
    registry, digest, size = unsigned_image()
    signed = target(digest, size)
    push_signature(registry, digest, sign_jws(old, signed, signing_time=REAL_NOW - 9 * DAY), old)
    push_signature(registry, digest, sign_jws(current, signed), current)
    assert await validate(validator(root, other, registry)) == digest


async def test_signatures_are_fetched_concurrently_but_bounded(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    root, other, leaf = pki
    registry = CountingRegistry()
    digest, size = push_image(registry)
    wrong = target("sha256:" + "1" * 64, size)
    for i in range(6):
        push_signature(registry, digest, sign_jws(leaf, wrong, extra={"n": i}), leaf)
    error = await denial(root, other, registry)
    assert error.message.startswith(
        f"notation: image {IMAGE} (trust roots: default): none of 6 signatures verified; "
    )
    assert registry.most_in_flight == 4  # _CONCURRENT_SIGNATURES


async def test_explain_names_each_signature_by_referrer_format_and_certificate(
    pki: tuple[Signer, Signer, Signer],
) -> None:
    """``verify --explain`` (docs/decisions/0043-explain-every-signature.md) says which
    signature each finding is: a bare class name told a user nothing (seen with the real
    notation CLI, tests/integration/test_notation_real.py)."""
    root, other, leaf = pki
    stranger = issue(make_ca("stranger-ca"), "stranger")
    registry, digest, size = unsigned_image()
    trusted = push_signature(registry, digest, sign_jws(leaf, target(digest, size)), leaf)
    foreign = push_signature(registry, digest, sign_jws(stranger, target(digest, size)), stranger)
    garbled = push_signature(registry, digest, b"not a JWS", leaf)
    inspection = await validator(root, other, registry).inspect(
        ImageReference.parse(IMAGE), RuleOptions(), Deadline.after(CLOCK, 10)
    )
    assert inspection.trusted is not None
    described = {f.described["where"]: f.described for f in inspection.findings}
    assert set(described) == {f"referrer {d}" for d in (trusted, foreign, garbled)}
    assert {d["format"] for d in described.values()} == {"jws"}
    assert {d["kind"] for d in described.values()} == {"signature"}
    assert described[f"referrer {trusted}"]["signer"].startswith("certificate for CN=signer")
    assert "(issuer CN=root" in described[f"referrer {trusted}"]["signer"]
    assert described[f"referrer {foreign}"]["signer"].startswith("certificate for CN=stranger")
    assert described[f"referrer {garbled}"]["signer"] == "unknown (unreadable envelope)"
