"""The matrix three ways (docs/decisions/0055-offline-bundles.md,
docs/decisions/0050-registry-mirrors.md): the mirror world's cases (tests/support/mirror_world.py:
cosign with a key, keyless under a private Sigstore with the Rekor entries bundled in the
signatures, Notation, Notary v1, signatures in another repository; unsigned, wrongly signed and
missing images) decided direct, through Debian's ``docker-registry`` as a pull-through cache,
through a ``skopeo sync``-filled registry, and from an offline bundle written by
``connaisseur bundle export`` — exported direct, and through the synced registry as a global
mirror and as each validator's own, with the source asked nothing — after every upstream (the
origin, its front, the cache, the synced registry, Notary) was stopped: the same verdicts and
digests every way, and not one connection attempt from the bundle columns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from connaisseur.entrypoints import cli
from tests.support.containers import Backend
from tests.support.mirror_world import (
    Case,
    MirrorWorld,
    Outcome,
    mirror_world,
    verdicts,
    with_rules,
)
from tests.support.no_network import no_network, port_closed

pytestmark = pytest.mark.integration

ONLINE = ("direct", "pull-through cache", "skopeo-synced registry")
EXPORTED_DIRECT = "bundle exported direct"
EXPORTED_THROUGH_MIRROR = "bundle exported through the synced registry"
EXPORTED_THROUGH_OWN_MIRRORS = "bundle exported through each validator's own mirrors"
BUNDLES = (EXPORTED_DIRECT, EXPORTED_THROUGH_MIRROR, EXPORTED_THROUGH_OWN_MIRRORS)


@dataclass
class Matrix:
    """Each column's outcomes (in the order of ``cases``) and what the bundle columns saw."""

    cases: tuple[Case, ...]
    columns: dict[str, list[Outcome]] = field(default_factory=dict)
    upstreams: list[str] = field(default_factory=list)
    #: export column → the requests the source saw while it ran (the mirror columns: none)
    source_asked: dict[str, list[Any]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Matrix:
    work = tmp_path_factory.mktemp("three-ways")
    with mirror_world(work / "world", backend) as world:
        if world.notary is None:
            pytest.skip("notary-server is not installed: the Notary v1 cases cannot run")
        result = Matrix(cases=world.cases)
        rules = [(c.image, world.rule(c)) for c in world.cases]
        mirrors = {
            "direct": [],
            "pull-through cache": world.through_cache(),
            "skopeo-synced registry": world.through_synced(),
        }
        for column in ONLINE:
            config = world.config(mirrors[column])
            result.columns[column] = asyncio.run(verdicts(config, rules, world.now))
        exports = {
            EXPORTED_DIRECT: world.config(),
            EXPORTED_THROUGH_MIRROR: world.config(world.through_synced()),
            EXPORTED_THROUGH_OWN_MIRRORS: _own_mirrors(world.config(), world.through_synced()),
        }
        for column, config in exports.items():
            world.front_proxy.reset()
            _export(world, with_rules(config, rules), work / column)
            result.source_asked[column] = list(world.front_proxy.requests)
        assert world.notary is not None
        result.upstreams = [
            world.front, world.origin.host, world.cache.host, world.synced.host, world.notary.host
        ]  # fmt: skip
        offline_config, now = world.config(), world.now
    for column in BUNDLES:
        with pytest.MonkeyPatch.context() as m, no_network(m) as attempts:
            found = asyncio.run(verdicts(offline_config, rules, now, offline=work / column))
        result.columns[column] = found
        result.attempts += attempts.seen
    return result


def _own_mirrors(config: dict[str, Any], mirrors: list[dict[str, Any]]) -> dict[str, Any]:
    """``config`` with ``mirrors`` on every registry-reading validator instead of globally."""
    validators = [
        {**v, "mirrors": mirrors} if v["type"] in {"cosign", "notation"} else v
        for v in config["validators"]
    ]
    return {**config, "validators": validators}


def _export(world: MirrorWorld, document: dict[str, Any], bundle: Path) -> None:
    config = bundle.with_suffix(".yaml")
    config.write_text(yaml.safe_dump(document))
    images = sorted({c.image for c in world.cases})
    code = cli.main(
        ["bundle", "export", "--config", str(config), "--secrets-dir", str(bundle.parent),
         "--now", world.now.isoformat(), "--format", "json", "-o", str(bundle), *images]
    )  # fmt: skip
    assert code == 1, "some cases are denials: export exits 1 and writes the bundle"


@pytest.mark.parametrize("column", ONLINE + BUNDLES)
def test_every_case_is_decided_alike_every_way(matrix: Matrix, column: str) -> None:
    wrong = [
        f"{case.name}: expected {case.digest or case.category}, got {outcome}"
        for case, outcome in zip(matrix.cases, matrix.columns[column], strict=True)
        if not outcome.matches(case)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_matrix_admits_every_kind_of_signature(matrix: Matrix) -> None:
    admitted = {c.validator for c in matrix.cases if c.digest is not None}
    assert {"cosign-key", "cosign-keyless", "notation", "notary"} <= admitted


def test_the_bundles_were_read_with_every_upstream_stopped_and_no_network(matrix: Matrix) -> None:
    assert [u for u in matrix.upstreams if not port_closed(u)] == []
    assert matrix.attempts == []


def test_an_export_through_mirrors_asks_the_source_nothing(matrix: Matrix) -> None:
    """Global or per validator, the mirrors serve the whole export, referrers included."""
    assert matrix.source_asked[EXPORTED_DIRECT], "the direct export reads the source"
    assert matrix.source_asked[EXPORTED_THROUGH_MIRROR] == []
    assert matrix.source_asked[EXPORTED_THROUGH_OWN_MIRRORS] == []
