"""Load a configuration file into frozen :class:`Settings`, reporting every problem with its path.

Steps: read YAML (``yaml.safe_load``); unwrap a Helm values file; validate with the marshmallow
schemas (unknown keys are errors); parse keys, certificates, hosts and patterns; resolve
``auth.secretName`` against the secrets directory; apply the environment overrides.

The ``alerting`` block may instead come from a file of its own (``--alerting-config`` or
``ALERTING_CONFIG``; Connaisseur's ``/app/alerts/config.yaml``), so that receiver URLs and
headers, which carry credentials, can be mounted from a Secret rather than a ConfigMap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml
from marshmallow import Schema, ValidationError

from connaisseur.application.settings import (
    Features,
    NamespacedValidationMode,
    ResourceValidationMode,
    Settings,
    TransparencySettings,
    ValidatorSettings,
)
from connaisseur.config import schema
from connaisseur.config.auth import load_auth
from connaisseur.config.env import alerting_config_file, apply_env, infrastructure
from connaisseur.domain.errors import ConfigError, ConnaisseurError
from connaisseur.domain.policy import Mode, Policy, Rule, RuleOptions
from connaisseur.domain.trust import (
    KeylessIdentity,
    TrustRoot,
    duplicate_names,
    load_certificates,
    load_public_key,
)
from connaisseur.domain.urls import SafeUrl

_T = TypeVar("_T")

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
DEFAULT_SECRETS_DIR = Path("/app/secrets")
#: Key references resolved at verification time instead of parsed as PEM.
SUPPORTED_KEY_REFS = ("k8s://",)
KMS_SCHEMES = ("awskms://", "gcpkms://", "azurekms://", "hashivault://")


@dataclass(frozen=True)
class AlertingFile:
    """The decoded content of a separate alerting config file and where it was read from."""

    path: Path
    document: Any


def load_settings(
    path: Path | None = None,
    *,
    secrets_dir: Path | None = DEFAULT_SECRETS_DIR,
    env: Mapping[str, str] | None = None,
    alerting_config: Path | None = None,
) -> Settings:
    """Read, validate and freeze a configuration; ``None`` means the built-in default.

    ``secrets_dir=None`` leaves ``auth.secretName`` unresolved (for ``explain``: no network).
    ``alerting_config`` (else ``ALERTING_CONFIG`` of ``env``) names a file holding the
    ``alerting`` block alone.

    Raises:
        ConfigError: a file is unreadable or invalid; ``problems`` lists every error.
    """
    env = env or {}
    config_path = path or DEFAULT_CONFIG
    document = read_document(config_path)
    return build_settings(
        document,
        secrets_dir=secrets_dir,
        env=env,
        alerting_file=read_alerting_file(alerting_config, env),
        source=str(config_path),
    )


def read_alerting_file(path: Path | None, env: Mapping[str, str]) -> AlertingFile | None:
    """The alerting config file named by ``path`` or else ``ALERTING_CONFIG``; ``None`` if neither.

    Raises:
        ConfigError: the file is missing, unreadable or not YAML.
    """
    named = path or alerting_config_file(env)
    if named is None:
        return None
    return AlertingFile(Path(named), read_document(Path(named), "alerting configuration"))


def read_document(path: Path, what: str = "configuration") -> Any:
    """The YAML document at ``path``.

    Raises:
        ConfigError: missing, unreadable or not YAML.
    """
    try:
        return yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {e.start})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {e}") from e
    except RecursionError as e:  # PyYAML recurses once per nesting level
        raise ConfigError(f"{what} {path} is nested too deeply") from e


def build_settings(
    document: Any,
    *,
    secrets_dir: Path | None,
    env: Mapping[str, str],
    alerting_file: AlertingFile | None = None,
    source: str = "the configuration",
) -> Settings:
    """Validate a decoded document (and a separate alerting file) and build :class:`Settings`.

    Raises:
        ConfigError: listing every problem found, each with its path.
    """
    app, alerting, section = _application_section(document)
    problems: list[str] = []
    data = _load(schema.ApplicationSchema(), app, "", problems)
    validators = _validators(data.get("validators", []), secrets_dir, problems)
    policy = _policy(data.get("policy", []), problems)
    problems = _qualified(problems, section)
    alerting = _alerting_source(alerting, alerting_file, source, problems)
    alerting_data = (
        _load(schema.AlertingSchema(), alerting, "alerting", problems) if alerting else None
    )
    if problems:
        raise ConfigError(f"configuration has {len(problems)} error(s)", tuple(problems))
    features = apply_env(_features(data.get("features") or {}), env)
    return Settings(
        validators=tuple(validators),
        policy=Policy(tuple(policy)),
        features=features,
        alerting=alerting_data,
        infra=infrastructure(env),
        log_level=str(env.get("LOG_LEVEL") or data.get("logLevel") or "info"),
        log_format=str(env.get("LOG_FORMAT") or data.get("logFormat") or "json"),
    )


def _alerting_source(
    inline: Any, alerting_file: AlertingFile | None, source: str, problems: list[str]
) -> Any:
    """The one ``alerting`` block, inline or from its own file; both at once is an error."""
    if alerting_file is None or alerting_file.document is None:
        return inline
    if inline is not None:
        problems.append(
            f"alerting: defined both in {source} and in {alerting_file.path}; keep it in one"
        )
        return None
    return alerting_file.document


def _application_section(document: Any) -> tuple[Any, Any, str]:
    """The application section, the alerting section, and where the former sits in the file."""
    if not isinstance(document, Mapping):
        raise ConfigError("configuration must be a YAML mapping")
    if "application" in document:
        problems: list[str] = []
        values = _load(schema.ValuesSchema(), document, "", problems)
        if problems:
            raise ConfigError("invalid values file", tuple(problems))
        return values["application"], values.get("alerting"), "application"
    app = {k: v for k, v in document.items() if k != "alerting"}
    return app, document.get("alerting"), ""


def _qualified(problems: list[str], section: str) -> list[str]:
    """Prefix problem paths with ``section`` so they point into the file as written."""
    if not section:
        return problems
    root = "<root>"
    return [section + p[len(root) :] if p.startswith(root) else f"{section}.{p}" for p in problems]


def _load(s: Schema, raw: Any, path: str, problems: list[str]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = s.load(raw if raw is not None else {})
        return result
    except ValidationError as e:
        problems.extend(_flatten(e.messages, path))
        valid = e.valid_data
        return valid if isinstance(valid, dict) else {}


def _flatten(messages: Any, path: str) -> list[str]:
    if isinstance(messages, Mapping):
        out = []
        for key, value in messages.items():
            if key == "_schema":
                out += _flatten(value, path)
            elif isinstance(key, int):
                out += _flatten(value, f"{path}[{key}]")
            else:
                out += _flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path or '<root>'}: {m}" for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, path)]
    return [f"{path or '<root>'}: {messages}"]


def _validators(
    raw: list[Any], secrets_dir: Path | None, problems: list[str]
) -> list[ValidatorSettings]:
    out = []
    for i, entry in enumerate(raw):
        path = f"validators[{i}]"
        before = len(problems)
        if not isinstance(entry, Mapping):
            problems.append(f"{path}: must be a mapping")
            continue
        vtype = entry.get("type")
        cls = schema.VALIDATOR_SCHEMAS.get(vtype) if isinstance(vtype, str) else None
        if cls is None:
            what = "missing" if vtype is None else f"unsupported type {vtype!r}"
            problems.append(f"{path}.type: {what} (one of {', '.join(schema.VALIDATOR_TYPES)})")
            continue
        # Even after schema errors, check what did load (keys, hosts, certificates), so one
        # pass of check-config reports every problem.
        data = _load(cls(), entry, path, problems)
        validator = _validator(data, str(vtype), secrets_dir, path, problems)
        if validator is not None and len(problems) == before:
            out.append(validator)
    return out


def _validator(
    data: dict[str, Any], vtype: str, secrets_dir: Path | None, path: str, problems: list[str]
) -> ValidatorSettings | None:
    """Parse what the schema let through; every failing part is added to ``problems``."""
    before = len(problems)

    def checked(parse: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return parse(*args)
        except ConnaisseurError as e:
            problems.extend(e.problems if isinstance(e, ConfigError) else [f"{path}: {e.message}"])
            return None

    roots = [
        checked(_trust_root, r, vtype, f"{path}.trustRoots[{j}]")
        for j, r in enumerate(data.get("trustRoots") or [])
        if isinstance(r, Mapping) and "name" in r
    ]
    twice = duplicate_names([r for r in roots if r is not None])
    if twice:
        problems.append(
            f"{path}.trustRoots: names used more than once: {', '.join(twice)} "
            "(each trust root is one signer)"
        )
    host = data.get("host")
    notary_host = checked(_notary_host, host, f"{path}.host") if vtype == "notaryv1" else None
    transparency = checked(_transparency, host, f"{path}.host") if vtype == "cosign" else None
    cert = checked(_certificate, data.get("cert"), f"{path}.cert")
    auth = checked(load_auth, data.get("auth"), secrets_dir, f"{path}.auth", vtype, notary_host)
    if len(problems) != before or "name" not in data or auth is None:
        return None
    return ValidatorSettings(
        name=data["name"],
        type=vtype,
        approve=bool(data.get("approve", False)),
        host=notary_host,
        transparency=transparency,
        cert=cert,
        auth=auth,
        trust_roots=tuple(r for r in roots if r is not None),
    )


def _trust_root(raw: dict[str, Any], vtype: str, path: str) -> TrustRoot:
    key = raw.get("key")
    if key is not None:
        _check_key(key, vtype, f"{path}.key")
    for field in ("cert", "tsCert"):
        _certificate(raw.get(field), f"{path}.{field}")
    if "storeType" in raw and vtype != "notation":
        raise ConfigError(f"{path}.storeType: only notation trust roots have a store type")
    return TrustRoot(
        name=raw["name"],
        key=key,
        cert=raw.get("cert"),
        ts_cert=raw.get("tsCert"),
        keyless=keyless_identity(raw.get("keyless")),
        store_type=raw.get("storeType"),
    )


def keyless_identity(raw: Mapping[str, Any] | None) -> KeylessIdentity | None:
    """A trust root's ``keyless`` block (issuer/subject, exact or regex); ``None`` when absent."""
    if not raw:
        return None
    return KeylessIdentity(
        issuer=raw.get("issuer"),
        subject=raw.get("subject"),
        issuer_regex=raw.get("issuerRegex"),
        subject_regex=raw.get("subjectRegex"),
    )


