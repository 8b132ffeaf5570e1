"""Signatures and attestations written by the REAL cosign (v2 and v3) into a REAL registry,
verified by our validator, our CLI and our webhook (docs/decisions/0040-cosign-signature-formats.md,
0041-sigstore-bundles.md, 0042-attestation-conditions.md).

Each cosign mode signs its own image in Debian's ``docker-registry`` (distribution 2.8: no
referrers API, so referrers are found through the ``sha256-<hex>`` tag schema cosign writes):
classic ``.sig`` (cosign v2, and v3 with ``--new-bundle-format=false``), a Sigstore bundle
referrer (cosign v2 ``--new-bundle-format``, cosign v3's default) and a classic signature
manifest as a referrer (cosign v2 ``--registry-referrers-mode=oci-1-1``). The registry runs on
both backends (tests/integration/conftest.py). Attestations are SLSA v1 provenance predicates,
classic (``.att``) and bundle. Keys, no transparency log: the rules set
``verifyInTransparencyLog: false``. Skips (one line) when the cosign binaries are not found.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.config.loader import build_settings
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.verdict import TrustedDigest
from tests.support.admission import admission_review, decoded_patch, pod
from tests.support.cli import cli
from tests.support.containers import Backend
from tests.support.cosign import image_manifest, public_pem
from tests.support.cosign_tools import FORMAT, SLSA_PROVENANCE_V1, Cosign, Mode, real_cosign
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.no_network import network_namespace_prefix
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer, registry_server
from tests.support.webhook_process import serve_webhook

pytestmark = pytest.mark.integration
CLOCK = FakeClock()
OTHER_KEY = public_pem(ec.generate_private_key(ec.SECP256R1()))
BUILDER = "https://github.com/actions/runner/github-hosted"


@dataclass
class World:
    """The registry, cosign, and the digest of every image the module signed."""

    registry: RegistryServer
    cosign: Cosign
    digests: dict[str, str]

    def image(self, repo: str) -> str:
        return f"{self.registry.host}/{repo}@{self.digests[repo]}"


def _slug(mode: Mode) -> str:
    return "modes/" + mode.name.lower().replace("_", "-")


async def _push(url: str, repos: list[str]) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(session, url)
        digests = {}
        for repo in repos:
            manifest, blobs = image_manifest(repo)
            digests[repo] = await pusher.image(repo, "1", manifest, blobs)
        return digests


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[World]:
    cosign = real_cosign(tmp_path_factory.mktemp(f"cosign-{backend}"))
    repos = [*(_slug(m) for m in Mode), "both/app", "attested/classic", "attested/bundle"]
    storage = tmp_path_factory.mktemp(f"registry-{backend}")
    with registry_server(storage, backend=backend) as registry:
        print(f"registry backend: {registry.backend}")
        digests = asyncio.run(_push(registry.url, repos))
        found = World(registry, cosign, digests)
        for mode in Mode:
            cosign.sign(mode, found.image(_slug(mode)))
        cosign.sign(Mode.V2_CLASSIC, found.image("both/app"))
        cosign.sign(Mode.V3_DEFAULT, found.image("both/app"))
        cosign.sign(Mode.V2_CLASSIC, found.image("attested/classic"))
        cosign.attest(found.image("attested/classic"), bundle=False)
        cosign.sign(Mode.V3_DEFAULT, found.image("attested/bundle"))
        cosign.attest(found.image("attested/bundle"), bundle=True)
        yield found


def config(world: World, **with_: Any) -> dict[str, Any]:
    """A configuration as a user writes it: the cosign key as ``default``, an unrelated key as
    ``other``, one rule for the registry."""
    roots = [
        {"name": "default", "key": world.cosign.public_pem},
        {"name": "other", "key": OTHER_KEY},
    ]
    return {
        "validators": [{"name": "default", "type": "cosign", "trustRoots": roots}],
        "policy": [
            {
                "pattern": f"{world.registry.host}/*",
                "with": {"verifyInTransparencyLog": False, **with_},
            }
        ],
    }


async def verify(world: World, repo: str, **with_: Any) -> TrustedDigest:
    settings = build_settings(config(world, **with_), secrets_dir=None, env={})
    rule = settings.policy.rules[0]
    async with aiohttp.ClientSession() as session:
        registry = AiohttpRegistryClient(HttpClient(session), CLOCK)
        validator = CosignValidator(
            settings.validators[0], registry, unreachable_transparency_log(), CLOCK
        )
        image = ImageReference.parse(world.image(repo))
        return await validator.validate(image, rule.options, Deadline.after(CLOCK, 20))


async def denial(world: World, repo: str, **with_: Any) -> ConnaisseurError:
    with pytest.raises(ConnaisseurError) as err:
        await verify(world, repo, **with_)
    return err.value


@pytest.mark.parametrize("mode", list(Mode), ids=[m.name.lower() for m in Mode])
async def test_every_cosign_mode_verifies(world: World, mode: Mode) -> None:
    repo = _slug(mode)
    assert (await verify(world, repo)).digest == world.digests[repo]
    own = FORMAT[mode]
    assert (await verify(world, repo, signatureFormat=own)).digest == world.digests[repo]
    other = "bundle" if own == "classic" else "classic"
    excluded = await denial(world, repo, signatureFormat=other)
    assert excluded.category is Category.NO_TRUST_DATA
    assert "which with.signatureFormat excludes" in excluded.message


@pytest.mark.parametrize("mode", list(Mode), ids=[m.name.lower() for m in Mode])
async def test_every_cosign_mode_is_refused_under_another_key(world: World, mode: Mode) -> None:
    err = await denial(world, _slug(mode), trustRoot="other")
    assert err.category is Category.SIGNATURE_INVALID
    assert "does not verify with trust root other" in err.message


async def test_one_key_in_both_formats_is_one_signer(world: World) -> None:
    err = await denial(world, "both/app", trustRoot="*", threshold=2)
    assert err.category is Category.THRESHOLD_NOT_MET
    assert "(1/2)" in err.message
    trusted = await verify(world, "both/app", trustRoot="*", threshold=1)
    assert trusted.signers == ("default",)


@pytest.mark.parametrize("repo", ["attested/classic", "attested/bundle"])
async def test_slsa_provenance_is_required_and_checked(world: World, repo: str) -> None:
    workflow = "buildDefinition.externalParameters.workflow"
    attestations: list[dict[str, Any]] = [
        {
            "predicateType": SLSA_PROVENANCE_V1,
            "conditions": [
                {"field": "runDetails.builder.id", "equals": BUILDER},
                {"field": f"{workflow}.repository", "matches": r"https://github\.com/acme/.+"},
                {"field": f"{workflow}.ref", "oneOf": ["refs/heads/main", "refs/heads/release"]},
            ],
        }
    ]
    assert (await verify(world, repo, attestations=attestations)).digest == world.digests[repo]
    attestations[0]["conditions"][0]["equals"] = "https://evil.example/builder"
    err = await denial(world, repo, attestations=attestations)
    assert err.category is Category.PREDICATE_MISMATCH
    assert SLSA_PROVENANCE_V1 in err.message
    assert "runDetails.builder.id" in err.message


async def test_a_missing_attestation_denies(world: World) -> None:
    required = [{"predicateType": SLSA_PROVENANCE_V1}]
    err = await denial(world, _slug(Mode.V3_DEFAULT), attestations=required)
    assert err.category is Category.NO_TRUST_DATA
    assert f"no attestation of type {SLSA_PROVENANCE_V1}" in err.message


async def test_an_attestation_by_another_key_does_not_count(world: World) -> None:
    required = [{"predicateType": SLSA_PROVENANCE_V1}]
    # "other" vouches for nothing: neither the signature nor the provenance.
    err = await denial(world, "attested/bundle", trustRoot="other", attestations=required)
    assert err.category is Category.SIGNATURE_INVALID


def every_mode_config(world: World, tmp_path: Path) -> tuple[Path, list[str]]:
    """A configuration file that requires the provenance of ``attested/*``, and every mode's
    repository with the attested ones."""
    doc = config(world)
    doc["policy"].append(
        {
            "pattern": f"{world.registry.host}/attested/*",
            "with": {
                "verifyInTransparencyLog": False,
                "attestations": [
                    {
                        "predicateType": SLSA_PROVENANCE_V1,
                        "conditions": [{"field": "runDetails.builder.id", "equals": BUILDER}],
                    }
                ],
            },
        }
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, [*(_slug(m) for m in Mode), "attested/classic", "attested/bundle"]


async def test_cli_and_webhook_verify_every_mode(world: World, tmp_path: Path) -> None:
    path, repos = every_mode_config(world, tmp_path)
    tagged = [f"{world.registry.host}/{repo}:1" for repo in repos]
    result = await cli("verify", "--config", str(path), "--format", "json", *tagged)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v["digest"] for v in verdicts] == [world.digests[r] for r in repos]
    with serve_webhook(tmp_path, path) as webhook:
        answer = webhook.review(admission_review(pod(*tagged)))
    assert answer["response"]["allowed"] is True, answer
    pinned = [op["value"] for op in decoded_patch(answer["response"])]
    assert pinned == [f"{world.registry.host}/{r}:1@{world.digests[r]}" for r in repos]


def test_every_mode_verifies_from_an_exported_bundle_without_network(
    world: World, tmp_path: Path
) -> None:
    """An offline bundle (docs/decisions/0055-offline-bundles.md) carries what the real cosign
    wrote — ``.sig`` and ``.att`` tags, Sigstore bundle referrers and their ``sha256-<hex>``
    index — and verifies the same, attestations included, in a process without network."""
    path, repos = every_mode_config(world, tmp_path)
    tagged = [f"{world.registry.host}/{repo}:1" for repo in repos]
    bundle = tmp_path / "bundle"
    command = [sys.executable, "-m", "connaisseur.entrypoints.cli"]
    exported = subprocess.run(
        [*command, "bundle", "export", "--config", str(path), "--format", "json",
         "-o", str(bundle), *tagged],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stdout + exported.stderr
    isolated = network_namespace_prefix() or []  # without one, --offline still reads no upstream
    offline = subprocess.run(
        [*isolated, *command, "verify", "--config", str(path), "--offline", str(bundle),
         "--format", "json", *tagged],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    verdicts = [json.loads(line) for line in offline.stdout.splitlines()]
    assert [v["digest"] for v in verdicts] == [world.digests[r] for r in repos]


async def test_the_webhook_denies_provenance_from_another_builder(
    world: World, tmp_path: Path
) -> None:
    required = [
        {
            "predicateType": SLSA_PROVENANCE_V1,
            "conditions": [{"field": "runDetails.builder.id", "equals": "https://other.example"}],
        }
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(world, attestations=required)))
    with serve_webhook(tmp_path, path) as webhook:
        answer = webhook.review(admission_review(pod(f"{world.registry.host}/attested/bundle:1")))
    assert answer["response"]["allowed"] is False
    message = answer["response"]["status"]["message"]
    assert SLSA_PROVENANCE_V1 in message
    assert "runDetails.builder.id" in message


async def test_verify_explain_lists_every_signature_and_attestation(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    options = {"signatureFormat": "bundle", "trustRoot": "*", "threshold": 1}
    path.write_text(yaml.safe_dump(config(world, **options)))
    images = [f"{world.registry.host}/attested/bundle:1", f"{world.registry.host}/both/app:1"]
    result = await cli("verify", "--config", str(path), "--format", "json", "--explain", *images)
    assert result.returncode == 0, result.stdout + result.stderr
    attested, both = (json.loads(line) for line in result.stdout.splitlines())
    kinds = sorted((f["kind"], f["format"], f["counted"]) for f in attested["evidence"])
    assert kinds == [("attestation", "bundle", False), ("signature", "bundle", True)]
    provenance = next(f for f in attested["evidence"] if f["kind"] == "attestation")
    assert provenance["predicateType"] == SLSA_PROVENANCE_V1
    assert provenance["trustRoots"] == ["default"]
    assert "requires no such attestation" in provenance["why"]
    signature = next(f for f in attested["evidence"] if f["kind"] == "signature")
    assert signature["where"].startswith("referrer sha256:")
    assert signature["trustRoots"] == ["default"]
    assert signature["notFor"] == ["signature does not verify with trust root other"]
    # the same key also signed in the classic layout: listed, excluded by the rule
    formats = {(f["format"], f["counted"]) for f in both["evidence"] if f.get("kind")}
    assert formats == {("bundle", True), ("classic", False)}
    excluded = next(f for f in both["evidence"] if f.get("format") == "classic")
    assert excluded["why"] == "with.signatureFormat: bundle excludes it"
