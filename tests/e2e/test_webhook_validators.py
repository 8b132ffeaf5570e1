"""End to end: the webhook (``connaisseur serve`` as a subprocess, HTTPS) and ``connaisseur verify``
with a cosign and a Notation validator against a REAL registry.

The registry is Debian's ``docker-registry`` (distribution 2.8; a container instead when
the binary is missing — printed) over HTTPS with a test CA and htpasswd
Basic auth. The test pushes the images itself: a cosign-signed one (ECDSA key generated per
session, ``sha256-<hex>.sig`` layout), a Notation-signed one (JWS envelope, per-session PKI,
referrers tag schema) and an unsigned one per validator. The generated configuration gives each
validator the registry CA as ``cert`` and credentials from a secrets directory
(``.dockerconfigjson`` for cosign, ``secret.yaml`` for Notation), as the chart mounts them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import jsonpatch
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.cosign import Signer as CosignSigner
from tests.support.cosign import image_manifest, payload, sign_layout
from tests.support.notation_oci import JWS, Subject, push_signatures, signature_artifact
from tests.support.notation_signing import DAY, REAL_NOW, issue, make_ca, sign_jws, target
from tests.support.notation_signing import Signer as NotationSigner
from tests.support.oci_push import Pusher
from tests.support.servers import (
    RegistryServer,
    secure_registry_server,
)
from tests.support.webhook_process import ROOT, Webhook, command_line, serve_webhook

pytestmark = pytest.mark.integration
USER, PASSWORD = "e2e", "e2e-s3cret"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on its own loop in a worker thread (for sync fixtures)."""

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout=60)


@dataclass(frozen=True)
class World:
    registry: RegistryServer
    digests: dict[str, str]  # image (as written in workloads) → its manifest digest
    config: Path
    secrets: Path
    workdir: Path

    def image(self, name: str) -> str:
        return f"{self.registry.host}/{name}"

    def pinned(self, name: str) -> str:
        return f"{self.image(name)}@{self.digests[self.image(name)]}"


# ------------------------------------------------------------------ the world: registry + images


async def populate(
    registry: RegistryServer, cosign: CosignSigner, notation: NotationSigner
) -> dict[str, str]:
    digests: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        push = Pusher(session, registry.url, ca_pem=registry.ca_pem, basic=(USER, PASSWORD))
        for repo, tag in (
            ("cosign/app", "signed"),
            ("cosign/app", "unsigned"),
            ("notation/app", "signed"),
            ("notation/app", "unsigned"),
        ):
            manifest, blobs = image_manifest(f"e2e {repo}:{tag}")
            digest = await push.image(repo, tag, manifest, blobs)
            digests[f"{registry.host}/{repo}:{tag}"] = digest
            if tag == "unsigned":
                continue
            if repo.startswith("cosign"):
                body = payload(digest, f"{registry.host}/{repo}")
                await push.signatures(repo, digest, sign_layout([(body, cosign.sign(body), {})]))
            else:
                subject = Subject(digest=digest, size=len(manifest), media_type=DOCKER_MANIFEST)
                envelope = sign_jws(notation, target(digest, len(manifest), DOCKER_MANIFEST))
                artifact = signature_artifact(subject, envelope, JWS, notation.chain)
                await push_signatures(push, repo, subject, [artifact])
    return digests


def write_secrets(directory: Path, host: str) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    docker = directory / "cosign-creds"
    docker.mkdir(parents=True)
    (docker / ".dockerconfigjson").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    plain = directory / "notation-creds"
    plain.mkdir()
    (plain / "secret.yaml").write_text(
        yaml.safe_dump({"username": USER, "password": PASSWORD, "registry": host})
    )