def _check_key(key: str, vtype: str, path: str) -> None:
    if vtype == "cosign" and key.startswith(SUPPORTED_KEY_REFS):
        return
    if key.startswith(KMS_SCHEMES):
        raise ConfigError(f"{path}: key reference {key.split('://')[0]}:// is not supported")
    try:
        load_public_key(key)
    except ConnaisseurError as e:
        raise ConfigError(f"{path}: {e.message}") from e


def _certificate(pem: str | None, path: str) -> str | None:
    if pem is None:
        return None
    try:
        load_certificates(pem)
    except ConnaisseurError as e:
        raise ConfigError(f"{path}: invalid certificate ({e.message})") from e
    return pem


def _notary_host(host: str | None, path: str) -> str:
    url = host or "https://notary.docker.io"
    if "://" not in url:
        url = "https://" + url
    return _checked_url(url, path)


def _transparency(host: dict[str, Any] | None, path: str) -> TransparencySettings:
    host = host or {}
    rekor = host.get("rekor")
    if rekor is not None:
        rekor = _checked_url(rekor if "://" in rekor else "https://" + rekor, f"{path}.rekor")
    for field in ("rekorPubkey", "ctLogPubkey"):
        if host.get(field) is not None:
            _check_key(host[field], "", f"{path}.{field}")
    return TransparencySettings(
        rekor=rekor,
        rekor_pubkey=host.get("rekorPubkey"),
        fulcio_cert=_certificate(host.get("fulcioCert"), f"{path}.fulcioCert"),
        ct_log_pubkey=host.get("ctLogPubkey"),
    )


