"""Bundles written by the real tools (docs/decisions/0055-offline-bundles.md): OCI layouts by
``skopeo copy`` (``--all`` for a multi-platform image) and ``crane pull`` from the real
registry, Notary trust directories by the real ``notary`` client; and the other way round,
``skopeo`` reading what ``connaisseur bundle export`` wrote. Freshness stays honest: Notary
metadata past its expiry is expired offline too. The servers run on both backends
(tests/integration/conftest.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from connaisseur.entrypoints import cli
from tests.support.containers import Backend
from tests.support.cosign import image_manifest, payload, sign_layout
from tests.support.cosign import sha256 as digest_of
from tests.support.notary_stack import NotaryCli
from tests.support.oci_layouts import OCI_INDEX, OCI_MANIFEST
from tests.support.oci_push import Pusher
from tests.support.offline_matrix import NOW, World, outcome, signed_world, verdicts
from tests.support.tools import find_tool

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[World]:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (scripts/system-packages.sh installs it)")
    with signed_world(tmp_path_factory.mktemp(f"tools-{backend}"), backend) as running_world:
        print(f"servers: {running_world.registry.backend}; {running_world.notary.backend}")
        yield running_world


def skopeo_copy(world: World, reference: str, layout: str, *extra: str) -> None:
    done = subprocess.run(
        ["skopeo", "copy", "-q", "--src-tls-verify=false", *extra,
         f"docker://{world.registry.host}/{reference}", f"oci:{layout}"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


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


async def _push_signed_index(world: World, repository: str) -> str:
    """A two-platform OCI image index under ``repository:1.0`` (as BuildKit pushes one), signed
    by the key the ``cosign-key`` validator trusts; returns the index's digest."""
    host = world.registry.host
    async with aiohttp.ClientSession() as session:
        push = Pusher(session, world.registry.url)
        children = []
        for arch in ("amd64", "arm64"):
            manifest, blobs = _oci_image(f"{repository} {arch}")
            for blob in blobs:
                await push.blob(repository, blob)
            digest = await push.manifest(repository, digest_of(manifest), manifest, OCI_MANIFEST)
            platform = {"architecture": arch, "os": "linux"}
            children.append(
                {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
                 "platform": platform}
            )  # fmt: skip
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
        index = await push.manifest(repository, "1.0", body.encode(), OCI_INDEX)
        signed = payload(index, f"{host}/{repository}")
        layout = sign_layout([(signed, world.signer.sign(signed), {})])
        await push.signatures(repository, index, layout)
    return index


def _oci_image(seed: str) -> tuple[bytes, list[bytes]]:
    """:func:`image_manifest`'s image with OCI media types."""
    manifest, blobs = image_manifest(seed)
    parsed = json.loads(manifest)
    parsed["mediaType"] = OCI_MANIFEST
    parsed["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json"
    parsed["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    return json.dumps(parsed).encode(), list(blobs.values())


def test_a_multi_platform_image_copied_with_all_verifies_like_the_registry(
    world: World, tmp_path: Path
) -> None:
    """``skopeo copy --all`` writes the index and every platform's manifest; the signature
    covers the index, whose digest is the one pinned."""
    index = asyncio.run(_push_signed_index(world, "cosign/multi"))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    signature = "cosign/multi:" + index.replace(":", "-") + ".sig"
    for reference in ("cosign/multi:1.0", signature):
        target = f"{bundle / 'oci'}:{world.registry.host}/{reference}"
        skopeo_copy(world, reference, target, "--all", "--preserve-digests")
    listed = json.loads((bundle / "oci" / "index.json").read_text())["manifests"]
    assert any(m["digest"] == index for m in listed)
    image = f"{world.registry.host}/cosign/multi:1.0"
    [direct] = verdicts(world.config, [image])
    [offline] = verdicts(world.config, [image], offline=bundle)
    assert outcome(offline.allowed, offline.digest, offline.category) == outcome(
        direct.allowed, direct.digest, direct.category
    )
    assert (offline.allowed, offline.digest) == (True, index)


def test_a_layout_written_by_crane_verifies_like_the_registry(world: World, tmp_path: Path) -> None:
    """``crane pull --format=oci --annotate-ref`` names each manifest by its full reference, the
    shape of a shared layout; crane keeps manifests byte for byte."""
    crane = find_tool("crane")
    if crane is None:
        pytest.skip("crane is not installed (no shared tools folder beside this checkout)")
    image = "cosign/signed:1.0"
    repository = image.split(":")[0]
    layout = tmp_path / "bundle" / "oci"
    for reference in (image, f"{repository}:{signature_tag(world, image)}"):
        subprocess.run(
            [str(crane), "pull", "--insecure", "--format=oci", "--annotate-ref",
             f"{world.registry.host}/{reference}", str(layout)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    full = f"{world.registry.host}/{image}"
    [offline] = verdicts(world.config, [full], offline=layout.parent)
    assert (offline.allowed, offline.digest) == (True, world.digests[image])


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
