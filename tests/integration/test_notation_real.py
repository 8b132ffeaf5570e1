"""Signatures written by the REAL ``notation`` CLI (v1.3) into a REAL registry, verified by our
CLI and our webhook (README "Notation validator", docs/decisions/0043-explain-every-signature.md).

``notation cert generate-test`` makes a self-signed RSA test certificate, which the validator
trusts as its ``default`` root; a second one is the stranger. Each case signs its own image in
Debian's ``docker-registry`` (distribution 2.8: no referrers API, so notation writes the
``sha256-<hex>`` referrers tag schema): JWS (notation's default) and COSE
(``--signature-format cose``), a signature by the stranger, none at all, and signatures with
``--expiry``. The registry runs as Debian's binary and in a container (the ``backend``
fixture). Skips (one line) when the notation binary is not found.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.admission import admission_review, decoded_patch, pod
from tests.support.cli import Result, cli
from tests.support.cosign import image_manifest
from tests.support.notation_tools import Notation, real_notation
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer
from tests.support.webhook_process import serve_webhook

pytestmark = pytest.mark.integration
SIGNER, STRANGER = "connaisseur.test", "stranger.test"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

#: repository -> the ``notation sign`` options it is signed with (None: left unsigned)
SIGNINGS: dict[str, list[str] | None] = {
    "signed/jws": [],
    "signed/cose": ["--signature-format", "cose"],
    "signed/stranger": ["--key", STRANGER],
    "unsigned/app": None,
    "expiring/second": ["--expiry", "1s"],
    "expiring/hour": ["--expiry", "1h", "--signature-format", "cose"],
}


@dataclass
class World:
    """The registry, notation, the trusted and the stranger's certificate, every digest, and
    when the one-second signature had surely expired."""

    registry: RegistryServer
    notation: Notation
    cert: str
    stranger_cert: str
    digests: dict[str, str]
    second_expired_at: float

    def tagged(self, repo: str) -> str:
        return f"{self.registry.host}/{repo}:1"

    def pinned(self, repo: str) -> str:
        return f"{self.registry.host}/{repo}@{self.digests[repo]}"


async def _push(url: str, repos: list[str]) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        pusher = Pusher(session, url)
        digests = {}
        for repo in repos:
            manifest, blobs = image_manifest(f"notation real {repo}")
            digests[repo] = await pusher.image(repo, "1", manifest, blobs)
        return digests


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, plain_registry: RegistryServer) -> World:
    """Every image of :data:`SIGNINGS` pushed to the module's registry (on the backend under
    test) and signed by the real notation."""
    notation = real_notation(tmp_path_factory.mktemp("notation"))
    cert = notation.generate_test_key(SIGNER, default=True)
    stranger_cert = notation.generate_test_key(STRANGER)
    found = World(plain_registry, notation, cert, stranger_cert, {}, 0.0)
    found.digests = asyncio.run(_push(plain_registry.url, list(SIGNINGS)))
    for repo, options in SIGNINGS.items():
        if options is not None:
            notation.sign(found.pinned(repo), *options)
        if repo == "expiring/second":
            # signingTime is written in whole seconds: 2 s after signing, 1 s has passed
            found.second_expired_at = time.time() + 2
    print(f"notation {notation.version}, registry backend: {plain_registry.backend}")
    return found


def config(world: World, trust_root: str = "default") -> dict[str, Any]:
    """A configuration as a user writes it: the generate-test certificate as ``default``, the
    stranger's as ``stranger``, one rule for the registry selecting ``trust_root``."""
    roots = [
        {"name": "default", "cert": world.cert},
        {"name": "stranger", "cert": world.stranger_cert},
    ]
    return {
        "validators": [{"name": "notation", "type": "notation", "trustRoots": roots}],
        "policy": [
            {
                "pattern": f"{world.registry.host}/*",
                "validator": "notation",
                "with": {"trustRoot": trust_root},
            }
        ],
    }


def config_file(world: World, tmp_path: Path, trust_root: str = "default") -> Path:
    path = tmp_path / f"config-{trust_root}.yaml"
    path.write_text(yaml.safe_dump(config(world, trust_root)))
    return path


async def verify(path: Path, *images: str, options: tuple[str, ...] = ()) -> Result:
    return await cli("verify", "--config", str(path), "--format", "json", *options, *images)


