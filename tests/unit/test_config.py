"""Configuration: strict schemas, path-qualified errors, values vs application config, env."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connaisseur.application.caching import fingerprint_hash, stable
from connaisseur.application.settings import ResourceValidationMode
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import DEFAULT_CONFIG, build_settings, load_settings
from connaisseur.domain.errors import Category, ConfigError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.trust import KubernetesKeyRef
from tests.support.notation_signing import make_ca

KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsx28WV7BsQfnHF1kZmpdCTTLJaWe
d0CA+JOi8H4REuBaWSZ5zPDe468WuOJ6f71E7WFg3CVEVYHuoZt2UYbN/Q==
-----END PUBLIC KEY-----
"""
STATIC = {"name": "allow", "type": "static", "approve": True}


def app(**overrides: Any) -> dict[str, Any]:
    return {"validators": [STATIC], "policy": [{"pattern": "*", "validator": "allow"}], **overrides}


def notary(**fields: Any) -> dict[str, Any]:
    return {
        "name": "nv",
        "type": "notaryv1",
        "trustRoots": [{"name": "default", "key": KEY}],
        **fields,
    }


def problem_paths(document: Any) -> set[str]:
    """Where the problems of ``document`` are (the path before each message's colon)."""
    return {problem.split(":")[0] for problem in problems_of(document)}


