"""Every ``area: notation`` case of the shared vector set (cases.yaml), table-driven.

``validate_image`` runs the real NotationValidator against a FakeRegistry serving the vector
set's registry tree (copied under ``data/notation``), with the clock at the default
2026-11-29T00:00:00Z. The HTTPS transport of the ``notation_registry`` mock belongs to the
registry adapter's integration tests, not here.
"""

from __future__ import annotations

from typing import Any

import pytest

from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.notation_policy import NotationPolicy, NotationTrustStore, StoreType
from connaisseur.domain.trust import select_trust_roots
from tests.support import conformance
from tests.support.conformance import (
    NOTATION_CLOCK,
    cases,
    notation_rule_options,
    notation_settings,
)
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fakes import FakeClock

CASES = cases("notation")
DATA = conformance.DATA
REGISTRY_HOST = "127.0.0.1:5000"

#: Cases whose input our design hands to another unit; each says which and why.
SKIPPED: dict[str, str] = {}


def run_load_validator(case: dict[str, Any]) -> dict[str, Any]:
    settings = notation_settings(case["inputs"]["validator"])
    validator = NotationValidator(settings, FakeRegistry(), FakeClock(NOTATION_CLOCK, frozen=True))
    store = NotationTrustStore.from_roots(settings.trust_roots)
    return {
        "name": validator.name,
        "type": validator.type,
        "trust_roots": list(store.ca),
        "ca_certificates": sum(len(certs) for certs in store.ca.values()),
    }


async def run_validate_image(case: dict[str, Any]) -> dict[str, Any]:
    inputs = case["inputs"]
    registry = FakeRegistry.from_tree(DATA / "notation")
    validator = NotationValidator(
        notation_settings(inputs["validator"]), registry, FakeClock(NOTATION_CLOCK, frozen=True)
    )
    image = ImageReference.parse(inputs["image"].replace("<REGISTRY>", REGISTRY_HOST))
    deadline = Deadline.after(FakeClock(NOTATION_CLOCK, frozen=True), 30)
    evidence = await validator.validate(image, notation_rule_options(inputs.get("rule")), deadline)
    return {"digest": evidence.digest}


def run_trust_policy(case: dict[str, Any]) -> dict[str, Any]:
    inputs = case["inputs"]
    settings = notation_settings(inputs["validator"])
    image = ImageReference.parse(inputs["image"])
    rule = notation_rule_options(inputs.get("rule"))
    selected = select_trust_roots(settings.trust_roots, [rule.trust_root])  # as the validator
    policy = NotationPolicy.build(image.context, rule, selected)
    return {
        "registry_scopes": list(policy.registry_scopes),
        "trust_stores": list(policy.trust_stores),
        "verification_level": policy.level.value,
        "verify_timestamp": policy.verify_timestamp.value,
    }


def run_trust_store_lookup(case: dict[str, Any]) -> dict[str, Any]:
    inputs = case["inputs"]
    store = NotationTrustStore.from_roots(notation_settings(inputs["validator"]).trust_roots)
    certs = store.certificates(StoreType(inputs["store_type"]), inputs["store_name"])
    return {"found": bool(certs)}


OPS = {
    "load_validator": run_load_validator,
    "trust_policy": run_trust_policy,
    "trust_store_lookup": run_trust_store_lookup,
}


def test_every_notation_case_is_covered() -> None:
    ops = {c["op"] for c in CASES}
    assert ops <= {*OPS, "validate_image"}
    assert len(CASES) == 22


async def run(case: dict[str, Any]) -> dict[str, Any]:
    if case["op"] == "validate_image":
        return await run_validate_image(case)
    return OPS[case["op"]](case)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
async def test_notation_case(case: dict[str, Any]) -> None:
    if case["id"] in SKIPPED:
        pytest.skip(SKIPPED[case["id"]])
    expected = case["expected"]
    if not expected["ok"]:
        with pytest.raises(ConnaisseurError) as info:
            await run(case)
        allowed = {expected["error"], *case.get("also_acceptable", [])}
        assert info.value.category.value in allowed, info.value.message
        return
    result = await run(case)
    for key, value in expected.items():
        if key != "ok":
            assert result[key] == value, key
