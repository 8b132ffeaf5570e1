"""Attestations a cosign rule requires (docs/decisions/0042-attestation-conditions.md): classic
``.att`` DSSE layers and Sigstore bundle referrers, signed by the rule's trust roots, about the
admitted digest, with a predicate that satisfies the conditions — and denials naming the
predicate type and the field."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.config.loader import build_settings
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import TrustedDigest
from tests.support.cosign import Signer, sign_layout
from tests.support.cosign_validator import (
    CLOCK,
    IMAGE,
    REPOSITORY,
    push_image,
    push_signatures,
    signed,
)
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import FakeTransparencyLog
from tests.support.sigstore_bundles import (
    Signing,
    dsse_bundle,
    dsse_envelope,
    push_attestations,
    push_bundle,
    statement,
)

SLSA = "https://slsa.dev/provenance/v1"
SBOM = "https://spdx.dev/Document"
BUILDER = "https://github.com/actions/runner/github-hosted"
PROVENANCE = {
    "runDetails": {"builder": {"id": BUILDER}},
    "buildDefinition": {
        "externalParameters": {"workflow": {"repository": "https://github.com/acme/app"}}
    },
}
CONDITIONS = [
    {"field": "runDetails.builder.id", "equals": BUILDER},
    {
        "field": "buildDefinition.externalParameters.workflow.repository",
        "matches": r"https://github\.com/acme/[a-z-]+",
    },
]


def setup(reg: FakeRegistry, key: Signer, **with_: Any) -> tuple[CosignValidator, RuleOptions]:
    """The validator and the rule options as the loader builds them from a user's config."""
    doc = {
        "validators": [
            {
                "name": "default",
                "type": "cosign",
                "trustRoots": [{"name": "default", "key": key.public_pem}],
            }
        ],
        "policy": [{"pattern": "*", "with": {"verifyInTransparencyLog": False, **with_}}],
    }
    settings = build_settings(doc, secrets_dir=None, env={})
    validator = CosignValidator(settings.validators[0], reg, FakeTransparencyLog(), CLOCK)
    return validator, settings.policy.rules[0].options


async def verify(v: CosignValidator, options: RuleOptions) -> TrustedDigest:
    return await v.validate(IMAGE, options, Deadline.after(CLOCK, 5))


async def denial(v: CosignValidator, options: RuleOptions) -> ConnaisseurError:
    with pytest.raises(ConnaisseurError) as err:
        await verify(v, options)
    return err.value


def required(kind: str = SLSA, conditions: Sequence[Mapping[str, Any]] = CONDITIONS) -> Any:
    return [{"predicateType": kind, "conditions": list(conditions)}]


async def denial_requiring_provenance(reg: FakeRegistry, key: Signer) -> ConnaisseurError:
    """Why a rule that trusts ``key`` and requires the SLSA provenance refuses the image."""
    v, options = setup(reg, key, attestations=required())
    return await denial(v, options)


def signed_image(reg: FakeRegistry, key: Signer) -> str:
    digest = push_image(reg, "1.0")
    push_signatures(reg, digest, sign_layout([signed(key, digest)]))
    return digest


def provenance(digest: str, **changes: Any) -> bytes:
    return statement(digest, SLSA, predicate={**PROVENANCE, **changes})


@pytest.mark.parametrize("where", ["classic", "bundle"])
async def test_a_required_provenance_verifies(key: Signer, where: str) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    if where == "classic":
        push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, provenance(digest)))])
    else:
        bundle = dsse_bundle(Signing(key), provenance(digest))
        push_bundle(reg, REPOSITORY, digest, bundle, predicate_type=SLSA)
    v, options = setup(reg, key, attestations=required())
    assert (await verify(v, options)).digest == digest


@pytest.mark.parametrize("where", ["classic", "bundle"])
async def test_a_failing_condition_names_the_predicate_type_and_the_field(
    key: Signer, where: str
) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    bad = provenance(digest, runDetails={"builder": {"id": "https://evil.example"}})
    if where == "classic":
        push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, bad))])
    else:
        push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), bad), predicate_type=SLSA)
    err = await denial_requiring_provenance(reg, key)
    assert err.category is Category.PREDICATE_MISMATCH
    assert err.message.endswith(
        f"attestation {SLSA}: field runDetails.builder.id is 'https://evil.example', "
        f"expected '{BUILDER}'"
    )