def problems_of(document: Any, secrets_dir: Path = Path("/nonexistent")) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        build_settings(document, secrets_dir=secrets_dir, env={})
    assert info.value.category is Category.CONFIG_INVALID
    return info.value.problems


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (app(policy=[{"pattern": "*", "with": {"threshold": -1}}]), "policy[0].with.threshold: "),
        (app(policy=[{"pattern": "*", "with": {"threshold": "2"}}]), "policy[0].with.threshold: "),
        (app(policy=[{"pattern": "*", "with": {"threshold": True}}]), "policy[0].with.threshold: "),
        (app(policy=[{"pattern": "*", "with": {"mode": "yolo"}}]), "policy[0].with.mode: "),
        (
            app(policy=[{"pattern": "*", "with": {"verifyTimestamp": "x"}}]),
            "policy[0].with.verifyTimestamp: ",
        ),
        (app(policy=[{"pattern": "*", "with": {"required": []}}]), "policy[0].with.required: "),
        (
            app(policy=[{"pattern": "*", "with": {"delegations": [""]}}]),
            "policy[0].with.delegations[0]: ",
        ),
        (
            app(policy=[{"pattern": "*", "with": {"bogus": 1}}]),
            "policy[0].with.bogus: Unknown field",
        ),
        (
            app(policy=[{"pattern": "*"}, {"pattern": "my.reg/[x"}]),
            "policy[1].pattern: invalid pattern",
        ),
        (app(policy=[{"pattern": "*"}, {"validator": "allow"}]), "policy[1].pattern: Missing data"),
        (app(policy=[]), "policy: "),
        (app(validators=[]), "validators: "),
        (app(bogus=1), "bogus: Unknown field"),
        (app(features={"detectionMode": "maybe"}), "features.detectionMode: "),
        (app(features={"cache": {"expirySeconds": "x"}}), "features.cache.expirySeconds: "),
        (app(features={"resourceValidationMode": "some"}), "features.resourceValidationMode: "),
        (
            app(alerting={"admitRequest": {"receivers": [{"template": "x"}]}}),
            "alerting.admitRequest.receivers[0].receiverUrl: ",
        ),
        (
            app(validators=[STATIC, {"name": "s", "type": "static", "approve": "yes please"}]),
            "validators[1].approve: ",
        ),
        (
            app(validators=[{"name": "s", "type": "static", "trustRoots": []}]),
            "validators[0].trustRoots: Unknown field",
        ),
        (
            app(validators=[notary(trustRoots=[{"name": "default", "key": "garbage"}])]),
            "validators[0].trustRoots[0].key: ",
        ),
        (
            app(validators=[notary(trustRoots=[{"name": "default", "key": KEY + "x"}])]),
            "validators[0].trustRoots[0].key: ",
        ),
        (
            app(validators=[notary(trustRoots=[{"name": "default", "key": "awskms://k"}])]),
            "validators[0].trustRoots[0].key: key reference awskms:// is not supported",
        ),
        (app(validators=[notary(cert="not a cert")]), "validators[0].cert: invalid certificate"),
        (app(validators=[notary(host="https://bad host")]), "validators[0].host: invalid URL"),
        (
            app(validators=[notary(auth={"secretName": "x", "bogus": 1})]),
            "validators[0].auth.bogus: Unknown field",
        ),
        (app(validators=[notary(auth={})]), "validators[0].auth: neither secretName"),
        (
            app(validators=[notary(auth={"secretName": "missing"})]),
            "validators[0].auth: no authentication file for secret missing",
        ),
        (
            app(validators=[notary(auth={"secretName": "../../etc"})]),
            "validators[0].auth: invalid secret name '../../etc'",
        ),
        (
            app(
                validators=[
                    {
                        "name": "c",
                        "type": "cosign",
                        "host": {"rekor": ":\\\\"},
                        "trustRoots": [{"name": "default", "key": KEY}],
                    }
                ]
            ),
            "validators[0].host.rekor: invalid URL",
        ),
        (
            app(
                validators=[
                    {
                        "name": "c",
                        "type": "cosign",
                        "trustRoots": [{"name": "k", "keyless": {"issuer": "i"}}],
                    }
                ]
            ),
            "validators[0].trustRoots[0].keyless: exactly one of subject and subjectRegex",
        ),
        ([STATIC], "configuration must be a YAML mapping"),
        (
            app(
                validators=[notary(trustRoots=[{"name": "default", "key": KEY, "storeType": "ca"}])]
            ),
            "validators[0].trustRoots[0].storeType: only notation trust roots",
        ),
        (
            app(
                validators=[
                    {
                        "name": "n",
                        "type": "notation",
                        "trustRoots": [{"name": "default", "cert": "x", "storeType": "tsa"}],
                    }
                ]
            ),
            "validators[0].trustRoots[0].storeType: Must be one of",
        ),
    ],
)
def test_every_error_names_its_path(document: Any, problem: str) -> None:
    problems = problems_of(document)
    assert any(p.startswith(problem) or problem in p for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    document = app(
        validators=[STATIC, {"name": "", "type": "static"}],
        policy=[{"pattern": "*", "with": {"threshold": -1}}, {"pattern": "["}],
        bogus=True,
    )
    assert problem_paths(document) == {
        "validators[1].name",
        "policy[0].with.threshold",
        "policy[1].pattern",
        "bogus",
    }


def test_deeper_checks_still_run_next_to_schema_errors_of_the_same_validator() -> None:
    """One pass of check-config lists every problem, not only the schema's."""
    broken = notary(
        host="https://bad host",
        cert="not a certificate",
        trustRoots=[{"name": "a", "key": "not a key"}, {"name": "b", "key": KEY}, {"key": KEY}],
    )
    assert problem_paths(app(validators=[STATIC, broken])) == {
        "validators[1].trustRoots[2].name",
        "validators[1].trustRoots[0].key",
        "validators[1].host",
        "validators[1].cert",
    }


def test_what_each_validator_type_needs_is_reported_for_every_validator_in_one_pass() -> None:
    """Trust anchors a validator type cannot use, an incomplete keyless identity and a bad
    Rekor URL are found by the loader, all at once, each with its path (they used to surface
    one at a time, when the first validator was constructed)."""
    cert = {"name": "c", "cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}
    cosign = {
        "name": "cs",
        "type": "cosign",
        "host": {"rekor": "ftp://rekor.example"},
        "trustRoots": [
            {"name": "half", "keyless": {"issuer": "https://issuer"}},
            {"name": "ref", "key": "k8s://Not A Ref/x"},
        ],
    }
    notation = {"name": "nt", "type": "notation", "trustRoots": [{"name": "k", "key": KEY}]}
    assert problem_paths(app(validators=[STATIC, cosign, notation, notary(trustRoots=[cert])])) == {
        "validators[1].host.rekor",
        "validators[1].trustRoots[0].keyless",
        "validators[1].trustRoots[1].key",
        "validators[2].trustRoots[0].cert",
        "validators[3].trustRoots[0].cert",
    }


def test_a_keyless_regex_that_does_not_compile_is_refused() -> None:
    keyless = {"issuerRegex": "(", "subject": "me"}
    cosign = {"name": "cs", "type": "cosign", "trustRoots": [{"name": "k", "keyless": keyless}]}
    (problem,) = problems_of(app(validators=[cosign]))
    assert problem.startswith("validators[0].trustRoots[0].keyless.issuerRegex: invalid regular")


def test_the_validator_fingerprint_is_the_same_in_every_process() -> None:
    """Cache keys (D5) hash the parsed settings; a parsed key must not leak an object ``repr``
    (which differs between processes, so replicas sharing Redis would never hit)."""
    cosign = {"name": "cs", "type": "cosign", "trustRoots": [{"name": "k", "key": KEY}]}
    first, second = (
        build_settings(app(validators=[cosign]), secrets_dir=None, env={}) for _ in "12"
    )
    a, b = first.validators[0], second.validators[0]
    assert a.trust_roots[0].key is not b.trust_roots[0].key
    assert fingerprint_hash(a.fingerprint()) == fingerprint_hash(b.fingerprint())
    assert "object at 0x" not in json.dumps(stable(a.fingerprint()))


def test_kms_and_k8s_key_references(tmp_path: Path) -> None:
    cosign = {
        "name": "c",
        "type": "cosign",
        "trustRoots": [{"name": "default", "key": "k8s://ns/secret"}],
    }
    settings = build_settings(app(validators=[cosign]), secrets_dir=tmp_path, env={})
    ref = settings.validators[0].trust_roots[0].key_ref
    assert ref == KubernetesKeyRef(namespace="ns", name="secret")
    # k8s:// is a cosign feature only
    notary_ref = notary(trustRoots=[{"name": "default", "key": "k8s://ns/secret"}])
    assert problems_of(app(validators=[notary_ref]))


def _write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def test_values_file_and_application_config_give_the_same_settings(tmp_path: Path) -> None:
    alerting = {
        "clusterIdentifier": "c1",
        "admitRequest": {"receivers": [{"template": "slack", "receiverUrl": "https://h"}]},
    }
    application = app(features={"detectionMode": True})
    values = {
        "kubernetes": {"deployment": {"replicasCount": 3}},
        "application": application,
        "alerting": alerting,
    }
    from_values = load_settings(_write(tmp_path / "values.yaml", values))
    from_app = load_settings(
        _write(tmp_path / "config.yaml", {**application, "alerting": alerting})
    )
    assert from_values.validators == from_app.validators
    assert [r.pattern for r in from_values.policy.rules] == [
        r.pattern for r in from_app.policy.rules
    ]
    assert from_values.features == from_app.features
    assert from_values.features.detection_mode
    assert from_values.alerting == from_app.alerting
    assert from_values.alerting["clusterIdentifier"] == "c1"


def test_values_file_problems_point_into_the_application_section(tmp_path: Path) -> None:
    values = {
        "kubernetes": {},
        "application": app(policy=[{"pattern": "*", "with": {"threshold": -1}}]),
    }
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path / "values.yaml", values))
    assert info.value.problems == (
        "application.policy[0].with.threshold: Must be greater than or equal to 0.",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path / "values.yaml", {"application": None}))
    assert info.value.problems[0].startswith("application: ")


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("validators: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


@pytest.mark.parametrize(
    ("file_features", "env", "field", "value"),
    [
        ({"detectionMode": False}, {"DETECTION_MODE": "true"}, "detection_mode", True),
        ({"detectionMode": True}, {"DETECTION_MODE": "0"}, "detection_mode", False),
        ({"detectionMode": True}, {"DETECTION_MODE": "nonsense"}, "detection_mode", False),
        ({"detectionMode": True}, {}, "detection_mode", True),
        (
            {"automaticChildApproval": False},
            {"AUTOMATIC_CHILD_APPROVAL": "nonsense"},
            "automatic_child_approval",
            True,
        ),
        ({"automaticChildApproval": False}, {}, "automatic_child_approval", False),
        (
            {"automaticUnchangedApproval": True},
            {"AUTOMATIC_UNCHANGED_APPROVAL": "F"},
            "automatic_unchanged_approval",
            False,
        ),
        (
            {},
            {"RESOURCE_VALIDATION_MODE": "PODSONLY"},
            "resource_validation_mode",
            ResourceValidationMode.PODS_ONLY,
        ),
        (
            {"resourceValidationMode": "podsOnly"},
            {"RESOURCE_VALIDATION_MODE": "other"},
            "resource_validation_mode",
            ResourceValidationMode.ALL,
        ),
        (
            {"cache": {"expirySeconds": 60}},
            {"CACHE_EXPIRY_SECONDS": "oops"},
            "cache_expiry_seconds",
            30,
        ),
        (
            {"cache": {"expirySeconds": 60}},
            {"CACHE_EXPIRY_SECONDS": "0"},
            "cache_expiry_seconds",
            0,
        ),
        ({"cache": {"cacheErrors": True}}, {"CACHE_ERRORS": "not a bool"}, "cache_errors", False),
        ({"cache": {"cacheErrors": False}}, {}, "cache_errors", False),
    ],
)
def test_environment_overrides_the_file(
    file_features: dict[str, Any], env: dict[str, str], field: str, value: Any
) -> None:
    settings = build_settings(app(features=file_features), secrets_dir=Path("/x"), env=env)
    assert getattr(settings.features, field) == value


def test_log_settings_come_from_env_then_file() -> None:
    settings = build_settings(
        app(logLevel="debug"), secrets_dir=Path("/x"), env={"LOG_FORMAT": "pretty"}
    )
    assert (settings.log_level, settings.log_format) == ("debug", "pretty")


def test_auth_secret_name_is_resolved_in_the_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "secret.yaml").write_text(
        "username: u\npassword: s3cr3t-plain\nregistry: https://my.reg/team/\n"
    )
    (tmp_path / "docker").mkdir()
    auth = base64.b64encode(b"du:s3cr3t-docker").decode()
    (tmp_path / "docker" / ".dockerconfigjson").write_text(
        json.dumps({"auths": {"other.reg": {"auth": auth}}})
    )
    document = app(
        validators=[
            notary(auth={"secretName": "plain"}),
            notary(name="nv2", auth={"secretName": "docker"}),
        ]
    )
    settings = build_settings(document, secrets_dir=tmp_path, env={})
    plain, docker = settings.validators[0].auth, settings.validators[1].auth
    assert plain.secret_name == "plain"
    creds = plain.lookup("my.reg", "team/app")
    assert creds is not None
    assert (creds.username, creds.password) == ("u", "s3cr3t-plain")
    assert plain.lookup("my.reg", "other") is None
    creds = docker.lookup("other.reg", "x")
    assert creds is not None
    assert (creds.username, creds.password) == ("du", "s3cr3t-docker")
    assert "s3cr3t" not in repr(settings)  # secrets stay out of reprs


