"""The product image, run exactly as the chart's Deployment runs it, answers real AdmissionReviews.

tests/support/chart_pod.py turns the rendered Deployment into ``docker run``: read-only root file
system, the chart's non-root UID and GID, every capability dropped, no privilege escalation, the
chart's memory and CPU limits, /tmp as the emptyDir, and the rendered ConfigMap, TLS Secret and
the validator's registry-credentials Secret mounted read-only where the Deployment mounts them.
The image is then sent AdmissionReviews over HTTPS, checked against the CA the chart's webhook
configuration trusts: allowed, denied, and pinned to a verified digest by a JSON Patch (cosign
against a real registry with TLS and htpasswd); /metrics counts them. Needs a Docker engine."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import chart_pod, images
from tests.support.admission import admission_review, decoded_patch, pod
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.helm import Manifest, Renderer
from tests.support.oci_push import Pusher
from tests.support.processes import free_port
from tests.support.servers import RegistryServer, secure_registry_server

pytestmark = [pytest.mark.helm, pytest.mark.integration]
USER, PASSWORD = "chart-pod", "chart-pod-s3cret"
ALLOWED = "registry.k8s.io/pause:3.9"
DENIED = "docker.io/library/nginx:1.27"


@dataclass(frozen=True)
class Deployed:
    pod: chart_pod.RunningPod
    registry: RegistryServer
    signed: str  # the signed image as a workload names it
    digest: str  # its manifest digest
    unsigned: str
    ready_seconds: float


async def push_images(registry: RegistryServer, signer: Signer) -> dict[str, str]:
    digests = {}
    async with aiohttp.ClientSession() as session:
        push = Pusher(session, registry.url, ca_pem=registry.ca_pem, basic=(USER, PASSWORD))
        for tag in ("signed", "unsigned"):
            manifest, blobs = image_manifest(f"chart pod {tag}")
            digest = await push.image("team/app", tag, manifest, blobs)
            digests[tag] = digest
            if tag == "signed":
                body = payload(digest, f"{registry.host}/team/app")
                await push.signatures(
                    "team/app", digest, sign_layout([(body, signer.sign(body), {})])
                )
    return digests


def chart_values(registry: RegistryServer, signer: Signer) -> dict[str, Any]:
    """A user's values: static allow and deny, and cosign with a registry-credentials Secret."""
    return {
        "application": {
            "validators": [
                {"name": "allow", "type": "static", "approve": True},
                {"name": "deny", "type": "static", "approve": False},
                {
                    "name": "team",
                    "type": "cosign",
                    "cert": registry.ca_pem,
                    "auth": {"secretName": "team-registry"},
                    "trustRoots": [{"name": "default", "key": signer.public_pem}],
                },
            ],
            "policy": [
                {"pattern": "*:*", "validator": "deny"},
                {"pattern": "registry.k8s.io/*:*", "validator": "allow"},
                {
                    "pattern": f"{registry.host}/team/*",
                    "validator": "team",
                    "with": {"verifyInTransparencyLog": False},
                },
            ],
            "features": {"automaticChildApproval": False, "cache": {"expirySeconds": 0}},
        }
    }


def user_secret(directory: Path, host: str) -> Path:
    """What `kubectl create secret docker-registry team-registry` holds."""
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    directory.mkdir(parents=True)
    config = {"auths": {host: {"auth": auth}}}
    (directory / ".dockerconfigjson").write_text(json.dumps(config))
    return directory


def client_context(run: chart_pod.PodRun) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=run.ca_pem)


