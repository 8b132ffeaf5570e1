"""CI checks of the chart: ``helm lint``, Kubernetes schemas, and the application loading what the
chart renders (``connaisseur check-config`` as a subprocess)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import NamedTuple

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from tests.support.cli import run_cli
from tests.support.helm import (
    ALL_FEATURES,
    CHART,
    CONNAISSEUR_2X,
    ROOT,
    Manifest,
    find,
    run_helm,
)

pytestmark = pytest.mark.helm

VALUES = {
    "default": [],
    "all-features": [ALL_FEATURES],
    "connaisseur-2x": [CONNAISSEUR_2X],
}
#: The newest Kubernetes minor kubernetes-validate ships schemas for, and an older one still
#: in wide use (the chart declares kubeVersion >=1.25).
K8S_VERSIONS = (latest_version(), "1.30.0")


@pytest.fixture(scope="module", params=list(VALUES), ids=list(VALUES))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    name = request.param
    fixture = {
        "default": "default_manifests",
        "all-features": "all_features_manifests",
        "connaisseur-2x": "connaisseur_2x_manifests",
    }[name]
    return name, request.getfixturevalue(fixture)


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_helm_lint_is_clean(helm_bin: Path, values: str) -> None:
    args = ["lint", "--strict", "--namespace", "connaisseur"]
    for f in VALUES[values]:
        args += ["--values", str(f)]
    out = run_helm(helm_bin, *args, chart=CHART)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out
    assert "[ERROR]" not in out


def test_kubernetes_validate_ships_the_versions_we_check() -> None:
    shipped = {v.rsplit(".", 1)[0] for v in kubernetes_validate.utils.all_versions()}
    assert {v.rsplit(".", 1)[0] for v in K8S_VERSIONS} <= shipped
    assert len({v.rsplit(".", 1)[0] for v in K8S_VERSIONS}) == 2


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(
    rendered: tuple[str, list[Manifest]], k8s_version: str
) -> None:
    """Strict schemas: unknown fields (typos in templates) fail too."""
    _, manifests = rendered
    for m in manifests:
        try:
            kubernetes_validate.validate(m, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{m['kind']}/{m['metadata']['name']} @ {path}: {e.message}")


class Materialised(NamedTuple):
    config: Path
    secrets: Path
    alerting: Path | None  # the alerting Secret's file, when the chart renders one


def materialise(manifests: list[Manifest], into: Path) -> Materialised:
    """Write the app config, the alerting Secret and every validator auth Secret as the pod
    would see them."""
    config = into / "config" / "config.yaml"
    config.parent.mkdir(parents=True)
    cm = find(manifests, "ConfigMap", "connaisseur-app-config")
    config.write_text(cm["data"]["config.yaml"])
    secrets = into / "secrets"
    secrets.mkdir()
    alerting = None
    for m in manifests:
        if m["kind"] != "Secret":
            continue
        if m["metadata"]["name"].endswith("-auth"):
            d = secrets / m["metadata"]["name"]
            d.mkdir()
            for key, value in m["data"].items():
                (d / key).write_bytes(base64.b64decode(value))
        elif m["metadata"]["name"] == "connaisseur-alert-config":
            alerting = into / "alerts" / "config.yaml"
            alerting.parent.mkdir()
            alerting.write_bytes(base64.b64decode(m["data"]["config.yaml"]))
    return Materialised(config, secrets, alerting)


def check_config(
    config: Path, secrets: Path, alerting: Path | None = None
) -> subprocess.CompletedProcess[str]:
    alerting_args = ["--alerting-config", str(alerting)] if alerting else []
    args = ("--format", "json", "--config", str(config), "--secrets-dir", str(secrets))
    return run_cli("check-config", *args, *alerting_args, timeout=120)


def test_rendered_config_loads_with_check_config(
    rendered: tuple[str, list[Manifest]], tmp_path: Path
) -> None:
    name, manifests = rendered
    files = materialise(manifests, tmp_path)
    assert (files.alerting is not None) is (name != "default")  # both others configure alerting
    out = check_config(*files)
    assert out.returncode == 0, f"{name}: {out.stdout}{out.stderr}"
    assert '"ok":true' in out.stdout.replace(" ", "")


def test_check_config_reads_the_rendered_alerting_secret(
    all_features_manifests: list[Manifest], tmp_path: Path
) -> None:
    """Guards the test above: the alerting file is really loaded (and checked) by check-config."""
    files = materialise(all_features_manifests, tmp_path)
    assert files.alerting is not None
    broken = yaml.safe_load(files.alerting.read_text())
    broken["rejectRequest"]["receivers"][0]["template"] = "no-such-template"
    files.alerting.write_text(yaml.safe_dump(broken))
    out = check_config(*files)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "alerting.rejectRequest.receivers[0]" in out.stdout
    assert "no-such-template" in out.stdout


def test_check_config_needs_the_auth_secrets_the_chart_creates(
    all_features_manifests: list[Manifest], tmp_path: Path
) -> None:
    """Guards the test above: without the rendered Secrets the same config is rejected."""
    files = materialise(all_features_manifests, tmp_path)
    for secret_dir in files.secrets.iterdir():
        for f in secret_dir.iterdir():
            f.unlink()
        secret_dir.rmdir()
    out = check_config(*files)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "private-notary-auth" in out.stdout + out.stderr


@pytest.mark.parametrize("values", ["helm/values.yaml", str(ALL_FEATURES), str(CONNAISSEUR_2X)])
def test_values_files_load_directly(values: str, tmp_path: Path) -> None:
    """The application also reads a whole values file (its `application` and `alerting`)."""
    out = check_config(ROOT / values, tmp_path)
    # chart-level credentials are only turned into Secrets by the chart; inline they are accepted
    assert out.returncode == 0, out.stdout + out.stderr
