"""The harness of the conformance vectors in ``tests/conformance/cases.yaml``.

Every area's table-driven tests use it: load and filter cases, resolve data paths, the default
clock, the test-double validators of ``test_doubles.validators`` (``mock_table``, ``mock_allow``,
``mock_deny``, ``not_called``) and a container whose validators include such doubles.

The vectors describe upstream Connaisseur; where our product deliberately differs (D1-D10 and
the later records under docs/decisions/) the test asserts our behaviour and names the difference.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from dependency_injector import providers

from connaisseur.application.review import UNCHANGED_WARNING
from connaisseur.application.settings import Settings, ValidatorSettings
from connaisseur.application.validators import Validator, ValidatorFactory, build_validators
from connaisseur.config.container import Container, build_container, running
from connaisseur.config.loader import build_settings, load_settings, read_document
from connaisseur.domain.policy import RuleOptions
from tests.support.fakes import FakeClock
from tests.support.feature_doubles import MockValidator

CONFORMANCE_DIR = Path(__file__).resolve().parents[1] / "conformance"
CASES_FILE = CONFORMANCE_DIR / "cases.yaml"
DATA = CONFORMANCE_DIR / "data"
SKIP_FEATURES = "covered by tests/conformance/test_admission_features.py"


# --- cases ----------------------------------------------------------------------------------


@functools.cache
def manifest() -> dict[str, Any]:
    """The whole ``cases.yaml`` document (parsed once per session)."""
    document: dict[str, Any] = yaml.safe_load(CASES_FILE.read_text())
    return document


def cases(area: str, ops: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The cases of ``area`` (optionally only the operations ``ops``), in file order."""
    wanted = set(ops) if ops is not None else None
    return [
        c
        for c in manifest()["cases"]
        if c["area"] == area and (wanted is None or c["op"] in wanted)
    ]


def params(
    area: str,
    ops: Iterable[str] | None = None,
    *,
    skip: Callable[[dict[str, Any]], str | None] | None = None,
) -> list[Any]:
    """One ``pytest.param`` per case, id = case id; ``skip(case)`` may return a skip reason."""
    out = []
    for case in cases(area, ops):
        reason = skip(case) if skip is not None else None
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


#: Cases whose upstream outcome one of our deliberate differences changes:
#: id → (the difference, the outcome we assert instead).
_PINNED = (
    "pinned digests are kept (docs/decisions/0014-pinned-digests-stay-pinned.md): a validator "
    "answer naming another digest than the reference asks for is a digest_mismatch denial, "
    "never a silent swap (upstream's double swaps it)"
)
_D11 = (
    "D11 (docs/decisions/0011-lifecycle-updates.md): an UPDATE with unchanged images is "
    "admitted whatever verification says, and warns when it denies; objects being deleted "
    "get no other shortcut"
)
_BUSYBOX_DENIED = "unabled to find signed digest for image docker.io/library/busybox:latest"
DIFFERENCES: dict[str, tuple[str, dict[str, Any]]] = {
    "admission-028": (
        _D11,
        {
            "ok": True,
            "allowed": True,
            "patch": None,
            "notification_result": "error",  # verified, denied: the rejection alert goes out
            "warnings_contain": [UNCHANGED_WARNING, _BUSYBOX_DENIED],
        },
    ),
    "admission-029": (
        _D11,
        {
            "ok": True,
            "allowed": True,
            "patch": None,
            "notification_result": "error",
            "message_contains": _BUSYBOX_DENIED,
            "warnings_contain": [UNCHANGED_WARNING, _BUSYBOX_DENIED],
            "cache_after": {"busybox": {"digest": "", "error_contains": _BUSYBOX_DENIED}},
            "cache_after_exact": True,
        },
    ),
    "admission-077": (_D11, {"ok": True, "approved": False, "allowed": True}),
    "admission-073": (
        "D10 (docs/decisions/0010-child-approval-is-earned.md): an owner whose images are not "
        "pinned to a digest approves no children",
        {"ok": True, "approved": False},
    ),
    "admission-114": (
        "a static allow verifies nothing and pins nothing: digest null "
        "(docs/decisions/0014-pinned-digests-stay-pinned.md)",
        {"ok": True, "digest": ""},
    ),
    **{
        case_id: (
            _PINNED,
            {
                "ok": True,
                "allowed": False,
                "patch": None,
                "deny_category": "digest_mismatch",
                "notification_result": "error",
            },
        )
        for case_id in ("admission-116", "admission-117")
    },
}


