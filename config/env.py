"""Connaisseur's environment variables (§9.4), read once at start-up; they override the file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from application.settings import Features, ResourceValidationMode

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_bool(value: str | None, default: bool, invalid: bool | None = None) -> bool:
    """Parse like Go's ``strconv.ParseBool``; unset → ``default``, unparsable → ``invalid``."""
    if value is None:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default if invalid is None else invalid


def resource_validation_mode(
    value: str | None, default: ResourceValidationMode
) -> ResourceValidationMode:
    """``podsOnly`` in any case → pods only; any other set value → all."""
    if value is None:
        return default
    if value.lower() == "podsonly":
        return ResourceValidationMode.PODS_ONLY
    return ResourceValidationMode.ALL


def cache_expiry(value: str | None, default: int) -> int:
    """Seconds; unparsable → 30 as Connaisseur does; ≤ 0 disables the cache."""
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return 30


def apply_env(features: Features, env: Mapping[str, str]) -> Features:
    """The features with every Connaisseur variable that is set taking precedence."""
    return replace(
        features,
        automatic_child_approval=go_bool(
            env.get("AUTOMATIC_CHILD_APPROVAL"), features.automatic_child_approval, True
        ),
        automatic_unchanged_approval=go_bool(
            env.get("AUTOMATIC_UNCHANGED_APPROVAL"), features.automatic_unchanged_approval, False
        ),
        detection_mode=go_bool(env.get("DETECTION_MODE"), features.detection_mode, False),
        resource_validation_mode=resource_validation_mode(
            env.get("RESOURCE_VALIDATION_MODE"), features.resource_validation_mode
        ),
        cache_expiry_seconds=cache_expiry(
            env.get("CACHE_EXPIRY_SECONDS"), features.cache_expiry_seconds
        ),
        cache_errors=go_bool(env.get("CACHE_ERRORS"), features.cache_errors, False),
    )
