"""NotaryV1Validator orchestration with a fake Notary serving simulator-signed trust data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pytest

from connaisseur.application.deadline import Deadline
from connaisseur.application.notaryv1 import (
    DEFAULT_NOTARY_HOST,
    NotaryV1Validator,
    check_notaryv1_settings,
    notary_auth,
    notary_host,
)
from connaisseur.application.ports import Endpoint, Notary
from connaisseur.application.settings import AuthSettings, Credentials, ValidatorSettings
from connaisseur.domain.errors import Category, ConfigError, ConnaisseurError, TrustRootError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.trust import TrustRoot
from tests.support.fakes import FakeClock
from tests.support.notary_sim import NotaryV1Simulator, digest_of

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
A, B = digest_of("a"), digest_of("b")


class FakeNotary(Notary):
    """Serves whatever ``files`` holds for any GUN; records every call."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        self.calls.append((host, gun, tuple(roles)))
        return {r: self.files.get(r) for r in roles}


def settings(sim: NotaryV1Simulator, host: str | None = "notary.test") -> ValidatorSettings:
    root = TrustRoot(name="default", key=sim.pinned_pem)
    return ValidatorSettings(name="nv1", type="notaryv1", host=host, trust_roots=(root,))


async def validate(v: NotaryV1Validator, image: str, **options: object) -> str | None:
    deadline = Deadline.after(FakeClock(frozen=True), 10)
    opts = RuleOptions(**options)  # type: ignore[arg-type]
    return (await v.validate(ImageReference.parse(image), opts, deadline)).digest


async def test_one_fetch_round_for_base_roles_and_releases() -> None:
    sim = NotaryV1Simulator()
    sim.sign_tag("v1", A)
    notary = FakeNotary(sim.publish())
    v = NotaryV1Validator(settings(sim), notary, FakeClock(frozen=True))
    assert await validate(v, "myorg/app:v1") == A
    assert notary.calls == [
        (
            "https://notary.test",
            "docker.io/myorg/app",
            ("root", "timestamp", "snapshot", "targets", "targets/releases"),
        )
    ]


async def test_rollback_after_a_newer_version_was_verified() -> None:
    sim = NotaryV1Simulator()
    sim.sign_tag("v1", A)
    old = sim.publish()
    sim.sign_tag("v1", B)
    sim.bump("targets", "snapshot", "timestamp")
    notary = FakeNotary(sim.publish())
    v = NotaryV1Validator(settings(sim), notary, FakeClock(frozen=True))
    assert await validate(v, "myorg/app:v1") == B
    notary.files = dict(old)
    with pytest.raises(ConnaisseurError) as info:
        await validate(v, "myorg/app:v1")
    assert info.value.category is Category.ROLLBACK
    # Another repository has its own history.
    assert await validate(v, "myorg/other:v1") == A


async def test_unusable_host_fails_without_contacting_anything() -> None:
    sim = NotaryV1Simulator()
    notary = FakeNotary({})
    v = NotaryV1Validator(settings(sim, host="def:// invalid url"), notary, FakeClock(frozen=True))
    with pytest.raises(ConnaisseurError) as info:
        await validate(v, "myorg/app:v1")
    assert info.value.category is Category.FETCH_FAILED
    assert notary.calls == []


async def test_unknown_trust_root_is_trust_root_not_found() -> None:
    sim = NotaryV1Simulator()
    v = NotaryV1Validator(settings(sim), FakeNotary(sim.publish()), FakeClock(frozen=True))
    with pytest.raises(TrustRootError) as info:
        await validate(v, "myorg/app:v1", trust_root="nope")
    assert info.value.category is Category.TRUST_ROOT_NOT_FOUND


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, DEFAULT_NOTARY_HOST),
        ("", DEFAULT_NOTARY_HOST),
        ("notary.example:4443", "https://notary.example:4443"),
        ("HTTP://127.0.0.1:4443", "HTTP://127.0.0.1:4443"),
    ],
)
def test_notary_host_defaults_and_scheme(host: str | None, url: str) -> None:
    assert notary_host(host) == url


def test_lone_emptyauth_secret_is_keyed_to_the_notary_host() -> None:
    creds = Credentials(username="u", password="p")
    auth = notary_auth(AuthSettings(credentials=(("EMPTYAUTH", creds),)), "https://ghcr.io")
    assert auth.lookup("ghcr.io") == creds
    keyed = AuthSettings(credentials=(("registry.io", creds),))
    assert notary_auth(keyed, "https://ghcr.io").lookup("ghcr.io") is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"host": "\\\\\\"}, ConfigError),
        ({"trust_roots": ()}, ConfigError),
        ({"cert": "aaa"}, ConfigError),
        ({"trust_roots": (TrustRoot(name="x", key="MFkwEwYHKoZIzj0CAQYIKoZ"),)}, TrustRootError),
    ],
)
def test_load_time_checks(change: dict[str, object], error: type[Exception]) -> None:
    base = settings(NotaryV1Simulator())
    values = {f: getattr(base, f) for f in ("name", "type", "host", "cert", "trust_roots")}
    with pytest.raises(error):
        check_notaryv1_settings(ValidatorSettings(**{**values, **change}))  # type: ignore[arg-type]
    check_notaryv1_settings(base)
