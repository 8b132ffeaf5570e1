"""Registry mirrors, signature repositories and a private Sigstore set from chart values
(docs/decisions/0050-registry-mirrors.md, 0051-signature-repository.md,
0052-private-sigstore-trusted-root.md): what the values say reaches the application as the pod
would read it, and mirror credentials never reach the ConfigMap."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from connaisseur.config.configuration import registry_mirrors
from connaisseur.config.mirrors import MirrorEndpoint
from connaisseur.domain.errors import ConfigError
from tests.support.helm import HelmError, Manifest, Renderer, app_config, find, names
from tests.support.helm_pod import container, pod_spec, served_settings
from tests.support.notation_signing import make_ca
from tests.support.private_sigstore import REKOR_URL, PrivateSigstore
from tests.support.tls import self_signed

pytestmark = pytest.mark.helm

MIRROR_CA = make_ca("mirror CA").pem()
KEY = """-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsx28WV7BsQfnHF1kZmpdCTTLJaWe
d0CA+JOi8H4REuBaWSZ5zPDe468WuOJ6f71E7WFg3CVEVYHuoZt2UYbN/Q==
-----END PUBLIC KEY-----
"""


def values(tmp_path: Path, **application: Any) -> Path:
    """A values file: a deny-all policy plus ``application`` keys."""
    path = tmp_path / "values.yaml"
    path.write_text(
        yaml.safe_dump(
            {"application": {"policy": [{"pattern": "*:*", "validator": "deny"}], **application}}
        )
    )
    return path


def team_validator(trusted_root: str) -> dict[str, Any]:
    """A cosign validator with its own mirror, signature repository and private Sigstore."""
    return {
        "name": "cosign-team",
        "type": "cosign",
        "signatureRepository": "registry.example.com/signatures/team",
        "host": {"trustedRoot": trusted_root},
        "mirrors": [
            {
                "source": "registry.example.com/team",
                "endpoints": [
                    {
                        "url": "https://mirror.internal/team",
                        "cert": MIRROR_CA,
                        "auth": {"username": "team-robot", "password": "team-pw"},
                        "capabilities": ["pull"],
                    }
                ],
            }
        ],
        "trustRoots": [{"name": "default", "key": KEY}],
    }


GLOBAL_MIRRORS: list[dict[str, Any]] = [
    {
        "source": "docker.io",
        "endpoints": [
            {
                "url": "https://mirror.internal:5000/dockerhub",
                "cert": MIRROR_CA,
                "auth": {"username": "robot", "password": "robot-pw"},
            },
            {"url": "https://backup.internal"},
        ],
        "fallbackToSource": False,
    }
]


def as_read(endpoint: MirrorEndpoint) -> tuple[str, str, str | None, bool, tuple[str, str] | None]:
    """Where an endpoint is, its CA, whether it resolves tags, and the credentials it gets."""
    creds = endpoint.auth.lookup(endpoint.registry, f"{endpoint.prefix}/app".lstrip("/"))
    return (
        endpoint.registry,
        endpoint.prefix,
        endpoint.cert.pem if endpoint.cert else None,
        endpoint.resolve,
        (creds.username, creds.password) if creds else None,
    )


@pytest.fixture(scope="module")
def trusted_root() -> str:
    """A private Sigstore's trusted_root.json, as ``--set-file`` gives it: text."""
    return json.dumps(PrivateSigstore(datetime.now(UTC)).trusted_root())


@pytest.fixture
def manifests(render: Renderer, tmp_path: Path, trusted_root: str) -> list[Manifest]:
    validators = [{"name": "deny", "type": "static", "approve": False}]
    validators.append(team_validator(trusted_root))
    return render([values(tmp_path, validators=validators, mirrors=GLOBAL_MIRRORS)])


def test_the_application_loads_mirrors_signature_repository_and_trusted_root_from_values(
    manifests: list[Manifest], tmp_path: Path
) -> None:
    settings = served_settings(manifests, tmp_path / "pod")
    mirrors = registry_mirrors(settings)

    (hub,) = mirrors.shared
    assert (hub.source, hub.fallback_to_source) == ("index.docker.io", False)
    assert [as_read(e) for e in hub.endpoints] == [
        ("mirror.internal:5000", "dockerhub", MIRROR_CA, True, ("robot", "robot-pw")),
        ("backup.internal", "", None, True, None),
    ]
    team = mirrors.for_validator("cosign-team")
    assert [m.source for m in team] == ["registry.example.com/team", "index.docker.io"]
    assert [as_read(e) for e in team[0].endpoints] == [
        ("mirror.internal", "team", MIRROR_CA, False, ("team-robot", "team-pw")),
    ]

    validator = settings.validator("cosign-team")
    assert validator is not None
    assert validator.signature_repository == "registry.example.com/signatures/team"
    assert validator.transparency.trusted_root is not None
    assert validator.transparency.rekor == REKOR_URL  # the private log, from the trusted root


