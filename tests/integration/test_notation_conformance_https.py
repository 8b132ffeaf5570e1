"""Every notation ``validate_image`` case of cases.yaml via the REAL registry adapter over HTTPS.

The ``notation_registry`` mock is served exactly as the conformance README describes: the
vector set's registry tree (``tests/conformance/data/notation/``) over HTTPS with
``notation/server-cert.pem`` / ``server-key.pem`` (issued by ``notation/ca.pem``), 404 on the
referrers API. ``07_selfsigned_cert.yaml`` carries ``ca.pem`` as the validator's ``cert``, so
the adapter trusts the mock only through the validator configuration. The clock is the
conformance default 2026-11-29T00:00:00Z (inside the signing certificate's validity).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.notation import NotationValidator
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from tests.support.conformance import (
    DATA,
    NOTATION_CLOCK,
    cases,
    notation_rule_options,
    notation_settings,
)
from tests.support.fakes import FakeClock
from tests.support.notation_tree_registry import NotationTreeRegistry
from tests.support.threaded_server import serve_in_thread
from tests.support.tls import server_context

pytestmark = pytest.mark.integration
VALIDATE = cases("notation", ["validate_image"])
NOTATION = DATA / "notation"


@pytest.fixture(scope="module")
def mock() -> Iterator[tuple[NotationTreeRegistry, str]]:
    """The HTTPS ``notation_registry`` mock; yields it and its ``127.0.0.1:PORT``."""
    context = server_context(NOTATION / "server-cert.pem", NOTATION / "server-key.pem")
    registry = NotationTreeRegistry(NOTATION)
    with serve_in_thread(registry.app, ssl_context=context) as port:
        yield registry, f"127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[AiohttpRegistryClient]:
    async with aiohttp.ClientSession() as session:
        yield AiohttpRegistryClient(HttpClient(session), FakeClock(NOTATION_CLOCK))


async def run_case(
    case: dict[str, Any], client: AiohttpRegistryClient, host: str, *, cert: str | None = "ca"
) -> str | None:
    inputs = case["inputs"]
    settings = notation_settings(inputs["validator"])
    if cert is None:
        settings = replace(settings, cert=None)
    clock = FakeClock(NOTATION_CLOCK)
    validator = NotationValidator(settings, client, clock)
    image = ImageReference.parse(inputs["image"].replace("<REGISTRY>", host))
    evidence = await validator.validate(
        image, notation_rule_options(inputs.get("rule")), Deadline.after(clock, 10)
    )
    return evidence.digest


def expected_paths(case: dict[str, Any]) -> set[str]:
    """The URL paths of ``server_paths`` (methods and served files dropped)."""
    return {p["request"].split(" ", 1)[1] for p in case["server_paths"]}


def test_the_cases_use_the_https_mock_and_its_ca() -> None:
    assert len(VALIDATE) == 4
    for case in VALIDATE:
        assert case["inputs"]["server"] == "notation_registry"
        settings = notation_settings(case["inputs"]["validator"])
        assert settings.cert is not None
        assert settings.cert.pem.strip() == (NOTATION / "ca.pem").read_text().strip()


@pytest.mark.parametrize("case", VALIDATE, ids=[c["id"] for c in VALIDATE])
async def test_notation_validate_image_over_https(
    case: dict[str, Any],
    mock: tuple[NotationTreeRegistry, str],
    client: AiohttpRegistryClient,
) -> None:
    registry, host = mock
    registry.requests.clear()
    expected = case["expected"]
    if expected["ok"]:
        assert await run_case(case, client, host) == expected["digest"]
    else:
        with pytest.raises(ConnaisseurError) as info:
            await run_case(case, client, host)
        allowed = {expected["error"], *case.get("also_acceptable", [])}
        assert info.value.category.value in allowed, info.value.message
    requested = {path.split("?", 1)[0] for _, path in registry.requests}
    referrers_api = next(p for p in expected_paths(case) if "/referrers/" in p)
    assert referrers_api in requested  # asked the referrers API, got 404 ...
    assert referrers_api.replace("referrers/sha256:", "manifests/sha256-") in requested  # fell back
    assert requested <= expected_paths(case), requested - expected_paths(case)


async def test_without_the_validator_cert_the_mock_is_not_trusted(
    mock: tuple[NotationTreeRegistry, str], client: AiohttpRegistryClient
) -> None:
    """Fail closed: the mock's CA is no system root; the message names the real cause."""
    _, host = mock
    case = next(c for c in VALIDATE if c["expected"]["ok"])
    with pytest.raises(ConnaisseurError) as info:
        await run_case(case, client, host, cert=None)
    assert info.value.category is Category.FETCH_FAILED
    assert "TLS certificate" in info.value.message
