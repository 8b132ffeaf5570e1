"""Property-based tests: every parser of attacker bytes keeps its invariant (short, seeded).

For each target of ``targets.py``, three kinds of input, all derived by hypothesis with a fixed
seed (``derandomize``), so a run is reproducible and a failure shrinks to a small example:

* its real seeds (``tests/conformance/data``), each must keep the invariant as served;
* seeds with hypothesis-chosen JSON values written into hypothesis-chosen places;
* seeds under byte-level havoc, and plain random bytes.

The invariant: a value or the product's own categorised error, never another exception, and
never longer than ``HANG_SECONDS`` for one input. ``make fuzz`` runs the long campaign.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.engine import HANG_SECONDS, bounded
from tests.fuzz.mutate import Mutator, encode, paths, replace_at
from tests.fuzz.targets import TARGETS, FuzzTarget, check

#: Examples per target and strategy: the whole module stays within about 20 s on CI.
EXAMPLES = {"config_loader": 60, "notary_tuf": 80, "registry_manifest": 80, "policy_pattern": 80}
DEFAULT_EXAMPLES = 150

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def fuzz_settings(target: FuzzTarget) -> settings:
    return settings(
        max_examples=EXAMPLES.get(target.name, DEFAULT_EXAMPLES),
        derandomize=True,
        database=None,
        deadline=None,  # hangs are bounded by ``bounded`` (wall clock), not by timing noise
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def checked(target: FuzzTarget, data: bytes) -> None:
    with bounded(HANG_SECONDS):
        check(target, data)


def _json_seeds(target: FuzzTarget) -> list[tuple[bytes, Any]]:
    found = []
    for seed in target.seeds():
        head, body = seed[: target.prefix], seed[target.prefix :]
        try:
            document = json.loads(body)
        except ValueError:
            continue
        if isinstance(document, dict | list):
            found.append((head, document))
    return found


TARGET_PARAMS = [pytest.param(t, id=name) for name, t in TARGETS.items()]
JSON_TARGET_PARAMS = [p for p in TARGET_PARAMS if _json_seeds(p.values[0])]  # type: ignore[arg-type]


@pytest.mark.parametrize("target", TARGET_PARAMS)
def test_every_seed_keeps_the_invariant(target: FuzzTarget) -> None:
    seeds = target.seeds()
    assert seeds, f"{target.name} has no seeds"
    for seed in seeds:
        checked(target, seed)


@pytest.mark.parametrize("target", JSON_TARGET_PARAMS)
def test_any_json_value_anywhere_keeps_the_invariant(target: FuzzTarget) -> None:
    documents = _json_seeds(target)

    @fuzz_settings(target)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        head, document = data.draw(st.sampled_from(documents))
        document = json.loads(json.dumps(document))
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(paths(document)))
            document = replace_at(document, path, data.draw(json_values))
        rng = random.Random(data.draw(st.integers(0, 2**32)))
        checked(target, head + encode(document, rng))

    run()


@pytest.mark.parametrize("target", TARGET_PARAMS)
def test_mutated_seeds_and_random_bytes_keep_the_invariant(target: FuzzTarget) -> None:
    mutator = Mutator(target.seeds(), target.prefix, max_size=256 * 1024)

    @fuzz_settings(target)
    @given(st.integers(0, 2**32) | st.binary(max_size=512))
    def run(choice: int | bytes) -> None:
        if isinstance(choice, bytes):
            checked(target, choice)
        else:
            checked(target, mutator.next(random.Random(choice)))

    run()
