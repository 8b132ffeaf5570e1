"""NotaryV1Validator orchestration with a fake Notary serving simulator-signed trust data."""

from __future__ import annotations

import datetime as dt

import pytest

from connaisseur.application.deadline import Deadline
from connaisseur.application.notaryv1 import NotaryV1Validator
from connaisseur.application.settings import Credentials, ValidatorSettings
from connaisseur.domain.errors import Category, ConfigError, ConnaisseurError, TrustRootError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.fakes import FakeClock, FakeNotary
from tests.support.notary_sim import NotaryV1Simulator, digest_of
from tests.support.notation_signing import make_ca
from tests.support.settings import validator_settings

DOCKER_HUB_NOTARY = "https://notary.docker.io"

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
A, B = digest_of("a"), digest_of("b")


def entry(sim: NotaryV1Simulator, **fields: object) -> dict[str, object]:
    """A ``notaryv1`` entry as a user writes it, pinning the simulator's root key
    (``host=None``: no ``host`` key at all)."""
    roots = [{"name": "default", "key": sim.pinned_pem}]
    written = {"name": "nv1", "type": "notaryv1", "host": "notary.test", "trustRoots": roots}
    return {k: v for k, v in {**written, **fields}.items() if v is not None}


def settings(sim: NotaryV1Simulator, **fields: object) -> ValidatorSettings:
    return validator_settings(entry(sim, **fields))


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


async def test_a_denial_names_the_validator_type_image_and_trust_roots() -> None:
    """The pipeline's one way to frame a message: Notary v1 denials named neither the image
    nor the trust roots."""
    sim = NotaryV1Simulator()
    sim.sign_tag("v1", A)
    v = NotaryV1Validator(settings(sim), FakeNotary(sim.publish()), FakeClock(frozen=True))
    with pytest.raises(ConnaisseurError) as info:
        await validate(v, "myorg/app:v2")
    assert info.value.category is Category.REFERENCE_NOT_FOUND
    assert info.value.message == (
        "notaryv1: image index.docker.io/myorg/app:v2 (trust roots: default): "
        "tag 'v2' is not signed by targets"
    )


async def test_explain_names_the_trust_data_by_server_repository_and_roles() -> None:
    """docs/decisions/0043-explain-every-signature.md: ``verify --explain`` says where the
    trust data came from (it showed only the candidate's class name)."""
    sim = NotaryV1Simulator()
    sim.sign_tag("v1", A)
    v = NotaryV1Validator(settings(sim), FakeNotary(sim.publish()), FakeClock(frozen=True))
    deadline = Deadline.after(FakeClock(frozen=True), 10)
    found = await v.inspect(ImageReference.parse("myorg/app:v1"), RuleOptions(), deadline)
    (finding,) = found.findings
    assert finding.described == {
        "where": "https://notary.test/docker.io/myorg/app",
        "format": "tuf",
        "kind": "trust data",
        "signer": "roles root, timestamp, snapshot, targets",  # the server has no releases
    }
    assert found.trusted is not None
    assert found.trusted.digest == A


async def test_the_pinned_trust_roots_are_the_signers() -> None:
    sim = NotaryV1Simulator()
    sim.sign_tag("v1", A)
    v = NotaryV1Validator(settings(sim), FakeNotary(sim.publish()), FakeClock(frozen=True))
    deadline = Deadline.after(FakeClock(frozen=True), 10)
    evidence = await v.validate(ImageReference.parse("myorg/app:v1"), RuleOptions(), deadline)
    assert (evidence.digest, evidence.signers) == (A, ("default",))


def test_unusable_host_is_refused_when_the_configuration_loads() -> None:
    # No validator exists for it, so nothing can ever be contacted (it used to fail per request).
    with pytest.raises(ConfigError) as info:
        settings(NotaryV1Simulator(), host="def:// invalid url")
    assert info.value.problems[0].startswith("validators[0].host: invalid URL")


async def test_unknown_trust_root_is_trust_root_not_found() -> None:
    sim = NotaryV1Simulator()
    v = NotaryV1Validator(settings(sim), FakeNotary(sim.publish()), FakeClock(frozen=True))
    with pytest.raises(TrustRootError) as info:
        await validate(v, "myorg/app:v1", trust_root="nope")
    assert info.value.category is Category.TRUST_ROOT_NOT_FOUND


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, DOCKER_HUB_NOTARY),
        ("", DOCKER_HUB_NOTARY),
        ("notary.example:4443", "https://notary.example:4443"),
        ("HTTP://127.0.0.1:4443", "HTTP://127.0.0.1:4443"),
    ],
)
def test_notary_host_defaults_and_scheme(host: str | None, url: str) -> None:
    assert settings(NotaryV1Simulator(), host=host).host == url


def test_lone_emptyauth_secret_is_keyed_to_the_notary_host() -> None:
    creds = Credentials(username="u", password="p")
    inline = {"username": "u", "password": "p"}
    auth = settings(NotaryV1Simulator(), host="https://ghcr.io", auth=inline).auth
    assert auth.lookup("ghcr.io") == creds
    keyed = {**inline, "registry": "registry.io"}
    auth = settings(NotaryV1Simulator(), host="https://ghcr.io", auth=keyed).auth
    assert auth.lookup("ghcr.io") is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"host": "\\\\\\"}, "validators[0].host: invalid URL"),
        ({"trustRoots": []}, "validators[0].trustRoots: no trust roots provided"),
        ({"cert": "aaa"}, "validators[0].cert: invalid certificate"),
        (
            {"trustRoots": [{"name": "x", "key": "MFkwEwYHKoZIzj0CAQYIKoZ"}]},
            "validators[0].trustRoots[0].key: key material must be PEM",
        ),
        (
            {"trustRoots": [{"name": "x", "cert": "aaa"}]},
            "validators[0].trustRoots[0].cert: invalid certificate",
        ),
    ],
)
def test_load_time_checks(change: dict[str, object], problem: str) -> None:
    sim = NotaryV1Simulator()
    with pytest.raises(ConfigError) as info:
        settings(sim, **change)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
    settings(sim)


def test_a_certificate_root_is_no_notary_trust_root() -> None:
    pem = make_ca("not a notary key").pem()
    with pytest.raises(ConfigError) as info:
        settings(NotaryV1Simulator(), trustRoots=[{"name": "c", "cert": pem}])
    assert any("no public key provided for trust root c" in p for p in info.value.problems)