@pytest.fixture(scope="module")
def deployed(
    product_image: str, render: Renderer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("chart-pod")
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    # one backend: the product image is under test; tests/integration runs this registry on both
    with secure_registry_server(work / "registry", USER, PASSWORD) as registry:
        digests = asyncio.run(push_images(registry, signer))
        values = work / "values.yaml"
        values.write_text(yaml.safe_dump(chart_values(registry, signer)))
        manifests: list[Manifest] = render([values])
        secrets = {"team-registry": user_secret(work / "team-registry", registry.host)}
        run = chart_pod.pod_run(manifests, work / "volumes", free_port(), secrets)
        with chart_pod.running_pod(product_image, run) as running:
            ready = chart_pod.PodClient(run).wait_ready(running)
            print(f"\nstart to ready: {ready:.2f} s")
            yield Deployed(
                pod=running,
                registry=registry,
                signed=f"{registry.host}/team/app:signed",
                digest=digests["signed"],
                unsigned=f"{registry.host}/team/app:unsigned",
                ready_seconds=ready,
            )


@pytest.fixture
async def webhook(deployed: Deployed) -> AsyncIterator[aiohttp.ClientSession]:
    run = deployed.pod.run
    connector = aiohttp.TCPConnector(ssl=client_context(run))
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{run.port}", connector=connector
    ) as session:
        yield session


async def review(deployed: Deployed, session: aiohttp.ClientSession, *images_: str) -> Any:
    body = admission_review(pod(*images_))
    async with session.post(
        "/mutate?timeout=10s", json=body, server_hostname=deployed.pod.run.server_name
    ) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["response"]["uid"] == body["request"]["uid"]
    return answer["response"]


def test_runs_with_the_charts_hardening(deployed: Deployed) -> None:
    host = deployed.pod.inspect()["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False
    assert host["Memory"] == 512 * 2**20
    assert set(host["Tmpfs"]) == {"/tmp"}
    mounts = deployed.pod.inspect()["Mounts"]
    assert {m["Destination"] for m in mounts} >= {
        "/app/config", "/app/certs", "/app/secrets/team-registry"
    }  # fmt: skip
    assert all(m["RW"] is False for m in mounts), mounts


def test_the_process_is_the_charts_user_without_capabilities(deployed: Deployed) -> None:
    pid = deployed.pod.inspect()["State"]["Pid"]
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["20001"] * 4
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapPrm"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"


async def test_allowed_image_is_admitted_unchanged(
    deployed: Deployed, webhook: aiohttp.ClientSession
) -> None:
    response = await review(deployed, webhook, ALLOWED)
    assert response["allowed"] is True
    assert "patch" not in response


async def test_denied_images_are_named_with_their_reasons(
    deployed: Deployed, webhook: aiohttp.ClientSession
) -> None:
    response = await review(deployed, webhook, DENIED, deployed.unsigned)
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "nginx" in message
    assert "team/app:unsigned" in message


async def test_signed_image_is_pinned_to_its_verified_digest(
    deployed: Deployed, webhook: aiohttp.ClientSession
) -> None:
    response = await review(deployed, webhook, deployed.signed)
    assert response["allowed"] is True
    assert decoded_patch(response) == [
        {
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": f"{deployed.registry.host}/team/app:signed@{deployed.digest}",
        }
    ]


async def test_metrics_count_the_reviews(
    deployed: Deployed, webhook: aiohttp.ClientSession
) -> None:
    await review(deployed, webhook, ALLOWED)
    async with webhook.get("/metrics", server_hostname=deployed.pod.run.server_name) as resp:
        assert resp.status == 200
        text = await resp.text()
    (requests,) = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("connaisseur_requests_total")
    ]
    assert requests >= 1


def test_nothing_was_written_outside_tmp(deployed: Deployed) -> None:
    """Read-only root: the container's file system differs from the image only by the mount
    points Docker creates for the volumes."""
    mounts = [Path(m["Destination"]) for m in deployed.pod.inspect()["Mounts"]]
    mount_points = {str(p) for m in mounts for p in (m, *m.parents)}
    changes = images.docker("diff", deployed.pod.container_id).splitlines()
    assert [c for c in changes if c.split(maxsplit=1)[1] not in mount_points] == []
