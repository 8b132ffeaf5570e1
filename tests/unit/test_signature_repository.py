"""``signatureRepository`` (docs/decisions/0051-signature-repository.md): the image is resolved in
its own repository, its signatures are read from another one, and every claim still names the
image — for cosign and Notation, set on the validator or on a rule."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.application.validators import Validator
from connaisseur.config.loader import build_settings
from connaisseur.domain.cosign_layout import signature_tag
from connaisseur.domain.errors import Category, ConfigError, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.fake_registries import FakeRegistries
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.notation_oci import JWS, Subject, put_signatures, signature_artifact
from tests.support.notation_signing import REAL_NOW, issue, make_ca, sign_jws, target
from tests.support.settings import validator_settings

IMAGE = ImageReference.parse("registry.example/team/app:1.0")
SIGNATURES = "sigs.example/signatures"
OTHER_SIGNATURES = "sigs.example/elsewhere"
CLOCK = FakeClock(REAL_NOW, frozen=True)
NO_TLOG = RuleOptions(verify_in_transparency_log=False)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def put_image(registries: FakeRegistries) -> str:
    body, blobs = image_manifest("app")
    at = registries.host(IMAGE.registry)
    for blob in blobs.values():
        at.put_blob(IMAGE.repository, blob)
    return at.put_manifest(IMAGE.repository, body, IMAGE.tag)


def put_cosign_signature(
    registries: FakeRegistries, repository: str, digest: str, signer: Signer, reference: str
) -> None:
    registry, _, repo = repository.partition("/")
    body = payload(digest, reference)
    layout = sign_layout([(body, signer.sign(body), {})])
    at = registries.host(registry)
    for blob in layout.blobs.values():
        at.put_blob(repo, blob)
    at.put_manifest(repo, layout.manifest, signature_tag(digest))


def cosign(registries: FakeRegistries, signer: Signer, **fields: Any) -> CosignValidator:
    roots = [{"name": "default", "key": signer.public_pem}]
    settings = validator_settings({"name": "c", "type": "cosign", "trustRoots": roots, **fields})
    return CosignValidator(settings, registries, unreachable_transparency_log(), CLOCK)


async def verify(validator: Validator, options: RuleOptions = NO_TLOG) -> str | None:
    return (await validator.validate(IMAGE, options, Deadline.after(CLOCK, 5))).digest


async def test_cosign_reads_signatures_from_the_signature_repository(signer: Signer) -> None:
    registries = FakeRegistries()
    digest = put_image(registries)
    put_cosign_signature(registries, SIGNATURES, digest, signer, IMAGE.context)
    validator = cosign(registries, signer, signatureRepository=SIGNATURES)
    assert await verify(validator) == digest
    asked = [(a.host, a.repository, a.what.split("/")[0]) for a in registries.asked]
    assert asked[0] == ("registry.example", "team/app", "resolve")
    # the .sig tag and the OCI 1.1 referrers are listed at once, then the payload blob
    assert sorted(asked[1:]) == [
        ("sigs.example", "signatures", "blobs"),
        ("sigs.example", "signatures", "manifests"),
        ("sigs.example", "signatures", "referrers"),
    ]


async def test_cosign_claims_still_name_the_image_not_the_signature_repository(
    signer: Signer,
) -> None:
    """A signature made for the signature repository's name is not one for the image (D2)."""
    registries = FakeRegistries()
    digest = put_image(registries)
    put_cosign_signature(registries, SIGNATURES, digest, signer, SIGNATURES)
    with pytest.raises(ConnaisseurError) as err:
        await verify(cosign(registries, signer, signatureRepository=SIGNATURES))
    assert (
        "the signature names repository sigs.example/signatures, not registry.example/team/app"
        in (err.value.message)
    )


async def test_a_rules_signature_repository_wins_over_the_validators(signer: Signer) -> None:
    registries = FakeRegistries()
    digest = put_image(registries)
    put_cosign_signature(registries, OTHER_SIGNATURES, digest, signer, IMAGE.context)
    validator = cosign(registries, signer, signatureRepository=SIGNATURES)
    options = RuleOptions(verify_in_transparency_log=False, signature_repository=OTHER_SIGNATURES)
    assert await verify(validator, options) == digest
    with pytest.raises(ConnaisseurError) as err:
        await verify(validator)  # the validator's own repository holds nothing
    assert err.value.category is Category.NO_TRUST_DATA


async def test_notation_reads_referrers_and_envelopes_from_the_signature_repository() -> None:
    root = make_ca("root")
    leaf = issue(root, "signer")
    registries = FakeRegistries()
    digest = put_image(registries)
    size = len(registries.host(IMAGE.registry).files[f"{IMAGE.repository}/manifests/{digest}"])
    media_type = "application/vnd.docker.distribution.manifest.v2+json"
    envelope = sign_jws(leaf, target(digest, size, media_type))
    subject = Subject(digest=digest, size=size, media_type=media_type)
    artifact = signature_artifact(subject, envelope, JWS, leaf.chain)
    registry, _, repo = SIGNATURES.partition("/")
    put_signatures(registries.host(registry), repo, subject, [artifact])
    settings = validator_settings(
        {
            "name": "n",
            "type": "notation",
            "trustRoots": [{"name": "default", "cert": root.pem()}],
            "signatureRepository": SIGNATURES,
        }
    )
    assert await verify(NotationValidator(settings, registries, CLOCK), RuleOptions()) == digest
    hosts = {(a.host, a.what.split("/")[0]) for a in registries.asked}
    assert hosts == {
        ("registry.example", "manifests"),  # the image
        ("sigs.example", "referrers"),
        ("sigs.example", "manifests"),
        ("sigs.example", "blobs"),
    }


def test_a_signature_repository_is_normalised_like_an_image_name() -> None:
    entry = {
        "name": "c",
        "type": "cosign",
        "trustRoots": [{"name": "k", "keyless": {"issuer": "i", "subject": "s"}}],
    }
    settings = validator_settings({**entry, "signatureRepository": "docker.io/sigs"})
    assert settings.signature_repository == "index.docker.io/library/sigs"


@pytest.mark.parametrize(
    "value", ["sigs.example/signatures:v1", "sigs.example/Sig", f"sigs.example/s@sha256:{'0' * 64}"]
)
def test_a_signature_repository_with_a_tag_or_digest_is_refused(value: str) -> None:
    entry = {
        "name": "c",
        "type": "cosign",
        "trustRoots": [{"name": "k", "keyless": {"issuer": "i", "subject": "s"}}],
    }
    with pytest.raises(ConfigError) as err:
        validator_settings({**entry, "signatureRepository": value})
    assert err.value.problems[0].startswith("validators[0].signatureRepository: ")
    document = {
        "validators": [entry],
        "policy": [{"pattern": "*", "validator": "c", "with": {"signatureRepository": value}}],
    }
    with pytest.raises(ConfigError) as err:
        build_settings(document, secrets_dir=None, env={})
    assert err.value.problems[0].startswith("policy[0].with.signatureRepository: ")


def test_the_signature_repository_is_part_of_what_identifies_a_verdict() -> None:
    assert RuleOptions(signature_repository="a/b").fingerprint() != RuleOptions().fingerprint()
    entry = {
        "name": "c",
        "type": "cosign",
        "trustRoots": [{"name": "k", "keyless": {"issuer": "i", "subject": "s"}}],
    }
    plain = validator_settings(entry)
    moved = validator_settings({**entry, "signatureRepository": "a.example/b"})
    assert plain.fingerprint() != moved.fingerprint()