def test_auth_secret_that_is_not_yaml_is_a_path_qualified_error(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "secret.yaml").write_text("just a string")
    problems = problems_of(app(validators=[notary(auth={"secretName": "broken"})]), tmp_path)
    assert problems[0].startswith("validators[0].auth")


# --- the shipped default configuration ------------------------------------------------------


def test_default_configuration_loads_with_the_charts_defaults() -> None:
    settings = load_settings()
    assert [(v.name, v.type) for v in settings.validators] == [
        ("allow", "static"),
        ("deny", "static"),
        ("dockerhub", "notaryv1"),
    ]
    dockerhub = settings.validator("dockerhub")
    assert dockerhub is not None
    assert dockerhub.host == "https://notary.docker.io"
    assert [r.name for r in dockerhub.trust_roots] == ["sse"]
    assert [(r.pattern, r.validator) for r in settings.policy.rules] == [
        ("*:*", "deny"),
        (
            "docker.io/library/redis@sha256:83edc2b8e9ffb1781a67bdab260a94674f802881838e20bba0f9a69d8cb40d70",
            "allow",
        ),
        ("docker.io/securesystemsengineering/*:*", "dockerhub"),
        ("registry.k8s.io/*:*", "allow"),
    ]
    features = settings.features
    assert features.automatic_child_approval
    assert not features.automatic_unchanged_approval
    assert not features.detection_mode
    assert features.resource_validation_mode is ResourceValidationMode.ALL
    assert (features.cache_expiry_seconds, features.cache_errors) == (30, True)
    explicit = load_settings(DEFAULT_CONFIG)
    assert explicit.validators == settings.validators