def test_mirror_credentials_go_to_mounted_secrets_never_to_the_configmap(
    manifests: list[Manifest],
) -> None:
    config = app_config(manifests)
    (hub,) = config["mirrors"]
    assert hub["endpoints"][0]["auth"] == {"secretName": "connaisseur-mirror-0-0-auth"}
    assert "auth" not in hub["endpoints"][1]
    (team,) = next(v for v in config["validators"] if v["name"] == "cosign-team")["mirrors"]
    assert team["endpoints"][0]["auth"] == {"secretName": "cosign-team-mirror-0-0-auth"}

    text = find(manifests, "ConfigMap", "connaisseur-app-config")["data"]["config.yaml"]
    assert "robot-pw" not in text
    assert "team-pw" not in text
    assert {"connaisseur-mirror-0-0-auth", "cosign-team-mirror-0-0-auth"} <= set(
        names(manifests, "Secret")
    )
    mounted = {m["mountPath"] for m in container(manifests, "connaisseur")["volumeMounts"]}
    assert {
        "/app/secrets/connaisseur-mirror-0-0-auth",
        "/app/secrets/cosign-team-mirror-0-0-auth",
    } <= mounted


def test_a_changed_mirror_password_rolls_the_pods(render: Renderer, tmp_path: Path) -> None:
    # a fixed certificate and no Redis (its TLS material): otherwise every render differs
    cert, key = self_signed("connaisseur-svc.connaisseur.svc")
    tls = {"kubernetes": {"deployment": {"tls": {"cert": cert, "key": key}}}}

    def checksum(mirrors: list[dict[str, Any]]) -> str:
        no_cache = {"cache": {"expirySeconds": 0}}
        path = values(tmp_path, mirrors=mirrors, features=no_cache)
        path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | tls))
        deployment = find(render([path]), "Deployment", "connaisseur")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    rotated = copy.deepcopy(GLOBAL_MIRRORS)
    rotated[0]["endpoints"][0]["auth"]["password"] = "rotated-pw"
    assert checksum(GLOBAL_MIRRORS) == checksum(GLOBAL_MIRRORS)
    assert checksum(rotated) != checksum(GLOBAL_MIRRORS)


def test_an_existing_secret_of_a_mirror_is_mounted_not_created(
    render: Renderer, tmp_path: Path
) -> None:
    mirrors = [
        {
            "source": "quay.io",
            "endpoints": [{"url": "https://mirror.internal", "auth": {"secretName": "quay-pull"}}],
        }
    ]
    rendered = render([values(tmp_path, mirrors=mirrors)])
    assert "quay-pull" not in names(rendered, "Secret")
    volumes = {v["name"]: v for v in pod_spec(rendered, "connaisseur")["volumes"]}
    mounts = {
        m["mountPath"]: volumes[m["name"]]["secret"]["secretName"]
        for m in container(rendered, "connaisseur")["volumeMounts"]
        if "secret" in volumes[m["name"]]
    }
    assert mounts["/app/secrets/quay-pull"] == "quay-pull"


def test_without_mirrors_the_config_has_none(default_manifests: list[Manifest]) -> None:
    assert "mirrors" not in app_config(default_manifests)
    assert not [n for n in names(default_manifests, "Secret") if "mirror" in n]


@pytest.mark.parametrize("auth", [{"username": "u"}, {"password": "p"}])
def test_incomplete_mirror_credentials_fail_rendering(
    render: Renderer, tmp_path: Path, auth: dict[str, str]
) -> None:
    mirrors = [{"source": "quay.io", "endpoints": [{"url": "https://m.internal", "auth": auth}]}]
    with pytest.raises(
        HelmError,
        match=r"application\.mirrors\[0\]\.endpoints\[0\]\.auth: username and password",
    ):
        render([values(tmp_path, mirrors=mirrors)])


def test_a_mirror_the_application_refuses_is_refused_at_start_up_with_its_path(
    render: Renderer, tmp_path: Path
) -> None:
    """The chart passes mirrors through; the application's own checks stop a wrong one."""
    mirrors = [{"source": "quay.io", "endpoints": [{"url": "ftp://m.internal"}]}]
    rendered = render([values(tmp_path, mirrors=mirrors)])
    with pytest.raises(ConfigError) as refused:
        served_settings(rendered, tmp_path / "pod")
    assert any(p.startswith("mirrors[0].endpoints[0].url: ") for p in refused.value.problems)
