"""Domain: the policy — anchored, normalised patterns; invalid patterns refused.

D1, docs/decisions/0001-anchored-patterns.md.
"""

from __future__ import annotations

import pytest

from connaisseur.domain.errors import Category, PolicyError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import Policy, Rule, normalise_pattern

DIGEST = "sha256:" + "ab" * 32


def matches(pattern: str, image: str) -> bool:
    return Rule(pattern=pattern).matches(ImageReference.parse(image).name)


@pytest.mark.parametrize(
    ("pattern", "image"),
    [
        ("registry.k8s.io/*:*", "attacker.example/registry.k8s.io/evil:1"),  # D1 regression
        ("registry.k8s.io/*:*", "registry.k8s.io.attacker.example/pause:1"),
        ("my.reg/app", "my.reg/app-evil:1"),
        ("my.reg/app", "my.reg/app/sub:1"),
        ("my.reg/app", "evil.io/my.reg/app:1"),
        ("nginx", "nginxx"),
        ("nginx", "evil/nginx"),
        ("nginx:1.*", "nginx:2.0"),
        ("my.reg/app:1", "my.reg/app:10"),
        ("docker.io/library/{nginx,redis}", "mysql"),
        ("my.reg/[!x]y", "my.reg/xy"),
        ("my.reg/a?c", "my.reg/abbc"),
        ("my.reg/a\\*c", "my.reg/abc"),
        (f"my.reg/app@{DIGEST}", "my.reg/app:1"),
    ],
)
def test_patterns_are_anchored(pattern: str, image: str) -> None:
    assert not matches(pattern, image)


@pytest.mark.parametrize(
    ("pattern", "image"),
    [
        ("registry.k8s.io/*:*", "registry.k8s.io/pause:3.9"),
        ("registry.k8s.io/*:*", "registry.k8s.io/sig/a/b:1"),  # '*' crosses '/'
        ("my.reg/app", "my.reg/app"),
        ("my.reg/app", "my.reg/app:1"),
        ("my.reg/app", f"my.reg/app@{DIGEST}"),
        ("my.reg/app", f"my.reg/app:1@{DIGEST}"),
        ("my.reg/app:1", f"my.reg/app:1@{DIGEST}"),
        (f"my.reg/app@{DIGEST}", f"my.reg/app:1@{DIGEST}"),
        ("nginx", "docker.io/library/nginx:1"),
        ("docker.io/nginx", "nginx"),
        ("index.docker.io/library/nginx", "nginx"),
        ("registry-1.docker.io/library/nginx", "docker.io/nginx:2"),
        ("nginx:*", "nginx:1.25"),  # glob only in the tag: still a Docker Hub short name
        ("nginx:1.*", "nginx:1.25"),
        ("docker.io/*:*", "nginx"),
        ("*:*", "anything.io/at/all:1"),
        ("*", "anything.io/at/all:1"),
        ("docker.io/library/{nginx,redis}", "redis:7"),
        ("my.reg/[!x]y", "my.reg/ay"),
        ("my.reg/[a-c]y", "my.reg/by"),
        ("my.reg/a?c", "my.reg/abc"),
        ("my.reg/\\a", "my.reg/a"),
    ],
)
def test_patterns_match_whole_normalised_names(pattern: str, image: str) -> None:
    assert matches(pattern, image)


@pytest.mark.parametrize(
    ("pattern", "normalised"),
    [
        ("nginx", "index.docker.io/library/nginx"),
        ("nginx:*", "index.docker.io/library/nginx:*"),
        (f"nginx@{DIGEST}", f"index.docker.io/library/nginx@{DIGEST}"),
        ("team/app", "index.docker.io/team/app"),
        ("docker.io/*", "index.docker.io/*"),
        ("registry-1.docker.io/x/*", "index.docker.io/x/*"),
        ("*:*", "*:*"),
        ("*", "*"),
        ("*.gcr.io/app", "*.gcr.io/app"),
        ("my.reg:5000/app", "my.reg:5000/app"),
    ],
)
def test_patterns_are_normalised_like_references(pattern: str, normalised: str) -> None:
    assert normalise_pattern(pattern) == normalised


@pytest.mark.parametrize(
    "pattern", ["", "[", "my.reg/[abc", "my.reg/{a,b", "my.reg/a\\", "my.reg/[!]", "my.reg/[z-a]"]
)
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PolicyError):
        Rule(pattern=pattern)


def test_the_most_specific_rule_wins_and_ties_go_to_the_last() -> None:
    rules = (
        Rule(pattern="*:*", validator="deny"),
        Rule(pattern="docker.io/*:*", validator="hub"),
        Rule(pattern="docker.io/team/*", validator="team"),
        Rule(pattern="docker.io/team/app:v*", validator="app-v"),
        Rule(pattern="docker.io/team/app:*", validator="app"),
        Rule(pattern="my.reg/*", validator="first"),
        Rule(pattern="my.reg/*", validator="second"),
    )
    policy = Policy(rules)

    def winner(image: str) -> str:
        return policy.match(ImageReference.parse(image).name).validator

    assert winner("quay.io/x:1") == "deny"
    assert winner("nginx") == "hub"
    assert winner("team/other:1") == "team"
    assert winner("team/app:v2") == "app-v"  # longer common prefix with the tag
    assert winner("team/app:latest") == "app"
    assert winner("my.reg/x") == "second"
    assert [r.validator for r, _ in policy.matching("index.docker.io/team/app:v2")] == [
        "deny",
        "hub",
        "team",
        "app-v",
        "app",
    ]


def test_no_matching_rule_is_a_policy_error() -> None:
    policy = Policy((Rule(pattern="my.reg/*"),))
    with pytest.raises(PolicyError) as info:
        policy.match("index.docker.io/library/nginx:latest")
    assert info.value.category is Category.NO_MATCHING_RULE
    with pytest.raises(PolicyError):  # memoised misses still raise
        policy.match("index.docker.io/library/nginx:latest")


def test_default_policy_does_not_let_a_lookalike_through() -> None:
    """The shipped rule 'registry.k8s.io/*:*' must not admit attacker.example/registry.k8s.io/..."""
    policy = Policy(
        (
            Rule(pattern="*:*", validator="deny"),
            Rule(pattern="registry.k8s.io/*:*", validator="allow"),
        )
    )
    evil = ImageReference.parse("attacker.example/registry.k8s.io/evil:1").name
    assert policy.match(evil).validator == "deny"
    good = ImageReference.parse("registry.k8s.io/pause:3.9").name
    assert policy.match(good).validator == "allow"
