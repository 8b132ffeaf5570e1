"""Pointing validators at an offline bundle is configuration only
(docs/decisions/0056-adapter-choice-is-configuration.md): the loader checks ``source`` and
``--offline`` once, the container swaps the adapters behind the ports, the validator classes stay
the same, a verification from a bundle opens no connection, and a cached verdict made from a
bundle is not served to the same validator reading its upstreams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.adapters.oci_layout import OciLayoutRegistry
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.adapters.rekor_directory import RekorDirectoryLog
from connaisseur.adapters.tuf_directory import TufDirectoryNotary
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.configuration import trust_data_sources
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import load_settings
from connaisseur.domain.errors import ConfigError
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.no_network import no_network
from tests.support.oci_layouts import LayoutWriter

IMAGE = "registry.example:5000/team/app"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


def config(tmp_path: Path, signer: Signer, **cosign: Any) -> Path:
    document = {
        "validators": [
            {"name": "allow", "type": "static", "approve": True},
            {
                "name": "cosign",
                "type": "cosign",
                "trustRoots": [{"name": "default", "key": signer.public_pem}],
                **cosign,
            },
            {
                "name": "notary",
                "type": "notaryv1",
                "host": "https://notary.example",
                "trustRoots": [{"name": "default", "key": signer.public_pem}],
            },
        ],
        "policy": [
            {"pattern": "*:*", "validator": "cosign", "with": {"verifyInTransparencyLog": False}},
            {"pattern": "docker.io/library/*:*", "validator": "allow"},
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def signed_bundle(root: Path, signer: Signer) -> str:
    """A bundle holding ``IMAGE:1.0`` and its cosign signature; returns the digest."""
    out = LayoutWriter(root / "oci")
    body, _ = image_manifest("offline unit")
    digest = out.manifest(body, f"{IMAGE}:1.0", DOCKER)
    signed = payload(digest, f"{IMAGE}:1.0")
    layout = sign_layout([(signed, signer.sign(signed), {})])
    for blob in layout.blobs.values():
        out.blob(blob)
    out.manifest(layout.manifest, f"{IMAGE}:{digest.replace(':', '-')}.sig")
    out.write()
    return digest


def problems(path: Path, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, **kwargs)
    return info.value.problems


async def test_a_bundle_source_swaps_the_adapters_and_nothing_else(
    tmp_path: Path, signer: Signer
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    online = build_container(load_settings(config(tmp_path, signer)))
    offline = build_container(
        load_settings(config(tmp_path, signer, source={"type": "bundle", "path": str(bundle)}))
    )
    async with running(online), running(offline):
        up = online.trust_data().for_validator("cosign")
        down = offline.trust_data().for_validator("cosign")
        assert isinstance(up.registry, AiohttpRegistryClient)
        assert isinstance(down.registry, OciLayoutRegistry)
        assert isinstance(down.tlog, RekorDirectoryLog)
        # only the validator pointed at the bundle reads it
        assert isinstance(offline.trust_data().for_validator("notary").notary, NotaryV1HttpClient)
        validators_online = {n: type(v) for n, v in online.validators().items()}
        assert validators_online == {n: type(v) for n, v in offline.validators().items()}


async def test_offline_points_every_signature_validator_at_one_bundle(
    tmp_path: Path, signer: Signer
) -> None:
    bundle, own = tmp_path / "bundle", tmp_path / "own"
    bundle.mkdir()
    own.mkdir()
    path = config(tmp_path, signer, source={"type": "bundle", "path": str(own)})
    settings = load_settings(path, offline=bundle)
    assert trust_data_sources(settings).bundle_for("cosign") == bundle  # --offline wins
    assert trust_data_sources(settings).bundle_for("allow") is None  # static reads nothing
    container = build_container(settings)
    async with running(container):
        cosign = container.trust_data().for_validator("cosign")
        notary = container.trust_data().for_validator("notary")
        assert isinstance(notary.notary, TufDirectoryNotary)
        assert cosign is notary  # one bundle, one read-once file cache


def test_source_problems_are_reported_with_their_paths(tmp_path: Path, signer: Signer) -> None:
    missing = tmp_path / "missing"
    assert problems(config(tmp_path, signer, source={"type": "bundle"})) == (
        "validators[1].source.path: a bundle source needs a path",
    )
    assert problems(config(tmp_path, signer, source={"type": "upstream", "path": "/x"})) == (
        "validators[1].source.path: only a bundle source has a path",
    )
    assert problems(config(tmp_path, signer, source={"type": "bundle", "path": str(missing)})) == (
        f"validators[1].source.path: bundle directory {missing} does not exist",
    )
    assert problems(config(tmp_path, signer), offline=missing) == (
        f"--offline: bundle directory {missing} does not exist",
    )
    assert problems(config(tmp_path, signer, source={"type": "mirror"}))[0].startswith(
        "validators[1].source.type: Must be one of"
    )


def test_commands_that_read_no_trust_data_do_not_check_the_bundle(
    tmp_path: Path, signer: Signer
) -> None:
    path = config(tmp_path, signer, source={"type": "bundle", "path": "/not/mounted/here"})
    settings = load_settings(path, secrets_dir=None)  # what `explain` does
    assert [v.name for v in settings.validators] == ["allow", "cosign", "notary"]


def test_a_verdict_from_a_bundle_is_cached_apart(tmp_path: Path, signer: Signer) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    online = build_container(load_settings(config(tmp_path, signer)))
    offline = build_container(load_settings(config(tmp_path, signer), offline=bundle))
    up, down = online.cache_policy(), offline.cache_policy()
    assert up.validator_fingerprints["cosign"] != down.validator_fingerprints["cosign"]
    assert up.validator_fingerprints["allow"] == down.validator_fingerprints["allow"]


async def test_a_verification_from_a_bundle_opens_no_connection(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    digest = signed_bundle(bundle, signer)
    container = build_container(load_settings(config(tmp_path, signer), offline=bundle))
    with no_network(monkeypatch) as attempts:
        async with running(container):
            verify = container.verify_image()
            deadline = Deadline.after(container.clock(), 10)
            signed = await verify.execute(VerifyImageCommand(image=f"{IMAGE}:1.0"), deadline)
            unsigned = await verify.execute(VerifyImageCommand(image=f"{IMAGE}:2.0"), deadline)
    assert attempts.seen == []
    assert signed.allowed
    assert signed.digest == digest
    assert not unsigned.allowed
    assert unsigned.category == "image_not_found"
    assert "not in the bundle" in (unsigned.message or "")


async def test_the_guard_catches_a_verification_that_reaches_out(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same verification reading its upstreams is stopped by the guard: the check above
    can fail."""
    container = build_container(load_settings(config(tmp_path, signer)))
    with no_network(monkeypatch) as attempts:
        async with running(container):
            deadline = Deadline.after(container.clock(), 10)
            verdict = await container.verify_image().execute(
                VerifyImageCommand(image=f"{IMAGE}:1.0"), deadline
            )
    assert attempts.seen
    assert not verdict.allowed
