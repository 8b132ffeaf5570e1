"""NotaryV1Validator + NotaryV1HttpClient against the real Notary stack and the real client.

Trust data is created inside the tests by the ``notary`` CLI (init, addhash, publish,
delegation add, key import, key rotate). Every test runs on both backends (Debian binaries,
containers); the one in use is printed and recorded as a test property.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.notaryv1 import NotaryV1Validator
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.containers import Backend
from tests.support.fakes import FakeClock
from tests.support.notary_sim import digest_of
from tests.support.notary_stack import NotaryCli, NotaryStack, notary_stack
from tests.support.servers import free_port
from tests.support.settings import validator_settings

pytestmark = pytest.mark.integration

A, B, C = digest_of("real-a"), digest_of("real-b"), digest_of("real-c")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[NotaryStack]:
    with notary_stack(tmp_path_factory.mktemp("notary"), backend) as running_stack:
        print(f"\nNotary backend: {running_stack.backend}")
        yield running_stack


@pytest.fixture(scope="module")
def cli(stack: NotaryStack, tmp_path_factory: pytest.TempPathFactory) -> NotaryCli:
    return NotaryCli(stack, tmp_path_factory.mktemp("trust"))


@pytest.fixture
async def notary() -> AsyncIterator[NotaryV1HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield NotaryV1HttpClient(HttpClient(session))


def validator(
    stack: NotaryStack,
    notary: NotaryV1HttpClient,
    *pems: str,
    now: dt.datetime | None = None,
    host: str | None = None,
    cert: str | None = "",
) -> NotaryV1Validator:
    roots = [{"name": f"k{i}", "key": pem} for i, pem in enumerate(pems)]
    entry = {"name": "real", "type": "notaryv1", "host": host or stack.url, "trustRoots": roots}
    ca = stack.ca_pem if cert == "" else cert
    settings = validator_settings({**entry, "cert": ca} if ca else entry)
    return NotaryV1Validator(settings, notary, FakeClock(now or dt.datetime.now(dt.UTC)))


async def check(
    v: NotaryV1Validator, image: str, trust_root: str = "*", delegations: tuple[str, ...] = ()
) -> str | None:
    options = RuleOptions(trust_root=trust_root, delegations=delegations)
    deadline = Deadline.after(FakeClock(), 20.0)
    return (await v.validate(ImageReference.parse(image), options, deadline)).digest


async def denied(v: NotaryV1Validator, image: str, **kw: object) -> Category:
    with pytest.raises(ConnaisseurError) as info:
        await check(v, image, **kw)  # type: ignore[arg-type]
    return info.value.category


@pytest.fixture(scope="module")
def signed_repo(cli: NotaryCli) -> str:
    gun = "127.0.0.1:5000/it/app"
    cli.init(gun)
    cli.addhash(gun, "v1", A)
    return gun


async def test_signed_tag_and_digest_are_verified(
    stack: NotaryStack, cli: NotaryCli, notary: NotaryV1HttpClient, signed_repo: str
) -> None:
    v = validator(stack, notary, cli.root_public_pem(signed_repo))
    assert await check(v, f"{signed_repo}:v1") == A
    assert await check(v, f"{signed_repo}@{A}") == A


async def test_user_facing_denials_have_their_own_category(
    stack: NotaryStack,
    cli: NotaryCli,
    notary: NotaryV1HttpClient,
    signed_repo: str,
    tmp_path: Path,
) -> None:
    pem = cli.root_public_pem(signed_repo)
    v = validator(stack, notary, pem)
    assert await denied(v, f"{signed_repo}:unsigned") is Category.REFERENCE_NOT_FOUND
    assert await denied(v, "127.0.0.1:5000/it/nothing:v1") is Category.NO_TRUST_DATA
    assert await denied(v, f"{signed_repo}@{B}") is Category.REFERENCE_NOT_FOUND
    assert await denied(v, f"{signed_repo}:v1@{B}") is Category.DIGEST_MISMATCH
    # Another signer (its own trust directory, hence its own root key).
    other = NotaryCli(stack, tmp_path / "other-trust")
    other.init("127.0.0.1:5000/it/other")
    wrong = validator(stack, notary, other.root_public_pem("127.0.0.1:5000/it/other"))
    assert await denied(wrong, f"{signed_repo}:v1") is Category.SIGNATURE_INVALID
    # The timestamp Notary signs expires after 14 days: verify three weeks from now.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=21)
    assert await denied(validator(stack, notary, pem, now=later), f"{signed_repo}:v1") is (
        Category.EXPIRED
    )
    unreachable = validator(stack, notary, pem, host=f"https://127.0.0.1:{free_port()}")
    assert await denied(unreachable, f"{signed_repo}:v1") is Category.FETCH_FAILED
    system_roots = validator(stack, notary, pem, cert=None)
    assert await denied(system_roots, f"{signed_repo}:v1") is Category.FETCH_FAILED


async def test_releases_delegation_and_required_delegations(
    stack: NotaryStack, cli: NotaryCli, notary: NotaryV1HttpClient, tmp_path: Path
) -> None:
    gun = "127.0.0.1:5000/it/delegated"
    cli.init(gun)
    cli.addhash(gun, "v1", A)
    cli.add_delegation(gun, "targets/releases", tmp_path)
    cli.add_delegation(gun, "targets/qa", tmp_path)
    cli.add_delegation(gun, "targets/beta", tmp_path, paths="beta-")
    cli.addhash(gun, "v1", B, "targets/releases")
    cli.addhash(gun, "v1", B, "targets/qa")
    cli.addhash(gun, "v2", C, "targets/releases")
    cli.addhash(gun, "v2", A, "targets/qa")
    v = validator(stack, notary, cli.root_public_pem(gun))
    # Docker CLI rule: targets/releases when published, not the top-level targets.
    assert await check(v, f"{gun}:v1") == B
    assert await check(v, f"{gun}:v1", delegations=("releases", "targets/qa")) == B
    assert await denied(v, f"{gun}:v2", delegations=("releases", "qa")) is (
        Category.AMBIGUOUS_DIGEST
    )
    # D4: a required delegation that is not there is a denial, never a fall-back to targets.
    assert await denied(v, f"{gun}:v1", delegations=("ci",)) is Category.DELEGATION_NOT_FOUND
    assert await denied(v, f"{gun}:v1", delegations=("beta",)) is Category.DELEGATION_NOT_FOUND


async def test_delegation_paths_are_enforced_d4(
    stack: NotaryStack, cli: NotaryCli, notary: NotaryV1HttpClient, tmp_path: Path
) -> None:
    gun = "127.0.0.1:5000/it/paths"
    cli.init(gun)
    cli.add_delegation(gun, "targets/beta", tmp_path, paths="beta-")
    cli.addhash(gun, "beta-1", B, "targets/beta")
    v = validator(stack, notary, cli.root_public_pem(gun))
    assert await check(v, f"{gun}:beta-1", delegations=("beta",)) == B
    # The Notary client itself refuses to sign outside the paths; the simulator covers a
    # server that serves such a target anyway (tests/unit/domain/test_notaryv1_attacks.py).
    with pytest.raises(RuntimeError):
        cli.addhash(gun, "v1", B, "targets/beta")


async def test_key_rotation(stack: NotaryStack, cli: NotaryCli, notary: NotaryV1HttpClient) -> None:
    gun = "127.0.0.1:5000/it/rotating"
    cli.init(gun)
    cli.addhash(gun, "v1", A)
    first = cli.root_public_pem(gun)
    v = validator(stack, notary, first)
    cli.rotate(gun, "targets")
    cli.rotate(gun, "snapshot")
    cli.addhash(gun, "v2", B)
    assert await check(v, f"{gun}:v2") == B
    cli.rotate(gun, "root")
    second = cli.root_public_pem(gun)
    assert second != first
    # Notary cross-signs a rotated root with the previous key: the old pin still verifies.
    assert await check(v, f"{gun}:v1") == A
    assert await check(validator(stack, notary, second), f"{gun}:v1") == A
    cli.rotate(gun, "root")
    assert await denied(v, f"{gun}:v1") is Category.SIGNATURE_INVALID
    assert await check(validator(stack, notary, cli.root_public_pem(gun)), f"{gun}:v1") == A


async def test_requests_per_cold_verification(
    stack: NotaryStack, cli: NotaryCli, signed_repo: str
) -> None:
    """Ping + token-less server: one ping, then the base roles and releases in one round."""
    seen: list[str] = []
    async with aiohttp.ClientSession() as session:
        http = HttpClient(session, on_response=lambda host, status: seen.append(status))
        v = validator(stack, NotaryV1HttpClient(http), cli.root_public_pem(signed_repo))
        assert await check(v, f"{signed_repo}:v1") == A
        assert len(seen) == 6  # /v2/ + root, timestamp, snapshot, targets, targets/releases
        assert await check(v, f"{signed_repo}:v1") == A
        assert len(seen) == 11  # warm: the ping is remembered