def write_config(
    path: Path, registry: RegistryServer, cosign: CosignSigner, notation_root: str
) -> None:
    host = registry.host
    config = {
        "validators": [
            {"name": "deny", "type": "static", "approve": False},
            {
                "name": "cosign-val",
                "type": "cosign",
                "cert": registry.ca_pem,
                "auth": {"secretName": "cosign-creds"},
                "trustRoots": [{"name": "default", "key": cosign.public_pem}],
            },
            {
                "name": "notation-val",
                "type": "notation",
                "cert": registry.ca_pem,
                "auth": {"secretName": "notation-creds"},
                "trustRoots": [{"name": "default", "cert": notation_root}],
            },
        ],
        "policy": [
            {"pattern": "*:*", "validator": "deny"},
            {
                "pattern": f"{host}/cosign/*",
                "validator": "cosign-val",
                "with": {"verifyInTransparencyLog": False},
            },
            {"pattern": f"{host}/notation/*", "validator": "notation-val"},
        ],
        "features": {"automaticChildApproval": False},
    }
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("e2e-validators")
    cosign = CosignSigner(ec.generate_private_key(ec.SECP256R1()))
    root = make_ca("e2e-notation-root")
    leaf = issue(root, "e2e-notation-signer")
    # one backend: the webhook is under test; tests/integration runs this registry on both
    with secure_registry_server(work / "secure-registry", USER, PASSWORD) as registry:
        digests = run_async(lambda: populate(registry, cosign, leaf))
        write_secrets(work / "secrets", registry.host)
        write_config(work / "config.yaml", registry, cosign, root.pem())
        yield World(registry, digests, work / "config.yaml", work / "secrets", work)


# ------------------------------------------------------------------ the webhook subprocess


@pytest.fixture(scope="module")
def webhook(world: World) -> Iterator[Webhook]:
    """``connaisseur serve`` with the generated configuration (overrides the static one)."""
    workdir = world.workdir / "webhook"
    with serve_webhook(workdir, world.config, "--secrets-dir", str(world.secrets)) as webhook:
        yield webhook


# ------------------------------------------------------------------ admission helpers


def deployment(*images: str) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers},
            },
        },
    }


def pod(containers: list[str], init_containers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "containers": [{"name": f"c{i}", "image": x} for i, x in enumerate(containers)],
            "initContainers": [
                {"name": f"i{i}", "image": x} for i, x in enumerate(init_containers)
            ],
        },
    }


def review(hook: Webhook, obj: dict[str, Any]) -> dict[str, Any]:
    """POST an AdmissionReview for ``obj`` to /mutate; return its ``response``."""
    uid = str(uuid.uuid4())
    group, _, version = obj["apiVersion"].rpartition("/")
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
            "namespace": "default",
            "operation": "CREATE",
            "object": obj,
        },
    }
    answer = hook.review(body, path="/mutate?timeout=10s")
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == uid
    response: dict[str, Any] = answer["response"]
    return response


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


def container_images(obj: dict[str, Any]) -> list[str]:
    return [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]


# ------------------------------------------------------------------ webhook


@pytest.mark.parametrize("name", ["cosign/app:signed", "notation/app:signed"])
def test_signed_tag_is_allowed_and_pinned_to_its_digest(
    world: World, webhook: Webhook, name: str
) -> None:
    obj = deployment(world.image(name))
    response = review(webhook, obj)
    assert response["allowed"] is True, response.get("status")
    patch = decoded_patch(response)
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": world.pinned(name),
        }
    ]
    assert container_images(jsonpatch.apply_patch(obj, patch)) == [world.pinned(name)]


def test_deployment_with_both_signed_images_pins_each(world: World, webhook: Webhook) -> None:
    names = ["cosign/app:signed", "notation/app:signed"]
    obj = deployment(*(world.image(n) for n in names))
    response = review(webhook, obj)
    assert response["allowed"] is True, response.get("status")
    patched = jsonpatch.apply_patch(obj, decoded_patch(response))
    assert container_images(patched) == [world.pinned(n) for n in names]


def test_pod_digest_reference_stays_and_a_repeated_tag_is_pinned_everywhere(
    world: World, webhook: Webhook
) -> None:
    by_digest = world.pinned("notation/app:signed").replace(":signed@", "@")
    tag = world.image("cosign/app:signed")
    obj = pod([tag, by_digest], [tag])
    response = review(webhook, obj)
    assert response["allowed"] is True, response.get("status")
    patch = decoded_patch(response)
    assert sorted(op["path"] for op in patch) == [
        "/spec/containers/0/image",
        "/spec/initContainers/0/image",
    ]
    patched = jsonpatch.apply_patch(obj, patch)
    assert [c["image"] for c in patched["spec"]["containers"]] == [
        world.pinned("cosign/app:signed"),
        by_digest,
    ]
    assert patched["spec"]["initContainers"][0]["image"] == world.pinned("cosign/app:signed")


