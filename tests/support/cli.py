"""The ``connaisseur`` CLI as a subprocess: awaited without blocking the event loop (so a
receiver or registry served by the test process keeps answering), or run to completion by a
test that serves nothing meanwhile."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m connaisseur.entrypoints.cli ARGS`` in the repository root."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connaisseur.entrypoints.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m connaisseur.entrypoints.cli ARGS`` in the repository root, blocking."""
    return subprocess.run(
        [sys.executable, "-m", "connaisseur.entrypoints.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
