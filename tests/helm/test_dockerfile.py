"""The image the chart deploys, built from the Dockerfile and inspected: what it contains and how
it starts (tests/support/images.py builds it once per content; CI has a Docker engine, and
without one these tests skip with the reason).

It holds the Python interpreter, its standard library, the installed package and the shared
libraries they load, and nothing to build, install or script with: no shell, no package manager,
no pip, no compiler, no headers (docs/decisions/0030-product-image-without-a-shell.md)."""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.support import images
from tests.support.helm import Manifest, find

pytestmark = pytest.mark.helm

INTERPRETERS = {"python", "python3", "python3.11"}
# anything whose presence would let a process in the pod build, fetch or script
FORBIDDEN_NAMES = {
    "sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "pip", "pip3", "ensurepip",
    "setuptools", "gcc", "cc", "c++", "g++", "ld", "as", "make", "perl", "curl", "wget",
}  # fmt: skip


@pytest.fixture(scope="session")
def image_paths(product_image: str) -> dict[PurePosixPath, tarfile.TarInfo]:
    """Every path in the image's file system (``docker export`` of a created container)."""
    created = images.docker("create", product_image)
    try:
        with tempfile.TemporaryFile() as tar_file:
            subprocess.run(["docker", "export", created], stdout=tar_file, check=True)
            tar_file.seek(0)
            with tarfile.open(fileobj=tar_file) as tar:
                return {PurePosixPath(m.name.rstrip("/")): m for m in tar.getmembers()}
    finally:
        images.docker("rm", created)


@pytest.fixture(scope="session")
def image_config(product_image: str) -> dict[str, Any]:
    (inspected,) = json.loads(images.docker("image", "inspect", product_image))
    config: dict[str, Any] = inspected["Config"]
    return config


def chart_container(manifests: list[Manifest]) -> dict[str, Any]:
    pod = find(manifests, "Deployment", "connaisseur")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def test_only_the_interpreter_and_the_command_are_programs(
    image_paths: dict[PurePosixPath, tarfile.TarInfo],
) -> None:
    programs = {p.name for p in image_paths if p.parent.name in ("bin", "sbin") and p.name}
    assert programs <= INTERPRETERS | {"connaisseur"}, programs - INTERPRETERS
    assert "connaisseur" in programs


def test_no_shell_installer_compiler_or_headers(
    image_paths: dict[PurePosixPath, tarfile.TarInfo],
) -> None:
    found = {str(p) for p in image_paths if FORBIDDEN_NAMES & {n.lower() for n in p.parts}}
    found |= {str(p) for p in image_paths if p.suffix in (".a", ".h", ".c", ".pyx")}
    found |= {str(p) for p in image_paths if p.name.startswith(("pip-", "setuptools-"))}
    assert not found, sorted(found)[:20]
    assert not any(p.parts[:3] == ("var", "lib", "dpkg") for p in image_paths)


def test_pip_cannot_be_imported(product_image: str) -> None:
    code = "import importlib.util as u; print([m for m in ('pip', 'ensurepip') if u.find_spec(m)])"
    out = images.docker(
        "run", "--rm", "--read-only", "--network", "none",
        "--entrypoint", "/opt/connaisseur/bin/python", product_image, "-c", code,
    )  # fmt: skip
    assert out == "[]"


def test_built_in_default_config_is_valid(product_image: str) -> None:
    """The package data (config/default.yaml) made it into the image and the CLI runs."""
    out = images.docker(
        "run", "--rm", "--read-only", "--network", "none", product_image, "check-config"
    )
    assert json.loads(out)["ok"] is True


def test_runs_as_the_non_root_user_the_chart_expects(
    image_config: dict[str, Any], default_manifests: list[Manifest]
) -> None:
    context = chart_container(default_manifests)["securityContext"]
    assert image_config["User"] == f"{context['runAsUser']}:{context['runAsGroup']}"
    assert context["runAsUser"] != 0


def test_default_command_is_the_one_the_chart_runs(
    image_config: dict[str, Any], default_manifests: list[Manifest]
) -> None:
    assert Path(image_config["Entrypoint"][0]).name == "connaisseur"
    assert image_config["Cmd"] == chart_container(default_manifests)["args"]


def test_image_is_small(product_image: str) -> None:
    size = int(images.docker("image", "inspect", "--format", "{{.Size}}", product_image))
    print(f"\n{product_image}: {size / 1e6:.1f} MB")
    assert size < 150e6  # today about 86 MB on Debian's Python; a regression shows here
