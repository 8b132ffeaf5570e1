"""The declarative predicate check (docs/decisions/0042-attestation-conditions.md): field
paths, JSON scalar equality, whole-value regexes, one-of, and denials that name the field."""

from __future__ import annotations

import re
from typing import Any

import pytest

from connaisseur.domain.attestations import (
    MAX_COMPARED_CHARACTERS,
    AttestationRequirement,
    Condition,
    parse_field_path,
    same,
)
from connaisseur.domain.dsse import Statement
from connaisseur.domain.errors import Category, Rejection

PROVENANCE = {
    "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
    "buildDefinition": {
        "externalParameters": {
            "workflow": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main"}
        },
        "resolvedDependencies": [{"uri": "git+https://github.com/acme/app"}],
    },
    "materials.v0": {"count": 2, "reproducible": True},
}


def condition(field: str, **operator: Any) -> Condition:
    matches = operator.pop("matches", None)
    one_of = operator.pop("one_of", None)
    return Condition(
        field=field,
        path=parse_field_path(field),
        equals=operator.get("equals"),
        has_equals="equals" in operator,
        matches=re.compile(matches) if matches is not None else None,
        one_of=tuple(one_of) if one_of is not None else None,
    )


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("runDetails.builder.id", ("runDetails", "builder", "id")),
        (r"materials\.v0.count", ("materials.v0", "count")),
        (
            "buildDefinition.resolvedDependencies.0.uri",
            ("buildDefinition", "resolvedDependencies", "0", "uri"),
        ),
    ],
)
def test_field_paths(text: str, keys: tuple[str, ...]) -> None:
    assert parse_field_path(text) == keys


@pytest.mark.parametrize("text", ["", ".a", "a..b", "a."])
def test_empty_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="empty key"):
        parse_field_path(text)


@pytest.mark.parametrize(
    ("cond", "failure"),
    [
        (
            condition(
                "runDetails.builder.id", equals="https://github.com/actions/runner/github-hosted"
            ),
            None,
        ),
        (
            condition("runDetails.builder.id", equals="https://evil.example"),
            "is 'https://github.com/actions/runner/github-hosted', expected 'https://evil.example'",
        ),
        (
            condition("runDetails.builder.name", equals="x"),
            "field runDetails.builder.name is missing",
        ),
        (
            condition(
                "buildDefinition.resolvedDependencies.0.uri",
                matches=r"git\+https://github\.com/acme/.+",
            ),
            None,
        ),
        (condition("buildDefinition.resolvedDependencies.1.uri", equals="x"), "is missing"),
        # the whole value must match: a prefix is not enough, nor is a match inside
        (
            condition(
                "buildDefinition.externalParameters.workflow.repository",
                matches="https://github.com/acme",
            ),
            "does not match",
        ),
        (
            condition("buildDefinition.externalParameters.workflow.repository", matches="acme"),
            "does not match",
        ),
        (
            condition(
                "buildDefinition.externalParameters.workflow.ref",
                one_of=["refs/heads/main", "refs/heads/release"],
            ),
            None,
        ),
        (
            condition(
                "buildDefinition.externalParameters.workflow.ref", one_of=["refs/heads/release"]
            ),
            "not one of 'refs/heads/release'",
        ),
        (condition(r"materials\.v0.count", equals=2), None),
        (condition(r"materials\.v0.count", equals=2.0), None),
        (condition(r"materials\.v0.count", equals="2"), "is 2, expected '2'"),
        (condition(r"materials\.v0.reproducible", equals=True), None),
        (condition(r"materials\.v0.reproducible", equals=1), "is true, expected 1"),
        (condition(r"materials\.v0", matches=".*"), "is an object, which does not match"),
        (condition("runDetails", equals=None), "is an object, expected null"),
    ],
)
def test_conditions(cond: Condition, failure: str | None) -> None:
    found = cond.failure(PROVENANCE)
    if failure is None:
        assert found is None
    else:
        assert found is not None
        assert failure in found


def test_json_equality_of_scalars() -> None:
    assert same(True, True)
    assert not same(True, 1)
    assert not same(1, True)
    assert same(1, 1.0)
    assert not same("1", 1)
    assert same(None, None)
    assert not same({}, None)


def test_long_values_never_match() -> None:
    long = "a" * (MAX_COMPARED_CHARACTERS + 1)
    cond = condition("v", matches="a*")
    assert cond.failure({"v": long}) is not None
    assert cond.failure({"v": long[:-1]}) is None


def test_a_denial_names_the_predicate_type_and_the_field() -> None:
    requirement = AttestationRequirement(
        predicate_type="https://slsa.dev/provenance/v1",
        conditions=(
            condition("runDetails.builder.id", matches="https://github.com/.+"),
            condition("buildDefinition.externalParameters.workflow.ref", equals="refs/tags/v1"),
        ),
    )
    statement = Statement(
        predicate_type=requirement.predicate_type,
        subjects=(("", "sha256:" + "ab" * 32),),
        predicate=PROVENANCE,
    )
    with pytest.raises(Rejection) as err:
        requirement.check(statement)
    assert err.value.category is Category.PREDICATE_MISMATCH
    assert err.value.message == (
        "attestation https://slsa.dev/provenance/v1: field "
        "buildDefinition.externalParameters.workflow.ref is 'refs/heads/main', "
        "expected 'refs/tags/v1'"
    )