def expected_of(case: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome to assert: upstream's, or ours where a deliberate difference changes it."""
    difference = DIFFERENCES.get(case["id"])
    return difference[1] if difference else dict(case["expected"])


def case_by_id(case_id: str) -> dict[str, Any]:
    """One case by its id."""
    return next(c for c in manifest()["cases"] if c["id"] == case_id)


# --- inputs ---------------------------------------------------------------------------------


def data_path(relative: str) -> Path:
    """A path of ``cases.yaml`` resolved against ``data/``."""
    return DATA / relative


def read_json(relative: str) -> Any:
    return json.loads(data_path(relative).read_text())


def resolve(value: Any) -> Any:
    """``file:<path>`` strings become the text of that data file; anything else is returned."""
    if isinstance(value, str) and value.startswith("file:"):
        return data_path(value.removeprefix("file:")).read_text()
    return value


def object_from(spec: str) -> Any:
    """``<file>#request.object`` → that member of the JSON file."""
    file, _, pointer = spec.partition("#")
    node = read_json(file)
    for part in filter(None, pointer.split(".")):
        node = node[part]
    return node


def case_env(case: Mapping[str, Any]) -> dict[str, str]:
    """The environment a case sets (unset variables, given as null, are left out)."""
    env = case.get("inputs", {}).get("env") or {}
    return {k: str(v) for k, v in env.items() if v is not None}


def budget_seconds(case: Mapping[str, Any], default: float = 29.0) -> float:
    """``deadline: already_expired`` → a zero budget."""
    return 0.0 if case.get("inputs", {}).get("deadline") == "already_expired" else default


def case_settings(case: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> Settings:
    """Load ``inputs.config`` with the case's environment and ``data/auth`` as secrets dir."""
    inputs = case["inputs"]
    return load_settings(
        data_path(inputs["config"]),
        secrets_dir=data_path(inputs.get("secrets_dir", "auth")),
        env=case_env(case) if env is None else env,
    )


# --- clock ----------------------------------------------------------------------------------


def case_clock(case: Mapping[str, Any]) -> FakeClock:
    """The case's clock (``clock.use`` when given as an RFC 3339 time), else the default."""
    use = (case.get("clock") or {}).get("use")
    if isinstance(use, str):
        try:
            return FakeClock(datetime.fromisoformat(use.replace("Z", "+00:00")), frozen=True)
        except ValueError:
            pass
    return FakeClock(frozen=True)


# --- test-double validators -----------------------------------------------------------------


def double(spec: Mapping[str, Any]) -> MockValidator:
    """A double from an ``extra_validators`` entry (``name``, ``type``, ``behaviour``)."""
    mock_table = manifest()["test_doubles"]["validators"]["mock_table"]
    return MockValidator(
        spec["name"],
        spec.get("type", "mock"),
        spec["behaviour"],
        mock_table["table"],
        otherwise=mock_table["otherwise"]["error"],
    )


def extra_validators(case: Mapping[str, Any]) -> list[MockValidator]:
    return [double(spec) for spec in case.get("inputs", {}).get("extra_validators") or ()]


# --- container ------------------------------------------------------------------------------


def _validators_with(
    settings: Settings,
    factories: Mapping[str, ValidatorFactory],
    extras: Mapping[str, Validator],
) -> dict[str, Validator]:
    configured = tuple(v for v in settings.validators if v.name not in extras)
    buildable = tuple(v for v in configured if v.type in factories)
    # Validator types land on their own branches (notaryv1, cosign, notation). Until a type's
    # factory is registered, a configured validator of that type is a not_called stand-in, so
    # cases that never reach it still run; a case that does reach it fails loudly.
    stand_ins = {
        v.name: MockValidator(v.name, v.type, "not_called")
        for v in configured
        if v not in buildable
    }
    return {**stand_ins, **build_validators(buildable, factories), **extras}


def add_extra_validators(container: Container, extras: Sequence[Validator] = ()) -> None:
    """Add ``extras`` to the container's validators by name (they win over configured ones).

    Lazy: the configured validators are still built by the container's own factories when first
    needed, so this works before the HTTP session exists (the webhook creates it on start-up).
    """
    by_name = {v.name: v for v in extras}
    container.validators.override(
        providers.Singleton(
            _validators_with, container.settings, container.factories, providers.Object(by_name)
        )
    )


def case_container(
    settings: Settings,
    extras: Sequence[Validator] = (),
    clock: FakeClock | None = None,
) -> Container:
    """A container for ``settings`` with test doubles and a fake clock (no session yet)."""
    container = build_container(settings, clock or FakeClock(frozen=True))
    add_extra_validators(container, extras)
    return container


@asynccontextmanager
async def running_container(
    settings: Settings,
    extras: Sequence[Validator] = (),
    clock: FakeClock | None = None,
) -> AsyncIterator[Container]:
    """:func:`case_container`, running as the webhook runs it (HTTP session, closed after)."""
    async with running(case_container(settings, extras, clock)) as container:
        yield container


def static_settings(name: str, approve: bool) -> ValidatorSettings:
    return ValidatorSettings(name=name, type="static", approve=approve)


def load_validator_file(path: Path) -> Settings:
    """A configuration holding only the validator file at ``path`` and a catch-all rule,
    through the real loader; ``auth.secretName`` resolves under ``data/auth``.

    Raises:
        ConfigError: every problem of the file, with its path.
    """
    document = read_document(path)
    policy = [{"pattern": "*"}]
    return build_settings(
        {"validators": [document], "policy": policy}, secrets_dir=DATA / "auth", env={}
    )


# --- notation -------------------------------------------------------------------------------

#: The vectors' default clock for notation cases.
NOTATION_CLOCK = datetime(2026, 11, 29, tzinfo=UTC)


def notation_settings(relative: str) -> ValidatorSettings:
    """A notation validator file (under ``data/``) → settings, through the real loader."""
    return load_validator_file(data_path(relative)).validators[0]


def notation_rule_options(rule: Mapping[str, str] | None) -> RuleOptions:
    """A notation case's ``rule`` as the policy's options."""
    rule = rule or {}
    return RuleOptions(
        trust_root=rule.get("trustRoot"),
        verification_level=rule.get("verificationLevel", "strict"),
        verify_timestamp=rule.get("verifyTimestamp", "always"),
    )