@pytest.mark.parametrize(
    ("image", "validator"),
    [
        ("nginx", "deny"),
        ("registry.k8s.io/pause:3.9", "allow"),
        ("attacker.example/registry.k8s.io/evil:1", "deny"),  # D1
        ("securesystemsengineering/testimage:signed", "dockerhub"),
        ("redis@sha256:83edc2b8e9ffb1781a67bdab260a94674f802881838e20bba0f9a69d8cb40d70", "allow"),
        ("redis:7", "deny"),
    ],
)
def test_default_policy_routes_images(image: str, validator: str) -> None:
    policy = load_settings().policy
    assert policy.match(ImageReference.parse(image).name).validator == validator


async def test_default_configuration_builds_a_container() -> None:
    async with running(build_container(load_settings())) as container:
        validators = container.validators()
    assert set(validators) == {"allow", "deny", "dockerhub"}


def test_notation_signing_authority_is_configured_explicitly_per_trust_root() -> None:
    pem = make_ca("authority").pem()
    roots = [
        {"name": "default", "cert": pem},
        {"name": "signer-service", "cert": pem, "storeType": "signingAuthority"},
    ]
    document = app(validators=[STATIC, {"name": "n", "type": "notation", "trustRoots": roots}])
    settings = build_settings(document, secrets_dir=Path("/nonexistent"), env={})
    loaded = {v.name: v for v in settings.validators}["n"].trust_roots
    assert [(r.name, r.store_type) for r in loaded] == [
        ("default", None),
        ("signer-service", "signingAuthority"),
    ]


