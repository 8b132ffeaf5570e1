"""Fuzz engines: atheris (coverage-guided libFuzzer) where it installs, else a built-in one.

Both feed one target ``inputs`` inputs derived from its seeds, check the invariant on each
(``targets.check``), stop an input that runs longer than ``HANG_SECONDS``, and count distinct
findings (one per exception type and raising line). Each finding's input is saved under the
output folder so that it can be replayed and turned into a regression test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tests.fuzz.mutate import Mutator
from tests.fuzz.targets import TARGETS, Finding, FuzzTarget, check

#: Longest one input may take before it counts as a hang.
HANG_SECONDS = 10.0
ROOT = Path(__file__).resolve().parents[2]


class Hang(Finding):
    """One input ran longer than the per-input bound."""


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread if the block runs longer than ``seconds``."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Result:
    """What one campaign against one target found."""

    target: str
    engine: str
    inputs: int = 0
    seconds: float = 0.0
    findings: dict[str, str] = field(default_factory=dict)  # signature → saved input

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0


def signature(error: BaseException) -> str:
    """Finding identity: the original exception type and the line that raised it."""
    cause = error.__cause__ or error
    frames = traceback.extract_tb(cause.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(cause).__name__} at {where}"


def save(out: Path, target: str, data: bytes) -> str:
    path = out / target / f"finding-{hashlib.sha256(data).hexdigest()[:16]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path.relative_to(out.parent) if out.parent in path.parents else path)


def run_builtin(target: FuzzTarget, inputs: int, seed: int, out: Path) -> Result:
    """Seeds, then mutated seeds (``mutate.Mutator``) until ``inputs`` inputs have run."""
    result = Result(target.name, "builtin")
    seeds = target.seeds()
    mutator = Mutator(seeds, target.prefix)
    rng = random.Random(seed)
    started = time.perf_counter()
    for index in range(inputs):
        data = seeds[index] if index < len(seeds) else mutator.next(rng)
        try:
            with bounded(HANG_SECONDS):
                check(target, data)
        except Finding as e:
            key = signature(e)
            if key not in result.findings:
                result.findings[key] = save(out, target.name, data)
    result.inputs, result.seconds = inputs, time.perf_counter() - started
    return result


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_EXEC = re.compile(r"exec/s: (\d+)")


def run_atheris(target: FuzzTarget, inputs: int, seed: int, out: Path) -> Result:
    """libFuzzer through atheris in a child process (libFuzzer exits when it is done)."""
    result = Result(target.name, "atheris")
    findings = out / target.name / "findings.jsonl"
    findings.parent.mkdir(parents=True, exist_ok=True)
    findings.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as corpus:
        for i, data in enumerate(target.seeds()):
            Path(corpus, f"seed-{i}").write_bytes(data)
        command = [
            sys.executable,
            "-m",
            "tests.fuzz.atheris_worker",
            target.name,
            str(findings),
            f"-runs={inputs}",
            f"-seed={seed}",
            f"-timeout={int(HANG_SECONDS)}",
            "-rss_limit_mb=4096",
            "-max_len=262144",
            "-print_final_stats=1",
            f"-artifact_prefix={out / target.name}/",
            corpus,
        ]
        started = time.perf_counter()
        proc = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, env={**os.environ}, check=False
        )
        result.seconds = time.perf_counter() - started
    log = proc.stderr
    (out / target.name / "libfuzzer.log").write_text(log)
    done = _DONE.search(log)
    result.inputs = int(done.group(1)) if done else 0
    if findings.exists():
        for line in findings.read_text().splitlines():
            entry = json.loads(line)
            result.findings.setdefault(entry["signature"], entry["input"])
    if proc.returncode != 0:  # libFuzzer stopped early: a timeout, OOM or crash artefact
        crash = re.search(r"(Test unit written to|artifact_prefix.*?)(\S+)", log)
        result.findings.setdefault(
            f"libFuzzer exit {proc.returncode}", crash.group(2) if crash else "see libfuzzer.log"
        )
    return result


def run(target: FuzzTarget, inputs: int, seed: int, out: Path, engine: str) -> Result:
    if engine == "atheris" or (engine == "auto" and atheris_available()):
        return run_atheris(target, inputs, seed, out)
    return run_builtin(target, inputs, seed, out)


def table(results: list[Result]) -> str:
    lines = [
        f"{'target':<20} {'engine':<8} {'inputs':>9} {'seconds':>8} {'inputs/s':>9} findings",
    ]
    for r in results:
        lines.append(
            f"{r.target:<20} {r.engine:<8} {r.inputs:>9} {r.seconds:>8.1f} {r.rate:>9.0f} "
            f"{len(r.findings)}"
        )
        lines += [f"    {key}: {where}" for key, where in r.findings.items()]
    return "\n".join(lines)


__all__ = ["HANG_SECONDS", "TARGETS", "Hang", "Result", "bounded", "run", "table"]
