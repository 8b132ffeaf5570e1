"""One atheris (libFuzzer) campaign against one target; started by ``engine.run_atheris``.

    python -m tests.fuzz.atheris_worker TARGET FINDINGS.jsonl [libFuzzer flags] CORPUS_DIR

A finding (an exception outside the product's error family) is recorded once per signature in
``FINDINGS.jsonl`` with its input saved next to it, and the campaign goes on, so one run counts
every distinct finding instead of stopping at the first. Half of the mutations are the
JSON-aware ones of ``mutate.py``; the other half are libFuzzer's own, guided by coverage.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["connaisseur"]):
    from tests.fuzz.engine import signature
    from tests.fuzz.mutate import Mutator
    from tests.fuzz.targets import TARGETS, Finding, check


def main() -> None:
    name, findings_file = sys.argv[1], Path(sys.argv[2])
    target = TARGETS[name]
    mutator = Mutator(target.seeds(), target.prefix)
    seen: set[str] = set()

    def test_one_input(data: bytes) -> None:
        try:
            check(target, data)
        except Finding as e:
            key = signature(e)
            if key in seen:
                return
            seen.add(key)
            saved = findings_file.parent / f"finding-{len(seen)}"
            saved.write_bytes(data)
            with findings_file.open("a") as out:
                out.write(json.dumps({"signature": key, "input": str(saved)}) + "\n")

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            return mutator.mutate(data, rng)[:max_size]
        mutated: bytes = atheris.Mutate(data, max_size)  # atheris ships no types
        return mutated

    atheris.Setup([sys.argv[0], *sys.argv[3:]], test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