def _checked_url(url: str, path: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise ConfigError(f"{path}: invalid URL {str(SafeUrl.of(url))!r}") from e
    # urlsplit accepts spaces and control characters in the host; a URL never contains them.
    malformed = any(c.isspace() or not c.isprintable() for c in url)
    if parts.scheme not in ("http", "https") or not parts.hostname or malformed:
        raise ConfigError(f"{path}: invalid URL {str(SafeUrl.of(url))!r}")
    return url.rstrip("/")


def _policy(raw: list[dict[str, Any]], problems: list[str]) -> list[Rule]:
    rules = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "pattern" not in entry:
            continue  # the schema has already reported this entry's problems
        try:
            rules.append(
                Rule(
                    pattern=entry["pattern"],
                    validator=entry.get("validator") or "default",
                    options=_options(entry.get("with_") or {}),
                )
            )
        except ConnaisseurError as e:
            problems.append(f"policy[{i}].pattern: {e.message}")
    return rules


def _options(w: dict[str, Any]) -> RuleOptions:
    return RuleOptions(
        trust_root=w.get("trustRoot"),
        threshold=w.get("threshold"),
        required=tuple(w.get("required") or ()),
        delegations=tuple(w.get("delegations") or ()),
        verify_in_transparency_log=w.get("verifyInTransparencyLog"),
        verify_sct=w.get("verifySCT"),
        ignore_reference=bool(w.get("ignoreReference", False)),
        mode=Mode(w.get("mode", "mutate")),
        verification_level=w.get("verificationLevel", "strict"),
        verify_timestamp=w.get("verifyTimestamp", "always"),
    )


def _features(f: dict[str, Any]) -> Features:
    defaults = Features()
    cache = f.get("cache") or {}
    namespaced = f.get("namespacedValidation")
    return replace(
        defaults,
        automatic_child_approval=f.get("automaticChildApproval", defaults.automatic_child_approval),
        automatic_unchanged_approval=f.get(
            "automaticUnchangedApproval", defaults.automatic_unchanged_approval
        ),
        detection_mode=f.get("detectionMode", defaults.detection_mode),
        resource_validation_mode=ResourceValidationMode(f.get("resourceValidationMode", "all")),
        namespaced_validation=NamespacedValidationMode(namespaced.get("mode", "ignore"))
        if namespaced
        else None,
        cache_expiry_seconds=cache.get("expirySeconds", defaults.cache_expiry_seconds),
        cache_errors=cache.get("cacheErrors", defaults.cache_errors),
    )
