"""ExplainImage: the rule, validator and trust roots an image would get, without network."""

from __future__ import annotations

from pathlib import Path

import yaml

from connaisseur.application.explain import ExplainImage, Explanation
from connaisseur.config.loader import build_settings
from connaisseur.domain.errors import Category

KEY_CONFIG = """
validators:
  - {name: allow, type: static, approve: true}
  - name: notary
    type: notaryv1
    trustRoots:
      - name: alice
        key: &same-key |
          -----BEGIN PUBLIC KEY-----
          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsx28WV7BsQfnHF1kZmpdCTTLJaWe
          d0CA+JOi8H4REuBaWSZ5zPDe468WuOJ6f71E7WFg3CVEVYHuoZt2UYbN/Q==
          -----END PUBLIC KEY-----
      - name: bob
        key: *same-key
policy:
  - {pattern: "registry.k8s.io/*:*", validator: allow}
  - {pattern: "registry.k8s.io/pause:3.9", validator: allow}
  - {pattern: "docker.io/team/*:*", validator: notary, with: {trustRoot: "*"}}
  - {pattern: "docker.io/team/app:*", validator: notary, with: {trustRoot: bob}}
  - {pattern: "docker.io/team/odd:*", validator: notary, with: {trustRoot: carol}}
  - {pattern: "ghcr.io/*", validator: missing}
"""


def explain(raw: str) -> Explanation:
    settings = build_settings(yaml.safe_load(KEY_CONFIG), secrets_dir=Path("/nonexistent"), env={})
    return ExplainImage(settings).execute(raw)


def test_the_most_specific_rule_and_its_trust_roots_are_reported() -> None:
    found = explain("team/app:1")
    assert found.reference == "index.docker.io/team/app:1"
    assert [r.pattern for r, _ in found.matches] == ["docker.io/team/*:*", "docker.io/team/app:*"]
    assert found.rule is not None
    assert found.rule.pattern == "docker.io/team/app:*"
    assert found.trust_roots == ("bob",)
    assert found.error is None


def test_star_selects_every_trust_root() -> None:
    assert explain("team/other:1").trust_roots == ("alice", "bob")


def test_static_validators_have_no_trust_roots() -> None:
    found = explain("registry.k8s.io/pause:3.9")
    assert found.validator is not None
    assert found.validator.type == "static"
    assert found.trust_roots == ()


def test_problems_are_reported_not_raised() -> None:
    cases = {
        "Bad,Ref": Category.INVALID_REFERENCE,
        "quay.io/x:1": Category.NO_MATCHING_RULE,
        "ghcr.io/x:1": Category.VALIDATOR_NOT_FOUND,
        "team/odd:1": Category.TRUST_ROOT_NOT_FOUND,
    }
    for raw, category in cases.items():
        error = explain(raw).error
        assert error is not None, raw
        assert error.category is category, raw


def test_a_tag_only_static_allow_is_explained_as_not_covering_a_digest() -> None:
    """docs/decisions/0020-tag-patterns-and-digests.md: explain says what the webhook does."""
    digest = "sha256:" + "ab" * 32
    found = explain(f"registry.k8s.io/pause:3.9@{digest}")
    assert found.rule is not None
    assert found.rule.pattern == "registry.k8s.io/pause:3.9"
    assert found.error is not None
    assert found.error.category is Category.STATIC_DENY
    assert explain("registry.k8s.io/pause:3.9").error is None
