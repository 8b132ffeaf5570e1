"""Benchmark: what matching one image name against policy patterns costs.

Uses only the public policy API (``Rule``, ``Policy.matching``), so the same script measures any
implementation of the matcher. Cases:

- ``rule``: one pattern against one normalised name, ``Rule.matches``, after a first call (the
  common case: the matcher has seen names like it);
- ``first``: compiling a rule and its first call (what a name costs the first time the rule
  sees a name of its kind; later names of the kind cost ``rule``);
- ``policy``: every rule of a realistic policy (the chart's default plus a few team rules)
  against one name, ``Policy.matching`` (no memo), for a hit deep in the name and a miss;
- ``compile``: compiling a rule;
- ``hostile``: a pattern with many stars against a long name that does not match
  (``--no-hostile`` skips it, for a matcher that backtracks).

Prints microseconds per call: the median of ``--repeat`` timings of ``--number`` calls each.

    .venv/bin/python -m bench.policy_match [--repeat 7] [--number 2000] [--no-hostile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import Policy, Rule

DIGEST = "sha256:" + "83edc2b8e9ffb1781a67bdab260a94674f802881838e20bba0f9a69d8cb40d70"
PATTERNS = (
    "*:*",
    f"docker.io/library/redis@{DIGEST}",
    "docker.io/securesystemsengineering/*:*",
    "registry.k8s.io/*:*",
    "registry.example.com/shop/*:*",
    "registry.example.com/shop/web:1.*",
    "ghcr.io/{team-a,team-b}/*",
    "quay.io/org/app",
)
NAMES = {
    "tag": "registry.example.com/shop/web:1.4.2",
    "digest": f"registry.example.com/shop/web:1.4.2@{DIGEST}",
    "hub": "nginx:1.25",
    "miss": "untrusted.example.org/shop/web:1.4.2",
}
RULE_CASES = (
    ("quay.io/org/app", "quay.io/org/app:1.0"),
    ("registry.example.com/shop/*:*", NAMES["tag"]),
    ("registry.example.com/shop/*:*", NAMES["digest"]),
    ("*:*", NAMES["digest"]),
    ("ghcr.io/{team-a,team-b}/*", "ghcr.io/team-b/api:2"),
    ("registry.k8s.io/*:*", NAMES["miss"]),
)
HOSTILE_PATTERN = "doc" + "*/" * 50 + "x"
HOSTILE_NAME = "docker.io/" + "a/" * 343 + "b"


def per_call(call: Callable[[], object], number: int, repeat: int) -> float:
    """Median µs per call."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            call()
        timings.append((time.perf_counter() - started) / number * 1e6)
    return statistics.median(timings)


def first(pattern: str, name: str) -> bool:
    return Rule(pattern=pattern).matches(name)


def row(case: str, pattern: str, name: str, micros: float) -> None:
    print(f"{case:<9} {pattern:<40} {name[:52]:<52} {micros:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policy_match")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--no-hostile", action="store_true")
    args = parser.parse_args(argv)
    n, r = args.number, args.repeat
    print(f"{'case':<9} {'pattern':<40} {'name':<52} {'µs':>8}")
    for pattern, raw in RULE_CASES:
        name = ImageReference.parse(raw).name
        rule = Rule(pattern=pattern)
        rule.matches(name)
        row("rule", pattern, raw, per_call(partial(rule.matches, name), n, r))
        row("first", pattern, raw, per_call(partial(first, pattern, name), n // 10, r))
    policy = Policy(tuple(Rule(pattern=p) for p in PATTERNS))
    for label, raw in NAMES.items():
        name = ImageReference.parse(raw).name
        policy.matching(name)
        took = per_call(partial(policy.matching, name), n, r)
        row("policy", f"{len(PATTERNS)} rules", f"{label}: {raw}", took)
    for pattern in (PATTERNS[2], PATTERNS[6]):
        row("compile", pattern, "", per_call(partial(Rule, pattern=pattern), n // 10, r))
    if not args.no_hostile:
        rule = Rule(pattern=HOSTILE_PATTERN)
        took = per_call(partial(rule.matches, HOSTILE_NAME), 10, 3)
        row("hostile", "doc*/*/…/x (50 stars)", f"{len(HOSTILE_NAME)} characters, no match", took)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
