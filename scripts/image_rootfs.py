"""Gather the product image's root filesystem (run by the Dockerfile's build stage).

Copies into DEST exactly what ``connaisseur serve`` needs and nothing to build, install or script
with: the Python interpreter and its standard library (without ensurepip, tests, Tk, IDLE, the
static library), the virtual environment, every shared library those load (found with ``ldd``),
the CA bundle, and ``/etc/passwd``/``/etc/group`` naming the non-root user. The final stage is
``FROM scratch`` plus this tree: no shell, no package manager, no pip, no compiler
(docs/decisions/0030-product-image-without-a-shell.md).

Usage: python3 image_rootfs.py DEST VENV UID GID
"""

# ruff: noqa: S603, S607  -- ldd, ldconfig and strip of the build stage, on files found here.
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

STDLIB_LEFT_OUT = {
    "ensurepip",  # carries a pip wheel
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "pydoc_data",
    "__pycache__",
    "config-*",  # the static library and Makefile, for building extensions
    # extension modules a server never loads; some pull in libraries (ncurses, readline,
    # Berkeley DB, Kerberos via NIS) the image would otherwise carry
    "_test*",
    "_ctypes_test*",
    "_xxtestfuzz*",
    "xxlimited*",
    "readline*",
    "_curses*",
    "_dbm*",
    "nis.*",
    "ossaudiodev*",
}
# C and Cython sources and headers that some wheels ship next to their compiled modules
VENV_LEFT_OUT = {"*.c", "*.h", "*.pyx", "*.pxd", "__pycache__"}
LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
COMMAND = "connaisseur"  # the one program kept in the environment's bin/


class RootFs:
    """A tree under ``dest`` that mirrors chosen paths of this system, symbolic links included."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest

    def inside(self, path: Path) -> Path:
        """Where ``path`` (with no symbolic link in its directory part) lands in the tree."""
        real_parent = Path(os.path.realpath(path.parent))
        return self.dest / real_parent.relative_to("/") / path.name

    def place(self, path: Path, ignore: set[str] | None = None) -> None:
        """Copy ``path`` to the same place in the tree, with every symbolic link on the way."""
        path = Path(os.path.normpath(path))
        self._link_directories(path.parent)
        target = self.inside(path)
        if target.exists() or target.is_symlink():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            link = os.readlink(path)
            target.symlink_to(link)
            self.place(path.parent / link, ignore)
        elif path.is_dir():
            skip = shutil.ignore_patterns(*(ignore or set()))
            shutil.copytree(path, target, symlinks=True, ignore=skip)
        else:
            shutil.copy2(path, target)

    def _link_directories(self, directory: Path) -> None:
        for ancestor in reversed([directory, *directory.parents]):
            if not ancestor.is_symlink():
                continue
            link = self.inside(ancestor)
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(os.readlink(ancestor))
            (self.dest / Path(os.path.realpath(ancestor)).relative_to("/")).mkdir(
                parents=True, exist_ok=True
            )


def shared_libraries(elf_files: list[Path]) -> set[Path]:
    """Every library ``ldd`` resolves for the given executables and extension modules."""
    found: set[Path] = set()
    for chunk in range(0, len(elf_files), 50):
        batch = [str(p) for p in elf_files[chunk : chunk + 50]]
        out = subprocess.run(["ldd", *batch], capture_output=True, text=True, check=False).stdout
        if "not found" in out:
            raise SystemExit(f"ldd could not resolve a library:\n{out}")
        found.update(Path(m.group(1)) for m in LDD_PATH.finditer(out))
    return found


def strip_symbols(elf_files: list[Path]) -> None:
    """Drop debugging symbols from the wheels' extension modules (uvloop's alone carry 11 MB)."""
    strip = shutil.which("strip")
    if strip is not None and elf_files:
        subprocess.run([strip, "--strip-unneeded", *map(str, elf_files)], check=True)


def gcc_runtime() -> list[Path]:
    """libgcc_s: glibc loads it at thread cancellation, so ldd never lists it."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    paths = [line.rsplit("=>", 1)[1].strip() for line in out.splitlines() if "libgcc_s" in line]
    return [Path(paths[0])] if paths else []


def write_accounts(root: Path, uid: int, gid: int) -> None:
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"connaisseur:x:{uid}:{gid}:connaisseur:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\nconnaisseur:x:{gid}:\n")
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


def main(dest: Path, venv: Path, uid: int, gid: int) -> None:
    root = RootFs(dest)
    stdlib = Path(sysconfig.get_path("stdlib"))
    root.place(stdlib, STDLIB_LEFT_OUT)
    root.place(venv, VENV_LEFT_OUT)
    for entry in (venv / "bin").iterdir():
        if entry.is_symlink():  # the venv's python points at the base interpreter
            root.place(entry.parent / os.readlink(entry))
        elif entry.name != COMMAND:  # activate scripts, the dependencies' own commands
            root.inside(entry).unlink()
    libpython = sysconfig.get_config_var("LDLIBRARY")
    elf_files = [Path(os.path.realpath(sys.executable))]
    elf_files += sorted(root.inside(stdlib).rglob("*.so")) + sorted(root.inside(venv).rglob("*.so"))
    if libpython and sysconfig.get_config_var("Py_ENABLE_SHARED"):
        elf_files.append(Path(sysconfig.get_config_var("LIBDIR")) / libpython)
    for library in sorted(shared_libraries(elf_files)) + gcc_runtime():
        root.place(library)
    root.place(CA_BUNDLE)
    strip_symbols(sorted(root.inside(venv).rglob("*.so")))
    write_accounts(dest, uid, gid)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
