"""Upstream tool binaries for tests: on ``PATH`` first, then in the project's ``.tools/bin``.

On this workplace the binaries that no package registry ships (kube-apiserver, cosign, …) sit
xz-compressed in a ``shared/tools`` folder beside the repository's main checkout, with an
``unpack`` script; :func:`find_tool` unpacks a missing one into ``.tools/bin`` from there. A clone
elsewhere has no such folder: the tool is then missing and the caller skips, naming it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"


def checkout_roots() -> list[Path]:
    """This work tree and, for a ``git worktree``, the main checkout it belongs to."""
    roots = [ROOT]
    dot_git = ROOT / ".git"
    if dot_git.is_file():  # "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(dot_git.read_text().split(":", 1)[1].strip())
        if gitdir.parent.name == "worktrees" and gitdir.parent.parent.name == ".git":
            roots.append(gitdir.parent.parent.parent)
    return roots


def unpack_script() -> Path | None:
    """The ``unpack`` script of the shared tools folder beside a checkout, if there is one."""
    for root in checkout_roots():
        script = root.parent / "shared" / "tools" / "unpack"
        if script.is_file():
            return script
    return None


def find_tool(name: str) -> Path | None:
    """``name`` on ``PATH``, else in ``.tools/bin`` (unpacked there first when it can be)."""
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    local = TOOLS_BIN / name
    script = unpack_script()
    if script is not None and (script.parent / f"{name}.xz").is_file():
        # idempotent: the script leaves an already unpacked binary alone
        subprocess.run(
            [sys.executable, str(script), str(TOOLS_BIN), name],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return local if local.is_file() else None


def run_tool(binary: Path, args: tuple[str, ...], work: Path, env: Mapping[str, str]) -> str:
    """Run an upstream tool in the sandbox ``work`` with only ``PATH`` and ``env`` set (so it
    never reads the user's home); its stdout, or an assertion naming what it printed."""
    done = subprocess.run(
        [str(binary), *args],
        cwd=work,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{binary.name} {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout
