"""The chart under test: the pinned ``helm`` binary, rendering, and finding things in the
rendered manifests (fixtures: tests/support/helm_fixtures.py and tests/helm/conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
HERE = ROOT / "tests" / "helm"
ALL_FEATURES = HERE / "values-all-features.yaml"
CONNAISSEUR_2X = HERE / "connaisseur-2x-values.yaml"
RELEASE = "connaisseur"
NAMESPACE = "connaisseur"
Manifest = dict[str, Any]


class HelmError(Exception):
    """helm exited non-zero; the message is its stderr."""


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