@pytest.mark.parametrize(
    ("name", "rule", "validator"),
    [
        ("cosign/app:unsigned", "cosign/*", "cosign-val"),
        ("notation/app:unsigned", "notation/*", "notation-val"),
    ],
)
def test_unsigned_image_is_denied_naming_image_rule_validator_and_category(
    world: World, webhook: Webhook, name: str, rule: str, validator: str
) -> None:
    response = review(webhook, deployment(world.image(name)))
    assert response["allowed"] is False
    assert "patch" not in response
    status = response["status"]
    assert status["code"] == 403
    assert status["reason"] == "no_trust_data"
    message = status["message"]
    assert f"image '{world.image(name)}'" in message
    assert f"rule '{world.registry.host}/{rule}'" in message
    assert f"validator '{validator}'" in message
    assert "[no_trust_data]" in message


def test_mixed_deployment_is_denied_naming_only_the_failing_image(
    world: World, webhook: Webhook
) -> None:
    good, bad = world.image("cosign/app:signed"), world.image("notation/app:unsigned")
    response = review(webhook, deployment(good, bad))
    assert response["allowed"] is False
    assert "patch" not in response
    message = response["status"]["message"]
    assert message.startswith("1 of 2 images denied: ")
    assert f"image '{bad}'" in message
    assert "validator 'notation-val'" in message
    assert good not in message
    assert "cosign-val" not in message


# ------------------------------------------------------------------ connaisseur verify


def verify(world: World, *images: str, now: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    args = ["verify", "--config", str(world.config), "--secrets-dir", str(world.secrets)]
    if now is not None:
        args += ["--now", now]
    done = subprocess.run(
        command_line(*args, *images), cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    lines = done.stdout.decode().splitlines()
    return done.returncode, [json.loads(line) for line in lines]


def test_verify_cli_prints_json_lines_with_the_digests(world: World) -> None:
    names = ["cosign/app:signed", "notation/app:signed"]
    code, lines = verify(world, *(world.image(n) for n in names))
    assert code == 0
    assert lines == [
        {
            "image": world.image(name),
            "reference": world.image(name),
            "allowed": True,
            "digest": world.digests[world.image(name)],
            "rule": f"{world.registry.host}/{name.split('/')[0]}/*",
            "validator": validator,
            "error": None,
        }
        for name, validator in zip(names, ["cosign-val", "notation-val"], strict=True)
    ]


def test_verify_cli_exits_1_and_reports_each_unsigned_image(world: World) -> None:
    images = [
        world.image("cosign/app:signed"),
        world.image("cosign/app:unsigned"),
        world.image("notation/app:unsigned"),
    ]
    code, lines = verify(world, *images)
    assert code == 1
    assert [line["image"] for line in lines] == images
    assert lines[0]["allowed"] is True
    assert lines[0]["digest"] == world.digests[images[0]]
    for line, validator in zip(lines[1:], ["cosign-val", "notation-val"], strict=True):
        assert line["allowed"] is False
        assert line["digest"] is None
        assert line["validator"] == validator
        assert line["error"]["category"] == "no_trust_data"
        assert line["image"] in line["error"]["message"]


def test_verify_cli_now_after_the_notation_leaf_expired(world: World) -> None:
    """``--now`` moves the clock of the expiry checks: the Notation signing certificate (valid
    30 days from the session start) has expired, the cosign key has no validity period."""
    later = (REAL_NOW + 60 * DAY).isoformat().replace("+00:00", "Z")
    images = [world.image("cosign/app:signed"), world.image("notation/app:signed")]
    code, lines = verify(world, *images, now=later)
    assert code == 1
    assert lines[0]["allowed"] is True
    assert lines[1]["allowed"] is False
    assert lines[1]["error"]["category"] == "expired"
    assert images[1] in lines[1]["error"]["message"]
