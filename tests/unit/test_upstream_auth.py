"""The shared upstream authentication: challenge parsing and the credential / realm policy."""

from __future__ import annotations

import pytest

from connaisseur.adapters.upstream_auth import (
    Challenge,
    identity,
    may_carry_credentials,
    parse_challenge,
    parse_challenges,
)
from connaisseur.application.settings import Credentials
from connaisseur.domain.urls import is_loopback, onward_problem


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/nginx:pull"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.docker.io/token",
                        "service": "registry.docker.io",
                        "scope": "repository:library/nginx:pull",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            'BASIC Realm = "a, b" , BEARER REALM="https://x/t", Service=svc',
            [
                Challenge("basic", {"realm": "a, b"}),
                Challenge("bearer", {"realm": "https://x/t", "service": "svc"}),
            ],
        ),
        ('Bearer realm="say \\"hi\\""', [Challenge("bearer", {"realm": 'say "hi"'})]),
        ("Negotiate abc123==, Basic", [Challenge("negotiate"), Challenge("basic")]),
        ('Bearer realm="first", realm="second"', [Challenge("bearer", {"realm": "first"})]),
        ("", []),
        ('="orphan"', []),
        ('Bearer realm="unterminated', [Challenge("bearer")]),
    ],
)
def test_challenges_are_parsed_as_rfc_7235_writes_them(
    header: str, expected: list[Challenge]
) -> None:
    assert parse_challenges(header) == expected


@pytest.mark.parametrize(
    ("header", "scheme"),
    [
        ('Basic realm="r", Bearer realm="https://auth/t"', "bearer"),
        ('Bearer service="no realm", Basic realm="r"', "basic"),
        ("Negotiate", None),
        ('Bearer realm=""', None),
    ],
)
def test_the_challenge_answered_is_bearer_with_a_realm_then_basic(
    header: str, scheme: str | None
) -> None:
    chosen = parse_challenge(header)
    assert (chosen.scheme if chosen else None) == scheme


def test_a_huge_or_hostile_header_is_parsed_quickly_and_bounded() -> None:
    params = ",".join(f'p{i}="{i}"' for i in range(10_000))
    (challenge,) = parse_challenges(f"Bearer {params}")
    assert len(challenge.params) == 16
    assert parse_challenges("\x00\xff" * 5000) == []


@pytest.mark.parametrize(
    ("realm", "server", "problem"),
    [
        ("https://auth.docker.io/token", "registry-1.docker.io", None),
        ("https://auth.example/token?x=1", "registry.example:5000", None),
        ("http://127.0.0.1:5001/token", "127.0.0.1:5000", None),
        ("http://localhost/token", "localhost:5000", None),
        ("http://auth.example/token", "registry.example", "plain HTTP"),
        ("http://127.0.0.1:5001/token", "registry.example", "plain HTTP"),
        ("http://auth.example/token", "127.0.0.1:5000", "plain HTTP"),
        ("https://user:pw@auth.example/token", "registry.example", "userinfo"),
        ("/token", "registry.example", "absolute"),
        ("ftp://auth.example/token", "registry.example", "absolute"),
        ("https://auth.example:99999/token", "registry.example", "not a URL"),
        ("https://auth.example/to ken", "registry.example", "plain URL"),
    ],
)
def test_token_realm_policy(realm: str, server: str, problem: str | None) -> None:
    found = onward_problem(server, realm)
    assert (found is None) == (problem is None)
    if problem is not None:
        assert problem in (found or "")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://registry.example/v2/", True),
        ("http://127.0.0.1:5000/v2/", True),
        ("http://[::1]:5000/v2/", True),
        ("http://app.localhost/v2/", True),
        ("http://registry.example/v2/", False),
        ("http://127.0.0.1.nip.io/v2/", False),
        ("ftp://registry.example/", False),
    ],
)
def test_credentials_travel_over_https_or_to_loopback_only(url: str, allowed: bool) -> None:
    assert may_carry_credentials(url) is allowed


def test_loopback_is_judged_by_name_never_by_resolving() -> None:
    assert is_loopback("127.0.0.2:80")
    assert is_loopback("https://[::1]:8443/x")
    assert not is_loopback("localhost.example")
    assert not is_loopback("[bad")


def test_credential_identity_covers_the_password_and_hides_it() -> None:
    one = identity(Credentials(username="alice", password="pw1"))
    other = identity(Credentials(username="alice", password="pw2"))
    assert one != other
    assert "pw1" not in one
    assert identity(None) == ""
