"""Load a configuration file into frozen :class:`Settings`, reporting every problem with its path.

Steps: read YAML (``yaml.safe_load``); unwrap a Helm values file; validate with the marshmallow
schemas (unknown keys are errors); parse each validator (keys, certificates, URLs, identities,
credentials: :mod:`connaisseur.config.validators`) and the policy's patterns; apply the
environment overrides. The result is checked once, here: code that receives it does not check
it again.

The ``alerting`` block may instead come from a file of its own (``--alerting-config`` or
``ALERTING_CONFIG``; Connaisseur's ``/app/alerts/config.yaml``), so that receiver URLs and
headers, which carry credentials, can be mounted from a Secret rather than a ConfigMap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from connaisseur.application.settings import (
    Features,
    NamespacedValidationMode,
    ResourceValidationMode,
    Settings,
    ValidatorSettings,
)
from connaisseur.config import schema
from connaisseur.config.configuration import Configuration, TrustDataSources
from connaisseur.config.env import alerting_config_file, apply_env, infrastructure
from connaisseur.config.mirrors import Mirror, RegistryMirrors, load_mirrors
from connaisseur.config.validators import (
    bundle_directory,
    load_validator,
    parse_attestations,
    parse_repository,
    parse_source,
    rule_option_problems,
)
from connaisseur.domain.errors import ConfigError, ConnaisseurError
from connaisseur.domain.policy import Mode, Policy, Rule, RuleOptions

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
DEFAULT_SECRETS_DIR = Path("/app/secrets")


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
    offline: Path | None = None,
) -> Settings:
    """Read, validate and freeze a configuration; ``None`` means the built-in default.

    ``secrets_dir=None`` leaves ``auth.secretName`` unresolved and bundle directories unchecked
    (for ``explain``: no trust data is read). ``alerting_config`` (else ``ALERTING_CONFIG`` of
    ``env``) names a file holding the ``alerting`` block alone. ``offline`` names a bundle every
    signature validator reads instead of its upstreams (``--offline``,
    docs/decisions/0055-offline-bundles.md).

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
        offline=offline,
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
    offline: Path | None = None,
) -> Settings:
    """Validate a decoded document (and a separate alerting file) and build :class:`Settings`
    (a :class:`Configuration`, which also says where each validator reads trust data).

    Raises:
        ConfigError: listing every problem found, each with its path.
    """
    app, alerting, section = _application_section(document)
    problems: list[str] = []
    data = schema.load(schema.ApplicationSchema(), app, "", problems)
    validators, own_mirrors = _validators(data.get("validators", []), secrets_dir, problems)
    shared_mirrors = _mirrors(data.get("mirrors"), secrets_dir, "mirrors", problems)
    sources = _sources(
        data.get("validators", []),
        validators,
        offline,
        problems,
        check_files=secrets_dir is not None,
    )
    policy = _policy(data.get("policy", []), problems)
    problems.extend(_rule_option_types(data.get("policy", []), data.get("validators", [])))
    problems = _qualified(problems, section)
    alerting = _alerting_source(alerting, alerting_file, source, problems)
    alerting_data = (
        schema.load(schema.AlertingSchema(), alerting, "alerting", problems) if alerting else None
    )
    if problems:
        raise ConfigError(f"configuration has {len(problems)} error(s)", tuple(problems))
    features = apply_env(_features(data.get("features") or {}), env)
    return Configuration(
        sources=sources,
        mirrors=RegistryMirrors(shared=shared_mirrors, by_validator=tuple(own_mirrors)),
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
        values = schema.load(schema.ValuesSchema(), document, "", problems)
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


def _validators(
    raw: list[Any], secrets_dir: Path | None, problems: list[str]
) -> tuple[list[ValidatorSettings], list[tuple[str, tuple[Mirror, ...]]]]:
    """Every validator, and the ``mirrors`` of those that list their own."""
    out, mirrors = [], []
    for i, entry in enumerate(raw):
        try:
            settings = load_validator(entry, secrets_dir, f"validators[{i}]")
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        out.append(settings)
        own = _mirrors(entry.get("mirrors"), secrets_dir, f"validators[{i}].mirrors", problems)
        if own:
            mirrors.append((settings.name, own))
    return out, mirrors


def _mirrors(
    raw: Any, secrets_dir: Path | None, path: str, problems: list[str]
) -> tuple[Mirror, ...]:
    try:
        return load_mirrors(raw, secrets_dir, path)
    except ConfigError as e:
        problems.extend(e.problems)
        return ()


def _sources(
    raw: list[Any],
    validators: list[ValidatorSettings],
    offline: Path | None,
    problems: list[str],
    *,
    check_files: bool,
) -> TrustDataSources:
    """Each validator's offline bundle: ``offline`` for every signature validator when given
    (the whole process is offline), else its own ``source`` (checked even when other parts of
    the entry have problems, so that one pass reports them all)."""
    bundles: list[tuple[str, Path]] = []
    if offline is not None:
        try:
            directory = bundle_directory(str(offline), "--offline", check_files=check_files)
        except ConfigError as e:
            problems.extend(e.problems)
            return TrustDataSources()
        bundles = [(v.name, directory) for v in validators if v.type != "static"]
        return TrustDataSources(bundles=tuple(bundles))
    for i, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str):
            continue  # the schema reported it
        try:
            path = f"validators[{i}].source"
            bundle = parse_source(entry.get("source"), path, check_files=check_files)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        if bundle is not None:
            bundles.append((str(name), bundle))
    return TrustDataSources(bundles=tuple(bundles))


def _policy(raw: list[dict[str, Any]], problems: list[str]) -> list[Rule]:
    rules = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "pattern" not in entry:
            continue  # the schema has already reported this entry's problems
        options = entry.get("with_") or {}
        where = options.get("signatureRepository")
        try:
            where = where and parse_repository(where, f"policy[{i}].with.signatureRepository")
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        try:
            rules.append(
                Rule(
                    pattern=entry["pattern"],
                    validator=entry.get("validator") or "default",
                    options=_options(
                        {**options, "signatureRepository": where}, f"policy[{i}].with"
                    ),
                )
            )
        except ConfigError as e:
            problems.extend(e.problems)
        except ConnaisseurError as e:
            problems.append(f"policy[{i}].pattern: {e.message}")
    return rules


def _rule_option_types(rules: list[Any], validators: list[Any]) -> list[str]:
    """Options of each rule its validator's type does not read."""
    # Runs before the schema's verdict is final: names of the wrong type are its to report.
    types = {
        v["name"]: v.get("type")
        for v in reversed(validators)
        if isinstance(v, Mapping) and isinstance(v.get("name"), str)
    }
    problems = []
    for i, rule in enumerate(rules):
        if isinstance(rule, Mapping) and isinstance(rule.get("with_"), Mapping):
            named = rule.get("validator") or "default"
            vtype = types.get(named) if isinstance(named, str) else None
            problems += rule_option_problems(
                rule["with_"], vtype if isinstance(vtype, str) else None, f"policy[{i}].with"
            )
    return problems


def _options(w: dict[str, Any], path: str) -> RuleOptions:
    """The rule's ``with`` block.

    Raises:
        ConfigError: an attestation condition whose path or regex does not parse.
    """
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
        signature_format=w.get("signatureFormat", "any"),
        attestations=parse_attestations(w.get("attestations") or [], f"{path}.attestations"),
        signature_repository=w.get("signatureRepository"),
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