def verdicts(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


async def denial(world: World, tmp_path: Path, repo: str, *options: str) -> dict[str, Any]:
    """The CLI's error for ``repo:1`` (exit code 1, not admitted)."""
    result = await verify(config_file(world, tmp_path), world.tagged(repo), options=options)
    assert result.returncode == 1, result.stdout + result.stderr
    [verdict] = verdicts(result)
    assert verdict["allowed"] is False
    error: dict[str, Any] = verdict["error"]
    assert error["message"].startswith(
        f"notation: image {world.tagged(repo)} (trust roots: default): "
    ), error
    return error


def referrers_of(world: World, repo: str) -> list[str]:
    """The signature manifests notation listed in the ``sha256-<hex>`` referrers tag."""
    tag = world.digests[repo].replace(":", "-")
    url = f"{world.registry.url}/v2/{repo}/manifests/{tag}"
    request = urllib.request.Request(url, headers={"Accept": OCI_INDEX})
    with urllib.request.urlopen(request, timeout=10) as answer:
        index = json.load(answer)
    return [m["digest"] for m in index["manifests"]]


async def test_jws_and_cose_signatures_verify_through_the_cli(world: World, tmp_path: Path) -> None:
    repos = ["signed/jws", "signed/cose", "expiring/hour"]
    result = await verify(config_file(world, tmp_path), *(world.tagged(r) for r in repos))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [v["digest"] for v in verdicts(result)] == [world.digests[r] for r in repos]


async def test_the_webhook_admits_and_pins_the_signed_digests(world: World, tmp_path: Path) -> None:
    repos = ["signed/jws", "signed/cose"]
    with serve_webhook(tmp_path, config_file(world, tmp_path)) as webhook:
        admitted = webhook.review(admission_review(pod(*(world.tagged(r) for r in repos))))
        stranger = webhook.review(admission_review(pod(world.tagged("signed/stranger"))))
    assert admitted["response"]["allowed"] is True, admitted
    pinned = [op["value"] for op in decoded_patch(admitted["response"])]
    assert pinned == [f"{world.tagged(r)}@{world.digests[r]}" for r in repos]
    assert stranger["response"]["allowed"] is False
    assert "chains to the trust roots" in stranger["response"]["status"]["message"]


async def test_a_signature_by_another_test_certificate_is_denied(
    world: World, tmp_path: Path
) -> None:
    error = await denial(world, tmp_path, "signed/stranger")
    assert error["category"] == "signature_invalid"
    assert "not signed by a certificate that chains to the trust roots" in error["message"]
    # the signature itself is sound: trusting its certificate admits it
    result = await verify(config_file(world, tmp_path, "stranger"), world.tagged("signed/stranger"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result)[0]["digest"] == world.digests["signed/stranger"]


async def test_an_unsigned_image_has_no_trust_data(world: World, tmp_path: Path) -> None:
    error = await denial(world, tmp_path, "unsigned/app")
    assert error["category"] == "no_trust_data"
    unsigned = world.digests["unsigned/app"]
    assert f"no Notation signature is associated with {unsigned}" in error["message"]


async def test_a_signature_past_its_expiry_is_denied(world: World, tmp_path: Path) -> None:
    await asyncio.sleep(max(0.0, world.second_expired_at - time.time()))
    error = await denial(world, tmp_path, "expiring/second")
    assert error["category"] == "expired"
    assert "the Notation signature expired at " in error["message"]


async def test_the_clock_argument_expires_an_hour_long_signature(
    world: World, tmp_path: Path
) -> None:
    """The same COSE signature that verifies now (see the first test) is expired two hours
    later, while its certificate (generate-test: valid 24 h) still is valid: the expiry
    notation wrote decides."""
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    error = await denial(world, tmp_path, "expiring/hour", "--now", later)
    assert error["category"] == "expired"
    assert "the Notation signature expired at " in error["message"]


async def test_verify_explain_lists_the_real_signatures(world: World, tmp_path: Path) -> None:
    repos = ["signed/jws", "signed/cose", "signed/stranger"]
    images = [world.tagged(r) for r in repos]
    result = await verify(config_file(world, tmp_path), *images, options=("--explain",))
    assert result.returncode == 1, result.stdout + result.stderr  # the stranger's is denied
    jws, cose, stranger = (v["evidence"] for v in verdicts(result))
    for evidence, repo, form in ((jws, "signed/jws", "jws"), (cose, "signed/cose", "cose")):
        [finding] = evidence
        assert finding["where"] == f"referrer {referrers_of(world, repo)[0]}"
        assert finding["format"] == form
        assert finding["kind"] == "signature"
        assert finding["signer"].startswith(f"certificate for CN={SIGNER},")
        assert (finding["counted"], finding["trustRoots"]) == (True, ["default"])
    [refused] = stranger
    assert refused["where"] == f"referrer {referrers_of(world, 'signed/stranger')[0]}"
    assert refused["signer"].startswith(f"certificate for CN={STRANGER},")
    assert refused["counted"] is False
    assert "chains to the trust roots" in refused["why"]