COSIGN = {"name": "cs", "type": "cosign", "trustRoots": [{"name": "default", "key": KEY}]}
PROVENANCE = "https://slsa.dev/provenance/v1"


def attested(*conditions: dict[str, Any], validator: str = "cs") -> dict[str, Any]:
    rule = {"predicateType": PROVENANCE, "conditions": list(conditions)}
    return app(
        validators=[STATIC, COSIGN, notary()],
        policy=[{"pattern": "*", "validator": validator, "with": {"attestations": [rule]}}],
    )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            app(
                validators=[COSIGN],
                policy=[{"pattern": "*", "validator": "cs", "with": {"signatureFormat": "v3"}}],
            ),
            "policy[0].with.signatureFormat: ",
        ),
        (
            attested({"field": "builder.id", "equals": "x", "matches": "x"}),
            "exactly one of equals, matches and oneOf",
        ),
        (attested({"field": "builder.id", "equals": {"a": 1}}), "compare with strings"),
        (
            attested({"field": "builder.id", "matches": "(unclosed"}),
            "policy[0].with.attestations[0].conditions[0].matches: invalid regular expression",
        ),
        (
            attested({"field": "builder..id", "equals": "x"}),
            "policy[0].with.attestations[0].conditions[0].field: field path 'builder..id' has",
        ),
        # a rule requiring attestations must never pass through a validator that ignores them
        (attested(validator="nv"), "only cosign validators read attestations, not notaryv1"),
        (attested(validator="allow"), "only cosign validators read attestations, not static"),
    ],
)
def test_cosign_only_rule_options_are_checked(document: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in problems_of(document)), problems_of(document)


def test_attestation_conditions_are_parsed_once_by_the_loader() -> None:
    condition = {"field": "runDetails.builder.id", "matches": "https://github\\.com/.+"}
    settings = build_settings(attested(condition), secrets_dir=None, env={})
    [requirement] = settings.policy.rules[0].options.attestations
    assert requirement.predicate_type == PROVENANCE
    [parsed] = requirement.conditions
    assert parsed.path == ("runDetails", "builder", "id")
    assert parsed.matches is not None
    assert parsed.matches.pattern == condition["matches"]
    assert settings.policy.rules[0].options.signature_format == "any"