async def test_one_satisfying_attestation_among_several_fulfils(key: Signer) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    bad = provenance(digest, runDetails={"builder": {"id": "https://evil.example"}})
    push_attestations(
        reg,
        REPOSITORY,
        digest,
        [(SLSA, dsse_envelope(key, bad)), (SLSA, dsse_envelope(key, provenance(digest)))],
    )
    v, options = setup(reg, key, attestations=required())
    assert (await verify(v, options)).digest == digest


async def test_an_attestation_by_an_untrusted_key_does_not_fulfil(
    key: Signer, other: Signer
) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    push_bundle(
        reg,
        REPOSITORY,
        digest,
        dsse_bundle(Signing(other), provenance(digest)),
        predicate_type=SLSA,
    )
    err = await denial_requiring_provenance(reg, key)
    assert err.category is Category.SIGNATURE_INVALID


async def test_an_attestation_about_another_image_does_not_fulfil(key: Signer) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    elsewhere = provenance("sha256:" + "ab" * 32)
    push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, elsewhere))])
    err = await denial_requiring_provenance(reg, key)
    assert err.category is Category.DIGEST_MISMATCH


async def test_an_attestation_of_another_type_does_not_fulfil(key: Signer) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    sbom = statement(digest, SBOM, predicate={"spdxVersion": "SPDX-2.3"})
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), sbom), predicate_type=SBOM)
    err = await denial_requiring_provenance(reg, key)
    assert err.category is Category.NO_TRUST_DATA
    assert f"no attestation of type {SLSA} found" in err.message


async def test_a_lying_annotation_does_not_make_an_sbom_a_provenance(key: Signer) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    sbom = statement(digest, SBOM, predicate=PROVENANCE)
    push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, sbom))])
    err = await denial_requiring_provenance(reg, key)
    assert err.category is Category.NO_TRUST_DATA


async def test_attestations_never_count_as_signatures(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, provenance(digest)))])
    err = await denial_requiring_provenance(reg, key)
    assert err.category is Category.NO_TRUST_DATA
    assert "no signatures found" in err.message


async def test_every_required_type_is_needed(key: Signer) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, provenance(digest)))])
    v, options = setup(reg, key, attestations=[*required(), *required(SBOM, [])])
    err = await denial(v, options)
    assert f"no attestation of type {SBOM} found" in err.message
    sbom = statement(digest, SBOM, predicate={})
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), sbom), predicate_type=SBOM)
    assert (await verify(v, options)).digest == digest


async def test_signature_format_applies_to_attestations(key: Signer) -> None:
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    push_bundle(reg, REPOSITORY, digest, dsse_bundle(Signing(key), statement(digest)))
    push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, provenance(digest)))])
    v, options = setup(reg, key, attestations=required(), signatureFormat="bundle")
    err = await denial(v, options)
    assert f"no attestation of type {SLSA} found" in err.message
    v, options = setup(reg, key, attestations=required())
    assert (await verify(v, options)).digest == digest


async def test_unrequired_attestations_are_not_fetched(key: Signer) -> None:
    reg = FakeRegistry()
    digest = signed_image(reg, key)
    push_attestations(reg, REPOSITORY, digest, [(SLSA, dsse_envelope(key, provenance(digest)))])
    v, options = setup(reg, key)
    assert (await verify(v, options)).digest == digest
    assert not any(".att" in path for path in reg.requests)


async def test_the_rule_options_carry_the_requirements_into_the_cache_key(key: Signer) -> None:
    reg = FakeRegistry()
    _, plain = setup(reg, key)
    _, strict = setup(reg, key, attestations=required())
    _, stricter = setup(reg, key, attestations=required(conditions=CONDITIONS[:1]))
    prints = {plain.fingerprint(), strict.fingerprint(), stricter.fingerprint()}
    assert len(prints) == 3
    assert dataclasses.replace(strict).fingerprint() == strict.fingerprint()
