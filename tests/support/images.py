"""The images the suite and the demo run, built locally and cached by content.

Nothing is pulled from an image registry: a Debian base is made with ``debootstrap
--variant=minbase`` from the Debian mirror apt already uses and imported with ``docker import``;
the test servers (``tests/images/servers.Dockerfile``) and the product image (``Dockerfile``)
are built on it with the legacy builder and the host's network (for apt and pip). Every tag is a
hash of what the image is made from, so an image that exists is never built again.

Image names are settings (environment variables); a set name is used as it is and never built
(e.g. ``CONNAISSEUR_TEST_REGISTRY_IMAGE=registry:2``).

    python -m tests.support.images              # base + test servers; prints `export` lines
    python -m tests.support.images --product    # ... and the product image
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVERS_DOCKERFILE = ROOT / "tests" / "images" / "servers.Dockerfile"
WORK = ROOT / ".tools" / "images"

DEBIAN_SUITE = "bookworm"  # Debian's Python 3.11, the version the product is built for
BASE_RECIPE = f"debootstrap --variant=minbase {DEBIAN_SUITE}; apt caches removed; v1"
# What the product image is built from (the Dockerfile's COPY sources and the Dockerfile).
PRODUCT_SOURCES = (
    "Dockerfile",
    "pyproject.toml",
    "README.md",
    "domain",
    "application",
    "adapters",
    "config",
    "entrypoints",
    "src",
    "scripts/image_rootfs.py",
)
PIP_CA_NAME = ".pip-ca.pem"  # the Dockerfile's optional CA bundle for pip


@dataclass(frozen=True)
class Setting:
    """An image name setting: the environment variable and the local image it defaults to."""

    variable: str
    target: str  # servers.Dockerfile target, or "product"

    def name(self) -> str:
        return os.environ.get(self.variable) or local_tag(self.target)

    def is_local(self) -> bool:
        return not os.environ.get(self.variable)


REGISTRY = Setting("CONNAISSEUR_TEST_REGISTRY_IMAGE", "registry")
NOTARY_SERVER = Setting("CONNAISSEUR_TEST_NOTARY_SERVER_IMAGE", "notary")
NOTARY_SIGNER = Setting("CONNAISSEUR_TEST_NOTARY_SIGNER_IMAGE", "notary")
REDIS = Setting("CONNAISSEUR_TEST_REDIS_IMAGE", "redis")
PRODUCT = Setting("CONNAISSEUR_IMAGE", "product")
BASE = Setting("CONNAISSEUR_BASE_IMAGE", "base")
SERVER_SETTINGS = (REGISTRY, NOTARY_SERVER, NOTARY_SIGNER, REDIS)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()[:16]


def local_tag(target: str) -> str:
    """The content-addressed name of a locally built image."""
    if target == "base":
        return f"connaisseur-test/debian:{DEBIAN_SUITE}-{_digest(BASE_RECIPE.encode())}"
    base = BASE.name().encode()
    if target == "product":
        return f"connaisseur-py:local-{_digest(base, *_source_digests())}"
    recipe = SERVERS_DOCKERFILE.read_bytes()
    return f"connaisseur-test/{target}:{_digest(base, target.encode(), recipe)}"


def _product_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files of the product image's sources."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *PRODUCT_SOURCES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(set(out.split()))


def _source_digests() -> Iterable[bytes]:
    for name in _product_files():
        path = ROOT / name
        yield name.encode()
        yield os.readlink(path).encode() if path.is_symlink() else path.read_bytes()


def docker(*args: str, stdin: bytes | None = None, log: Path | None = None) -> str:
    """Run the docker client; raises with the tail of its output when it fails."""
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # BuildKit would pull its frontend image
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, env=env, check=False)
    output = (done.stdout + done.stderr).decode(errors="replace")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output)
    if done.returncode != 0:
        raise RuntimeError(f"docker {args[0]} failed:\n{output[-3000:]}")
    return done.stdout.decode().strip()


def image_present(name: str) -> bool:
    done = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return done.returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (debootstrap reads nothing of apt's)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        if not source.is_file():
            continue
        text = source.read_text(errors="replace")
        one_line = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{DEBIAN_SUITE}\s", text, re.M)
        if one_line:
            return one_line.group(1)
        if source.suffix == ".sources" and re.search(rf"^Suites:.*\b{DEBIAN_SUITE}\b", text, re.M):
            uris = re.search(r"^URIs:\s*(\S+)", text, re.M)
            if uris and "security" not in uris.group(1):
                return uris.group(1)
    return "http://deb.debian.org/debian"


def _timed(what: str, name: str, started: float) -> None:
    print(f"images: {what} {name} in {time.monotonic() - started:.1f} s", file=sys.stderr)


def build_base() -> str:
    name = BASE.name()
    if image_present(name) or not BASE.is_local():
        return name
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=WORK, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", DEBIAN_SUITE, str(rootfs), debian_mirror()],
            stdout=(WORK / "debootstrap.log").open("wb"),
            stderr=subprocess.STDOUT,
            check=True,
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        )
        try:
            subprocess.run(
                ["docker", "import", "-", name],
                stdin=tar.stdout,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        finally:
            tar.wait()
    _timed("built", name, started)
    return name


def _build_on_base(setting: Setting, *args: str, stdin: bytes | None = None) -> str:
    """``docker build`` on the Debian base unless the image exists or its name is a setting."""
    name = setting.name()
    if image_present(name) or not setting.is_local():
        return name
    started = time.monotonic()
    docker(
        "build", "-q", "--network", "host", "--build-arg", f"BASE_IMAGE={build_base()}",
        "-t", name, *args,
        stdin=stdin, log=WORK / f"build-{setting.target}.log",
    )  # fmt: skip
    _timed("built", name, started)
    return name


def build_server(setting: Setting) -> str:
    return _build_on_base(
        setting, "--target", setting.target, "-f", str(SERVERS_DOCKERFILE),
        str(SERVERS_DOCKERFILE.parent),
    )  # fmt: skip


def _pip_ca() -> Path | None:
    """The CA bundle this host's pip trusts (a TLS proxy in front of the package index)."""
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return None


def product_context() -> bytes:
    """The build context as a tar: the product's sources, and the host's CA bundle for pip."""
    buffer = io.BytesIO()
    # GNU format: the legacy builder misreads a PAX header at the start of a context stream
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in _product_files():
            tar.add(ROOT / name, arcname=name, recursive=False)
        ca = _pip_ca()
        if ca is not None:
            tar.add(ca, arcname=PIP_CA_NAME)
    return buffer.getvalue()


def build_product() -> str:
    return _build_on_base(PRODUCT, "-", stdin=product_context())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", action="store_true", help="also build the product image")
    parser.add_argument("--servers", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    if shutil.which("docker") is None:
        print("images: no docker client", file=sys.stderr)
        return 1
    built: list[tuple[Setting, str]] = []
    if args.servers:
        built += [(s, build_server(s)) for s in SERVER_SETTINGS]
    if args.product:
        built.append((PRODUCT, build_product()))
    for setting, name in built:
        print(f"export {setting.variable}='{name}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
