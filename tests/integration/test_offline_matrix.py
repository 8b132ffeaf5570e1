"""The three-way matrix (docs/decisions/0055-offline-bundles.md): the same cases verified
directly against real servers and from a bundle exported by ``connaisseur bundle export`` after
every upstream server was stopped, must give the same verdicts and digests — for Notary v1 (with
a required delegation), cosign with keys, cosign keyless with Rekor entries in the signature's
bundle, and Notation.

The bundle column runs four ways: in process under an outbound-connection guard (every connect
and name look-up refused and recorded), from the same bundle flattened into a ConfigMap and laid
out as the kubelet mounts one, as the ``connaisseur verify --offline`` command in a network
namespace of its own (``unshare --net``: the process has no network at all), and as the webhook
the chart runs (``serve --offline`` on that ConfigMap volume) answering one Pod per case. The
servers run on both backends (tests/integration/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connaisseur.adapters.bundle_export import kubernetes_object
from connaisseur.domain.tuf import parse_expires
from connaisseur.entrypoints import cli
from tests.support.admission import admission_review, decoded_patch, pod
from tests.support.containers import Backend
from tests.support.no_network import (
    mount_like_kubernetes,
    network_namespace_prefix,
    no_network,
    port_closed,
)
from tests.support.offline_matrix import CASES, NOW, Case, World, outcome, signed_world, verdicts
from tests.support.webhook_process import serve_webhook

pytestmark = pytest.mark.integration


@dataclass
class Columns:
    """The verdicts of each column, by case name, and what the guard saw."""

    world: World
    bundle: Path
    direct: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    offline: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    configmap: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    command: dict[str, tuple[Any, ...]] | None = None
    webhook: dict[str, tuple[bool, str | None]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    ports_closed: bool = False


@pytest.fixture(scope="module")
def columns(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Columns:
    work = tmp_path_factory.mktemp(f"matrix-{backend}")
    bundle = work / "bundle"
    with signed_world(work, backend) as world:
        print(f"servers: {world.registry.backend}; {world.notary.backend}")
        images = world.images()
        direct = verdicts(world.config, images)
        exported = cli.main(
            ["bundle", "export", "--config", str(world.config), "--secrets-dir", str(work),
             "--now", NOW.isoformat(), "-o", str(bundle), *images]
        )  # fmt: skip
        assert exported == 1, "some cases are denials: export exits 1 and writes the bundle"
    result = Columns(world=world, bundle=bundle)
    result.ports_closed = all(
        port_closed(server) for server in (world.registry.host, world.notary.host)
    )
    result.direct = {
        c.name: outcome(v.allowed, v.digest, v.category) for c, v in zip(CASES, direct, strict=True)
    }
    with pytest.MonkeyPatch.context() as m, no_network(m) as attempts:
        offline = verdicts(world.config, images, offline=bundle)
    result.attempts = attempts.seen
    result.offline = {
        c.name: outcome(v.allowed, v.digest, v.category)
        for c, v in zip(CASES, offline, strict=True)
    }
    volume = mount_like_kubernetes(
        kubernetes_object(bundle, "trust", "connaisseur", "configmap"), work / "configmap"
    )
    with pytest.MonkeyPatch.context() as m, no_network(m) as attempts:
        mounted = verdicts(world.config, images, offline=volume)
    result.attempts += attempts.seen
    result.configmap = {
        c.name: outcome(v.allowed, v.digest, v.category)
        for c, v in zip(CASES, mounted, strict=True)
    }
    result.command = _offline_command(world, bundle, images)
    result.webhook = _webhook_column(volume, world, images, work / "webhook")
    return result


def _webhook_column(
    volume: Path, world: World, images: list[str], workdir: Path
) -> dict[str, tuple[bool, str | None]]:
    """``connaisseur serve --offline`` on the ConfigMap-mounted bundle, as the chart runs it:
    one Pod per case; whether it is admitted and the digest its image is pinned to."""
    workdir.mkdir()
    with serve_webhook(workdir, world.config, "--offline", str(volume)) as webhook:
        answers = [webhook.review(admission_review(pod(image)))["response"] for image in images]
    return {
        c.name: (answer["allowed"], _pinned(answer))
        for c, answer in zip(CASES, answers, strict=True)
    }


def _pinned(response: dict[str, Any]) -> str | None:
    if not response["allowed"]:
        return None
    [operation] = decoded_patch(response)
    pinned: str = operation["value"].rpartition("@")[2]
    return pinned


def _offline_command(world: World, bundle: Path, images: list[str]) -> dict[str, Any] | None:
    prefix = network_namespace_prefix()
    if prefix is None:
        return None
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "connaisseur.entrypoints.cli", "verify",
         "--config", str(world.config), "--offline", str(bundle), "--now", NOW.isoformat(),
         "--format", "json", *images],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == len(CASES), done.stderr
    return {
        c.name: outcome(v["allowed"], v["digest"], (v["error"] or {}).get("category"))
        for c, v in zip(CASES, lines, strict=True)
    }


IDS = [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_direct_verdicts_are_the_expected_ones(columns: Columns, case: Case) -> None:
    allowed, digest, category = columns.direct[case.name]
    assert allowed is case.allowed
    assert category == case.category
    if case.allowed:
        assert digest == columns.world.digests[case.image]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_bundle_gives_the_direct_verdict_with_every_server_stopped(
    columns: Columns, case: Case
) -> None:
    assert columns.ports_closed, "the registry and the Notary server must be down"
    assert columns.offline[case.name] == columns.direct[case.name]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_bundle_mounted_from_a_configmap_gives_the_direct_verdict(
    columns: Columns, case: Case
) -> None:
    """``connaisseur bundle kubernetes`` flattens the bundle (keys cannot hold ``/``); mounted
    as the kubelet mounts a ConfigMap, it verifies the same."""
    assert columns.configmap[case.name] == columns.direct[case.name]


def test_the_bundle_column_made_no_connection_attempt(columns: Columns) -> None:
    assert columns.attempts == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_offline_command_without_any_network_gives_the_direct_verdict(
    columns: Columns, case: Case
) -> None:
    if columns.command is None:
        pytest.skip("no network namespace can be made here (unshare --net)")
    assert columns.command[case.name] == columns.direct[case.name]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_webhook_serving_the_mounted_bundle_admits_and_pins_as_direct(
    columns: Columns, case: Case
) -> None:
    allowed, digest, _ = columns.direct[case.name]
    assert columns.webhook[case.name] == (allowed, digest)


def test_the_bundle_manifest_says_what_is_in_it(columns: Columns) -> None:
    manifest = json.loads((columns.bundle / "connaisseur-bundle.json").read_text())
    assert manifest["format"] == "connaisseur-bundle/v1"
    assert [i["image"] for i in manifest["images"]] == columns.world.images()
    on_disk = {
        p.relative_to(columns.bundle).as_posix()
        for p in columns.bundle.rglob("*")
        if p.is_file() and p.name != "connaisseur-bundle.json"
    }
    assert set(manifest["files"]) == on_disk
    gun = f"{columns.world.registry.host}/notary/delegated"
    roles = next(g["roles"] for g in manifest["notary"] if g["gun"] == gun)
    assert {"root", "timestamp", "snapshot", "targets", "targets/releases"} <= set(roles)

    def moment(text: str) -> dt.datetime:
        return parse_expires("test", text)

    signatures = {
        signature["signature"]: moment(signature["validUntil"])
        for signature in manifest["notation"]
    }
    assert sorted(signatures.values()) == sorted(columns.world.notation_ends)
    notary = [moment(r["expires"]) for g in manifest["notary"] for r in g["roles"].values()]
    assert moment(manifest["refreshBefore"]) == min(notary + list(signatures.values()))
