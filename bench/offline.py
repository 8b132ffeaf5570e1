"""Verifications from an offline bundle: what they cost in file reads and time.

The matrix world of the tests (tests/support/offline_matrix.py: a real registry and Notary stack
on 127.0.0.1, cosign key, cosign keyless, Notation and Notary v1 signatures) is exported with
``connaisseur bundle export``; every server is stopped; then each case is verified from the
bundle through the composed application (``--offline``), with the verification cache off so that
every run verifies:

* **cold**: the first verification of the image in the process — the files it reads (each at
  most once), their bytes, and its wall time;
* **warm**: ``--runs`` more verifications of the same image — file reads (expected: none) and
  the median wall time.

The direct column (the same cases against the running servers, no added latency) is given for
comparison. Command::

    .venv/bin/python -m bench.offline [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from connaisseur.adapters.clock import FixedClock
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.container import Container, build_container, running
from connaisseur.config.loader import load_settings
from connaisseur.domain.image import ImageReference
from connaisseur.entrypoints import cli
from tests.support.offline_matrix import CASES, NOW, signed_world


async def _timed(container: Container, image: str) -> tuple[float, bool]:
    deadline = Deadline.after(container.clock(), 25)
    started = time.perf_counter()
    verdict = await container.verify_image().execute(VerifyImageCommand(image=image), deadline)
    return (time.perf_counter() - started) * 1000, verdict.allowed


async def _measure(config: Path, images: list[str], runs: int, offline: Path | None) -> list[Any]:
    container = build_container(
        load_settings(config, secrets_dir=None, offline=offline), FixedClock(NOW)
    )
    rows = []
    async with running(container):
        for case, image in zip(CASES, images, strict=True):
            reference = ImageReference.parse(image)
            name = container.settings().policy.match(reference.name).validator
            files = container.trust_data().for_validator(name).files
            before = (files.counter.files, files.counter.bytes) if files else (0, 0)
            cold_ms, allowed = await _timed(container, image)
            after = (files.counter.files, files.counter.bytes) if files else (0, 0)
            warm = [(await _timed(container, image))[0] for _ in range(runs)]
            again = (files.counter.files, files.counter.bytes) if files else (0, 0)
            rows.append(
                (case.name, allowed, after[0] - before[0], after[1] - before[1], cold_ms,
                 again[0] - after[0], statistics.median(warm))
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="warm verifications per case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bundle = work / "bundle"
        with signed_world(work) as world:
            images = world.images()
            direct = asyncio.run(_measure(world.config, images, args.runs, None))
            with contextlib.redirect_stdout(io.StringIO()):  # the export's verdicts
                cli.main(
                    ["bundle", "export", "--config", str(world.config), "--secrets-dir", tmp,
                     "--now", NOW.isoformat(), "-o", str(bundle), "--format", "json", *images]
                )  # fmt: skip
        files = [p for p in bundle.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        print(f"bundle: {len(files)} files, {size} bytes; every server stopped\n")
        offline = asyncio.run(_measure(world.config, images, args.runs, bundle))
    print("| case | verdict | cold: files read | bytes | ms | warm: files read | median ms "
          "| direct: cold ms | warm median ms |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for off, on in zip(offline, direct, strict=True):
        verdict = "admit" if off[1] else "deny"
        print(f"| {off[0]} | {verdict} | {off[2]} | {off[3]} | {off[4]:.2f} | {off[5]} | "
              f"{off[6]:.3f} | {on[4]:.2f} | {on[6]:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
