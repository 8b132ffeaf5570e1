"""``make fuzz``: the long campaign — every parser target, then the webhook over HTTPS.

    .venv/bin/python -m tests.fuzz [--inputs N] [--targets a,b] [--engine auto|atheris|builtin]
                                   [--seed S] [--webhook-inputs N] [--out DIR]

Prints, per target, the engine, inputs run, seconds, inputs/s and the distinct findings (with
the saved input of each); then the webhook campaign's figures. Exits 1 when anything was found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fuzz.engine import ROOT, TARGETS, atheris_available, run, table
from tests.fuzz.webhook import run_campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--engine", choices=("auto", "atheris", "builtin"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--webhook-inputs", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / ".fuzz")
    args = parser.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if atheris_available() else "builtin"
        print(f"engine: {engine}" + ("" if engine == "atheris" else " (atheris not installed)"))
    results = []
    for name in args.targets.split(","):
        if not name:
            continue
        result = run(TARGETS[name], args.inputs, args.seed, args.out, engine)
        results.append(result)
        print(table([result]).splitlines()[-1 - len(result.findings)], flush=True)
    print()
    print(table(results))
    found = sum(len(r.findings) for r in results)
    if args.webhook_inputs:
        report = run_campaign(args.webhook_inputs, args.seed, args.out / "webhook")
        print()
        print(report.summary())
        found += report.problems
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
