"""Bundles written by the real tools (docs/decisions/0055-offline-bundles.md): OCI layouts by
``skopeo copy`` from the real registry, Notary trust directories by the real ``notary`` client;
and the other way round, ``skopeo`` reading what ``connaisseur bundle export`` wrote. Freshness
stays honest: Notary metadata past its expiry is expired offline too.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connaisseur.entrypoints import cli
from tests.support.notary_stack import NotaryCli
from tests.support.offline_matrix import NOW, World, outcome, signed_world, verdicts

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (scripts/system-packages.sh installs it)")
    with signed_world(tmp_path_factory.mktemp("tools")) as running_world:
        yield running_world


def skopeo_copy(world: World, reference: str, layout: str, *extra: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "-q", "--src-tls-verify=false", *extra,
         f"docker://{world.registry.host}/{reference}", f"oci:{layout}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def signature_tag(world: World, repository_tag: str) -> str:
    digest = world.digests[repository_tag]
    return digest.replace(":", "-") + ".sig"


def test_a_layout_written_by_skopeo_verifies_like_the_registry(
    world: World, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    image = "cosign/signed:1.0"
    repository = image.split(":")[0]
    for reference in (image, f"{repository}:{signature_tag(world, image)}"):
        target = f"{bundle / 'oci'}:{world.registry.host}/{reference}"
        skopeo_copy(world, reference, target, "--preserve-digests")
    full = f"{world.registry.host}/{image}"
    [direct] = verdicts(world.config, [full])
    [offline] = verdicts(world.config, [full], offline=bundle)
    assert direct.allowed
    assert offline.allowed
    assert offline.digest == direct.digest == world.digests[image]


def test_a_layout_whose_manifest_skopeo_converted_is_denied(world: World, tmp_path: Path) -> None:
    """Without --preserve-digests skopeo rewrites a Docker manifest as OCI: another digest,
    which the signature does not cover. Fail closed."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    image = "cosign/signed:1.0"
    repository = image.split(":")[0]
    for reference in (image, f"{repository}:{signature_tag(world, image)}"):
        skopeo_copy(world, reference, f"{bundle / 'oci'}:{world.registry.host}/{reference}")
    [offline] = verdicts(world.config, [f"{world.registry.host}/{image}"], offline=bundle)
    assert not offline.allowed
    assert offline.category == "no_trust_data"


def test_skopeo_reads_an_exported_bundle(world: World, tmp_path: Path) -> None:
    """skopeo reads OCI-typed manifests back from our layout byte for byte (skopeo 1.9 skips
    descriptors of Docker media types in any layout, its own included)."""
    bundle = tmp_path / "bundle"
    image = "cosign/signed:1.0"
    code = cli.main(
        ["bundle", "export", "--config", str(world.config), "--secrets-dir", str(tmp_path),
         "--now", NOW.isoformat(), "-o", str(bundle), f"{world.registry.host}/{image}"]
    )  # fmt: skip
    assert code == 0
    signature = f"{world.registry.host}/cosign/signed:{signature_tag(world, image)}"

    def raw(reference: str) -> bytes:
        return subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", reference],
            check=True, capture_output=True, timeout=60,
        ).stdout  # fmt: skip

    assert raw(f"oci:{bundle / 'oci'}:{signature}") == raw(f"docker://{signature}")


def test_a_trust_directory_written_by_the_notary_client_verifies(
    world: World, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    server = world.notary.host
    reader = NotaryCli(world.notary, bundle / "notary" / server)
    images = [f"{world.registry.host}/notary/app:1.0", f"{world.registry.host}/notary/app:2.0"]
    reader.run("list", f"{world.registry.host}/notary/app")
    direct = verdicts(world.config, images)
    offline = verdicts(world.config, images, offline=bundle)
    assert [outcome(v.allowed, v.digest, v.category) for v in offline] == [
        outcome(v.allowed, v.digest, v.category) for v in direct
    ]
    assert offline[0].allowed


def test_expired_notary_metadata_is_expired_offline(world: World, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    image = f"{world.registry.host}/notary/app:1.0"
    assert cli.main(
        ["bundle", "export", "--config", str(world.config), "--secrets-dir", str(tmp_path),
         "--now", NOW.isoformat(), "-o", str(bundle), image]
    ) == 0  # fmt: skip
    manifest = json.loads((bundle / "connaisseur-bundle.json").read_text())
    refresh = dt.datetime.fromisoformat(manifest["refreshBefore"].replace("Z", "+00:00"))
    later = refresh + dt.timedelta(minutes=1)
    done = subprocess.run(
        [sys.executable, "-m", "connaisseur.entrypoints.cli", "verify",
         "--config", str(world.config), "--offline", str(bundle),
         "--now", later.isoformat(), "--format", "json", image],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    verdict = json.loads(done.stdout)
    assert done.returncode == 1
    assert verdict["error"]["category"] == "expired"
