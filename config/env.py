"""Connaisseur's environment variables, read once at start-up; they override the file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from connaisseur.application.settings import Features, Infrastructure, ResourceValidationMode

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


def infrastructure(env: Mapping[str, str]) -> Infrastructure:
    """Redis, Kubernetes API, pod name and alert templates location from the environment."""
    defaults = Infrastructure()
    return Infrastructure(
        redis_host=env.get("REDIS_HOST") or None,
        redis_port=_int(env.get("REDIS_PORT"), defaults.redis_port),
        redis_password=env.get("REDIS_PASSWORD") or None,
        redis_ca_file=env.get("REDIS_CA_FILE") or defaults.redis_ca_file,
        redis_tls=go_bool(env.get("REDIS_TLS"), defaults.redis_tls),
        cache_hmac_key=env.get("CACHE_HMAC_KEY") or None,
        cache_hmac_key_file=env.get("CACHE_HMAC_KEY_FILE") or defaults.cache_hmac_key_file,
        cache_max_entries=_int(env.get("CACHE_MAX_ENTRIES"), defaults.cache_max_entries),
        kube_host=env.get("KUBERNETES_SERVICE_HOST") or None,
        kube_port=env.get("KUBERNETES_SERVICE_PORT") or defaults.kube_port,
        pod_name=env.get("POD_NAME", ""),
        alert_templates_dir=env.get("ALERT_TEMPLATES_DIR") or defaults.alert_templates_dir,
    )


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def alerting_config_file(env: Mapping[str, str]) -> str | None:
    """``ALERTING_CONFIG``: a separate file holding the ``alerting`` block (the chart's Secret)."""
    return env.get("ALERTING_CONFIG") or None
