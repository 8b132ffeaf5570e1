"""The offline adapters (docs/decisions/0055-offline-bundles.md) on bundles written in the test:
OCI layouts in both shapes, Notary trust directories, Rekor answers, and a hostile bundle
(tampered blobs, lying sizes, two answers for one tag, names that climb out, links that lead
out). Layouts written by the real skopeo and notary clients are read in
tests/integration/test_offline_bundles.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from connaisseur.adapters.bundle_files import BundleFiles
from connaisseur.adapters.oci_layout import OciLayoutRegistry
from connaisseur.adapters.rekor_directory import RekorDirectoryLog
from connaisseur.adapters.tuf_directory import TufDirectoryNotary
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint
from connaisseur.application.settings import AuthSettings
from connaisseur.domain.errors import Category, ConfigError, VerificationError
from connaisseur.domain.image import ImageReference
from tests.support.cosign import FakeRekor, image_manifest, sha256
from tests.support.fakes import FakeClock
from tests.support.oci_layouts import OCI_INDEX, LayoutWriter, artifact_manifest, index_of

ENDPOINT = Endpoint(auth=AuthSettings())
REPO = "registry.example:5000/team/app"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
SIG_TYPE = "application/vnd.example.signature"


def deadline() -> Deadline:
    return Deadline.after(FakeClock(), 10)


def image(ref: str) -> ImageReference:
    return ImageReference.parse(ref)


def registry(root: Path, **caps: int) -> tuple[OciLayoutRegistry, BundleFiles]:
    files = BundleFiles(root)
    return OciLayoutRegistry(files, **caps), files


async def category_of(call: object) -> Category | None:
    try:
        await call  # type: ignore[misc]
    except VerificationError as e:
        return e.category
    return None


@pytest.fixture
def shared(tmp_path: Path) -> dict[str, str]:
    """A shared layout: ``REPO:1.0`` (Docker manifest), its cosign-style ``.sig`` tag, a
    referrer listed untagged under REPO, the same referrer's twin listed under another
    repository, and a multi-arch index ``REPO:multi``."""
    out = LayoutWriter(tmp_path / "oci")
    body, blobs = image_manifest("app 1.0")
    for blob in blobs.values():
        out.blob(blob)
    digest = out.manifest(body, f"{REPO}:1.0", DOCKER)
    sig = out.manifest(b'{"schemaVersion":2,"layers":[]}', f"{REPO}:{digest.replace(':', '-')}.sig")
    layer = b"signature bytes"
    out.blob(layer)
    referrer = artifact_manifest(digest, len(body), SIG_TYPE, layer)
    ref_digest = out.manifest(referrer, f"{REPO}@{sha256(referrer)}")
    stranger = artifact_manifest(digest, len(body), SIG_TYPE, b"other repo")
    out.manifest(stranger, f"registry.example:5000/other/app@{sha256(stranger)}")
    child, _ = image_manifest("arm64")
    out.blob(child)
    multi = out.manifest(index_of((sha256(child), len(child))), f"{REPO}:multi", OCI_INDEX)
    out.write()
    return {
        "digest": digest,
        "sig": sig,
        "referrer": ref_digest,
        "child": sha256(child),
        "multi": multi,
        "root": str(tmp_path),
    }


async def test_a_tag_resolves_and_its_manifest_is_checked_against_its_digest(
    shared: dict[str, str],
) -> None:
    reg, _ = registry(Path(shared["root"]))
    ref = image(f"{REPO}:1.0")
    assert await reg.resolve(ref, ENDPOINT, deadline()) == shared["digest"]
    manifest = await reg.manifest(ref, "1.0", ENDPOINT, deadline())
    assert manifest.digest == shared["digest"]
    assert manifest.media_type == DOCKER
    by_digest = await reg.manifest(ref, shared["digest"], ENDPOINT, deadline())
    assert by_digest.body == manifest.body


async def test_what_the_bundle_lacks_is_what_a_registry_404_says(shared: dict[str, str]) -> None:
    reg, _ = registry(Path(shared["root"]))
    missing_tag = image(f"{REPO}:2.0")
    assert await category_of(reg.resolve(missing_tag, ENDPOINT, deadline())) is (
        Category.IMAGE_NOT_FOUND
    )
    other = image("registry.example:5000/nobody/here:1.0")
    with pytest.raises(VerificationError, match="not in the bundle") as info:
        await reg.manifest(other, "1.0", ENDPOINT, deadline())
    assert info.value.category is Category.IMAGE_NOT_FOUND
    artefact = "sha256-" + "0" * 64 + ".sig"
    assert await category_of(
        reg.manifest(image(f"{REPO}:1.0"), artefact, ENDPOINT, deadline())
    ) is (Category.NO_TRUST_DATA)
    unknown = "sha256:" + "1" * 64
    assert await category_of(reg.manifest(image(f"{REPO}:1.0"), unknown, ENDPOINT, deadline())) is (
        Category.IMAGE_NOT_FOUND
    )
    blob = BlobRef(digest=unknown)
    assert await category_of(reg.blob(image(f"{REPO}:1.0"), blob, ENDPOINT, deadline())) is (
        Category.NO_TRUST_DATA
    )


async def test_a_platform_manifest_is_found_through_its_index(shared: dict[str, str]) -> None:
    reg, _ = registry(Path(shared["root"]))
    ref = image(f"{REPO}@{shared['child']}")
    assert await reg.resolve(ref, ENDPOINT, deadline()) == shared["child"]


async def test_referrers_are_the_repository_s_own_and_filtered_by_type(
    shared: dict[str, str],
) -> None:
    reg, _ = registry(Path(shared["root"]))
    pinned = image(f"{REPO}@{shared['digest']}")
    found = await reg.referrers(pinned, "", ENDPOINT, deadline())
    # the twin listed under other/app refers to the same digest but is not this repository's
    assert [d.digest for d in found] == [shared["referrer"]]
    assert found[0].artifact_type == SIG_TYPE
    assert found[0].annotations == {"made-by": "test"}
    assert await reg.referrers(pinned, "application/other", ENDPOINT, deadline()) == []


async def test_referrers_tag_schema_and_subject_scan_are_joined(tmp_path: Path) -> None:
    out = LayoutWriter(tmp_path / "oci")
    body, _ = image_manifest("tagged referrers")
    digest = out.manifest(body, f"{REPO}:1.0", DOCKER)
    listed_only = artifact_manifest(digest, len(body), SIG_TYPE, b"a")
    out.blob(listed_only)
    tag_index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256(listed_only),
                    "size": len(listed_only),
                    "artifactType": SIG_TYPE,
                }
            ],
        }
    ).encode()
    out.manifest(tag_index, f"{REPO}:{digest.replace(':', '-')}", OCI_INDEX)
    out.write()
    reg, _ = registry(tmp_path)
    found = await reg.referrers(image(f"{REPO}@{digest}"), SIG_TYPE, ENDPOINT, deadline())
    assert [d.digest for d in found] == [sha256(listed_only)]


async def test_an_oras_shaped_layout_of_one_repository_serves_it(tmp_path: Path) -> None:
    out = LayoutWriter(tmp_path / "oci" / "registry.example:5000" / "team" / "app")
    body, _ = image_manifest("oras")
    digest = out.manifest(body, "v1", DOCKER)
    referrer = artifact_manifest(digest, len(body), SIG_TYPE, b"x")
    out.blob(b"x")
    out.manifest(referrer)  # oras lists referrers without a name
    out.write()
    reg, _ = registry(tmp_path)
    assert await reg.resolve(image(f"{REPO}:v1"), ENDPOINT, deadline()) == digest
    found = await reg.referrers(image(f"{REPO}@{digest}"), "", ENDPOINT, deadline())
    assert [d.digest for d in found] == [sha256(referrer)]
    assert await category_of(reg.resolve(image(f"{REPO}:v2"), ENDPOINT, deadline())) is (
        Category.IMAGE_NOT_FOUND
    )


async def test_a_tampered_blob_or_lying_size_only_denies(tmp_path: Path) -> None:
    out = LayoutWriter(tmp_path / "oci")
    body, _ = image_manifest("tampered")
    digest = out.manifest(body, f"{REPO}:1.0", DOCKER)
    lying, _ = image_manifest("lying size")
    out.manifest(lying, f"{REPO}:lying", DOCKER, size=len(lying) + 1)
    payload = out.blob(b"payload")
    out.write()
    blob_file = tmp_path / "oci" / "blobs" / "sha256"
    (blob_file / digest.removeprefix("sha256:")).write_bytes(
        body.replace(b'"schemaVersion": 2', b'"schemaVersion": 3')
    )
    (blob_file / payload.removeprefix("sha256:")).write_bytes(b"payloaX")
    reg, _ = registry(tmp_path)
    ref = image(f"{REPO}:1.0")
    for call in (
        reg.manifest(ref, "1.0", ENDPOINT, deadline()),
        reg.manifest(ref, "lying", ENDPOINT, deadline()),
        reg.blob(ref, BlobRef(digest=payload), ENDPOINT, deadline()),
        reg.blob(ref, BlobRef(digest=payload, size=99), ENDPOINT, deadline()),
    ):
        assert await category_of(call) is Category.MALFORMED_TRUST_DATA


async def test_two_manifests_for_one_tag_are_no_answer(tmp_path: Path) -> None:
    out = LayoutWriter(tmp_path / "oci")
    out.manifest(image_manifest("one")[0], f"{REPO}:1.0", DOCKER)
    out.manifest(image_manifest("two")[0], f"docker.example/../{REPO}:1.0", DOCKER)  # ignored
    out.manifest(image_manifest("three")[0], f"{REPO}:1.0", DOCKER)
    out.write()
    reg, _ = registry(tmp_path)
    assert await category_of(reg.resolve(image(f"{REPO}:1.0"), ENDPOINT, deadline())) is (
        Category.MALFORMED_TRUST_DATA
    )


async def test_blob_caps_are_those_of_the_online_adapter(tmp_path: Path) -> None:
    out = LayoutWriter(tmp_path / "oci")
    out.manifest(image_manifest("caps")[0], f"{REPO}:1.0", DOCKER)
    big = out.blob(b"x" * 2000)
    out.write()
    reg, _ = registry(tmp_path, max_blob_bytes=1000)
    ref = image(f"{REPO}:1.0")
    declared = BlobRef(digest=big, size=2000)
    assert await category_of(reg.blob(ref, declared, ENDPOINT, deadline())) is (
        Category.MALFORMED_TRUST_DATA
    )
    undeclared = BlobRef(digest=big, max_bytes=1500)
    assert await category_of(reg.blob(ref, undeclared, ENDPOINT, deadline())) is (
        Category.FETCH_FAILED
    )


async def test_each_file_is_read_once_even_under_concurrency(shared: dict[str, str]) -> None:
    reg, files = registry(Path(shared["root"]))
    ref = image(f"{REPO}:1.0")

    async def verify_once() -> None:
        await reg.manifest(ref, "1.0", ENDPOINT, deadline())
        await reg.referrers(ref.with_digest(shared["digest"]), "", ENDPOINT, deadline())

    await asyncio.gather(*(verify_once() for _ in range(20)))
    first = (files.counter.files, files.counter.bytes)
    await asyncio.gather(*(verify_once() for _ in range(20)))
    assert (files.counter.files, files.counter.bytes) == first
    # index.json, the manifest, and each listed manifest of the repository scanned once
    assert files.counter.files == len({"index.json", *reg_files_read(shared)})


def reg_files_read(shared: dict[str, str]) -> set[str]:
    return {shared["digest"], shared["sig"], shared["referrer"]}


def test_a_missing_bundle_directory_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        BundleFiles(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        BundleFiles(tmp_path / "file")


async def test_names_that_climb_out_and_links_that_lead_out_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"signed": {}}')
    bundle = tmp_path / "bundle"
    tuf = bundle / "notary" / "notary.example" / "tuf" / "repo" / "metadata"
    tuf.mkdir(parents=True)
    (tuf / "root.json").symlink_to(secret)
    (bundle / "notary" / "escape").symlink_to(tmp_path)  # a directory link out: not walked
    files = BundleFiles(bundle)
    assert not any("escape" in name for name in files.names())
    notary = TufDirectoryNotary(files)
    with pytest.raises(VerificationError, match="outside the bundle") as info:
        await notary.fetch_roles("https://notary.example", "repo", ["root"], ENDPOINT, deadline())
    assert info.value.category is Category.MALFORMED_TRUST_DATA
    for gun in ("../../..", "repo/../repo", "a//b"):
        with pytest.raises(VerificationError, match="unsafe name"):
            await notary.fetch_roles("https://notary.example", gun, ["root"], ENDPOINT, deadline())


async def test_a_configmap_volume_is_read_through_its_links(tmp_path: Path) -> None:
    """Kubernetes mounts a ConfigMap as links into ``..data``, itself a link to a timestamped
    directory; the bookkeeping entries are not files of the bundle."""
    volume = tmp_path / "volume"
    real = volume / "..2026_01_01_00_00_00.1"
    tuf = real / "notary" / "notary.example" / "tuf" / "repo" / "metadata"
    tuf.mkdir(parents=True)
    (tuf / "root.json").write_bytes(b'{"signed": {"_type": "root"}}')
    (volume / "..data").symlink_to(real.name)
    (volume / "notary").symlink_to("..data/notary")
    files = BundleFiles(volume)
    assert files.names() == {"notary/notary.example/tuf/repo/metadata/root.json"}
    notary = TufDirectoryNotary(files)
    got = await notary.fetch_roles(
        "https://notary.example", "repo", ["root", "timestamp"], ENDPOINT, deadline()
    )
    assert got == {"root": b'{"signed": {"_type": "root"}}', "timestamp": None}


async def test_a_file_over_the_cap_is_malformed(tmp_path: Path) -> None:
    tuf = tmp_path / "notary" / "notary.example:4443" / "tuf" / "repo" / "metadata"
    tuf.mkdir(parents=True)
    (tuf / "targets.json").write_bytes(b"x" * 101)
    notary = TufDirectoryNotary(BundleFiles(tmp_path, max_file_bytes=100))
    with pytest.raises(VerificationError, match="larger than 100") as info:
        await notary.fetch_roles(
            "https://notary.example:4443", "repo", ["targets"], ENDPOINT, deadline()
        )
    assert info.value.category is Category.MALFORMED_TRUST_DATA


async def test_rekor_answers_are_parsed_and_junk_is_malformed(tmp_path: Path) -> None:
    rekor = FakeRekor()
    entry = rekor.entry(b"payload", b"sig", "pem", 1_700_000_000)
    where = tmp_path / "rekor" / "rekor.example"
    where.mkdir(parents=True)
    good, junk = "a" * 64, "b" * 64
    answer = [{"uuid-1": FakeRekor.api_entry(entry)}, {"uuid-2": {"body": "not base64!"}}]
    (where / f"{good}.json").write_text(json.dumps(answer))
    (where / f"{junk}.json").write_text('{"not": "a list"}')
    log = RekorDirectoryLog(BundleFiles(tmp_path))
    found = await log.find_entries("https://rekor.example", f"sha256:{good}", deadline())
    assert found == [entry]  # the unparsable entry is left out, as online
    assert await log.find_entries("https://rekor.example", "sha256:" + "c" * 64, deadline()) == []
    with pytest.raises(VerificationError) as info:
        await log.find_entries("https://rekor.example", f"sha256:{junk}", deadline())
    assert info.value.category is Category.MALFORMED_TRUST_DATA


async def test_a_file_gone_since_the_listing_is_a_fetch_failure(tmp_path: Path) -> None:
    """A volume changed under a running process (a ConfigMap update) is an outage of the
    bundle, never "no trust data"."""
    tuf = tmp_path / "notary" / "h" / "tuf" / "g" / "metadata"
    tuf.mkdir(parents=True)
    (tuf / "root.json").write_text("{}")
    notary = TufDirectoryNotary(BundleFiles(tmp_path))
    (tuf / "root.json").unlink()
    with pytest.raises(VerificationError) as info:
        await notary.fetch_roles("https://h", "g", ["root"], ENDPOINT, deadline())
    assert info.value.category is Category.FETCH_FAILED


async def test_a_flat_bundle_is_read_through_its_manifest_and_checked(tmp_path: Path) -> None:
    """The ConfigMap shape (``connaisseur bundle kubernetes``): one file per content named by
    its SHA-256, paths from the manifest; a file whose content is not its name is refused."""
    role = b'{"signed": {"_type": "timestamp"}}'
    other = b'{"signed": {"_type": "snapshot"}}'
    base = "notary/notary.example/tuf/repo/metadata"
    manifest = {
        "files": {f"{base}/timestamp.json": sha256(role), f"{base}/snapshot.json": sha256(other)}
    }
    (tmp_path / "connaisseur-bundle.json").write_text(json.dumps(manifest))
    (tmp_path / sha256(role).removeprefix("sha256:")).write_bytes(role)
    (tmp_path / sha256(other).removeprefix("sha256:")).write_bytes(b"swapped content")
    notary = TufDirectoryNotary(BundleFiles(tmp_path))
    got = await notary.fetch_roles(
        "https://notary.example", "repo", ["timestamp", "root"], ENDPOINT, deadline()
    )
    assert got == {"timestamp": role, "root": None}
    with pytest.raises(VerificationError, match="does not match its name") as info:
        await notary.fetch_roles(
            "https://notary.example", "repo", ["snapshot"], ENDPOINT, deadline()
        )
    assert info.value.category is Category.MALFORMED_TRUST_DATA
