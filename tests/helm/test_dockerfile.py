"""The image the chart deploys: multi-stage, slim, non-root, nothing to build with at run time.

No container engine runs here, so the Dockerfile is checked statically and its install step is
replayed: the files it copies must be enough to build the package with the default config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helm.conftest import ROOT, Manifest, find

pytestmark = pytest.mark.helm

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(apt-get|apk|gcc|g\+\+|make|build-essential|pip install)\b")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_two_stages_on_slim_python_311() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) == 2
    assert all(f.split()[0] == "python:3.11-slim" for f in froms)


def test_final_stage_has_no_build_tools() -> None:
    for word, args in final_stage():
        if word == "RUN":
            assert not BUILD_TOOLS.search(args), args
            assert "pip uninstall" in args  # the base image's installer is removed
    copies = [args for word, args in final_stage() if word == "COPY"]
    assert copies == ["--from=build /opt/connaisseur /opt/connaisseur"]


def test_runs_as_the_non_root_user_the_chart_expects(default_manifests: list[Manifest]) -> None:
    (user,) = [args for word, args in final_stage() if word == "USER"]
    uid, gid = (int(x) for x in user.split(":"))
    pod = find(default_manifests, "Deployment", "connaisseur")["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    assert (uid, gid) == (sc["runAsUser"], sc["runAsGroup"])
    assert uid != 0


def test_default_command_is_the_one_the_chart_runs(default_manifests: list[Manifest]) -> None:
    steps = dict(final_stage())
    pod = find(default_manifests, "Deployment", "connaisseur")["spec"]["template"]["spec"]
    assert json.loads(steps["ENTRYPOINT"]) == ["connaisseur"]
    assert json.loads(steps["CMD"]) == pod["containers"][0]["args"]


def test_copied_sources_build_the_package_with_its_default_config(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for word, args in instructions():
        if word == "COPY" and not args.startswith("--from"):
            *sources, _dest = args.split()
            for s in sources:
                path = ROOT / s.rstrip("/")
                if path.is_dir():
                    shutil.copytree(path, src / path.name)
                else:
                    shutil.copy(path, src / path.name)
    wheels, src_arg = str(tmp_path / "wheels"), str(src)
    out = subprocess.run(
        # like `pip install .` in the build stage: an isolated build with the declared backend
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            wheels,
            src_arg,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    contents = zipfile.ZipFile(wheel).namelist()
    assert "connaisseur/config/default.yaml" in contents
    assert "connaisseur/entrypoints/cli.py" in contents
    assert any(n.endswith("entry_points.txt") for n in contents)
