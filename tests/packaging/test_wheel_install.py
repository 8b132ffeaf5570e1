"""The built wheel installs into a clean virtual environment and runs.

The layers are installed as ``connaisseur.<layer>`` (docs/decisions/0012-one-package-name.md), so
the product can sit next to the unrelated distributions named like its folders — ``entrypoints``
is a popular one — without either shadowing the other.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str | Path, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT)
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("connaisseur_py-*.whl")
    return path


def test_wheel_holds_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"connaisseur"}
    assert "connaisseur/config/default.yaml" in names
    assert "connaisseur/py.typed" in names


def test_wheel_installs_next_to_the_entrypoints_distribution(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", "entrypoints", wheel)
    assert installed.returncode == 0, installed.stderr
    # outside the checkout, so only what the wheel installed can be imported
    helped = run(env / "bin" / "connaisseur", "--help", cwd=tmp_path, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "check-config" in helped.stdout
    # the unrelated distribution keeps its own top-level name
    code = "import entrypoints; print(entrypoints.__file__)"
    theirs = run(python, "-c", code, cwd=tmp_path, timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    assert "site-packages/entrypoints.py" in theirs.stdout
