"""The chart's objects in a real API server, and ``connaisseur serve`` run the way the chart's
pod runs it: constants, the chart pod's command line and files, the webhook process and its
admission log, waiting for controllers (fixtures: tests/cluster/conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.cluster.images import Images
from tests.cluster.workloads import api_path, workload
from tests.support.helm import Manifest, armed_webhook
from tests.support.helm_pod import command_line, resolve_env
from tests.support.kube import Cluster
from tests.support.servers import free_port, running
from tests.support.tls import TlsFiles, make_tls

ROOT = Path(__file__).resolve().parents[2]
RELEASE_NAMESPACE = "connaisseur"
KEYS_NAMESPACE = "cluster-keys"
KEY_SECRET = "cosign-key"
SERVICE_ACCOUNT = "connaisseur-serviceaccount"
WEBHOOK = "connaisseur-webhook"  # the MutatingWebhookConfiguration's name
WEBHOOK_NAME = "connaisseur-svc.connaisseur.svc"  # the webhook's name inside it
SELECTOR_KEY = "securesystemsengineering.connaisseur/webhook"
SA_MOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def create_namespace(cluster: Cluster, name: str, labels: dict[str, str] | None = None) -> None:
    document: Manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if labels:
        document["metadata"]["labels"] = labels
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": name},
    }
    cluster.apply([document])
    cluster.apply([account])


def cluster_values(images: Images, stalled: str) -> dict[str, Any]:
    """Chart values: the chart's defaults plus a cosign validator for the session's registry
    (its key read from a Secret through the API), a rule for the stalled host, no cache."""
    return {
        "kubernetes": {"deployment": {"replicasCount": 1}},
        "application": {
            "validators": [
                {"name": "allow", "type": "static", "approve": True},
                {"name": "deny", "type": "static", "approve": False},
                {
                    "name": "team",
                    "type": "cosign",
                    "cert": images.registry.ca_pem,
                    "trustRoots": [
                        {"name": "default", "key": f"k8s://{KEYS_NAMESPACE}/{KEY_SECRET}"}
                    ],
                },
                {
                    "name": "stalled",
                    "type": "cosign",
                    "trustRoots": [{"name": "default", "key": images.public_pem}],
                },
            ],
            "policy": [
                {"pattern": "*:*", "validator": "deny"},
                {
                    "pattern": f"{images.registry.host}/team/*:*",
                    "validator": "team",
                    "with": {"verifyInTransparencyLog": False},
                },
                {
                    "pattern": f"{stalled}/*:*",
                    "validator": "stalled",
                    "with": {"verifyInTransparencyLog": False},
                },
            ],
            "features": {"cache": {"expirySeconds": 0}},
            "logFormat": "json",  # one line per entry, read by the tests
        },
    }


def is_hook(manifest: Manifest) -> bool:
    return "helm.sh/hook" in (manifest["metadata"].get("annotations") or {})


def key_secret(public_pem: str, name: str = KEY_SECRET) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": KEYS_NAMESPACE},
        "data": {"cosign.pub": base64.b64encode(public_pem.encode()).decode()},
    }


@dataclass(frozen=True)
class Webhook:
    port: int
    tls: TlsFiles
    log: Path
    token: str  # the chart ServiceAccount's token the process uses

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mutate"


def private_mount_namespace() -> list[str]:
    """``unshare`` for a process of its own mount namespace (as root, or mapped to root in a
    user namespace), so it can be given files at the paths a pod has without touching ours."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare not found (util-linux): needed to mount the service account token")
    command = [unshare, "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        command[1:1] = ["--user", "--map-root-user"]
    probe = subprocess.run([*command, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace ({probe.stderr.decode().strip()})")
    return command


def in_pod_filesystem(account_dir: Path, command: list[str]) -> list[str]:
    """``command`` run with ``account_dir``'s files at the service account mount path: a tmpfs
    over /run (where /var/run points) holds them, in the process' own mount namespace."""
    run = SA_MOUNT.resolve().parents[2]  # /run/secrets/kubernetes.io/serviceaccount -> /run
    script = (
        'mount -t tmpfs -o size=1m,mode=755 tmpfs "$1" && mkdir -p "$2" && cp "$3"/* "$2"/ '
        '&& shift 3 && exec "$@"'
    )
    target = str(SA_MOUNT.resolve())
    return [
        *private_mount_namespace(),
        "sh",
        "-c",
        script,
        "sh",
        str(run),
        target,
        str(account_dir),
        *command,
    ]


def service_account_files(directory: Path, cluster: Cluster, token: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(token)
    shutil.copy(cluster.ca_file, directory / "ca.crt")
    (directory / "namespace").write_text(RELEASE_NAMESPACE)
    return directory


def pod_command(manifests: list[Manifest], root: Path, tls: TlsFiles, port: int) -> list[str]:
    """The chart container's command line (mounted files under ``root``), serving with a
    certificate for 127.0.0.1 on ``port``."""
    args = command_line(manifests, "connaisseur", root)
    args[args.index("--tls-cert") + 1] = str(tls.cert_file)
    args[args.index("--tls-key") + 1] = str(tls.key_file)
    args += ["--listen", f"127.0.0.1:{port}"]
    return [sys.executable, "-m", "connaisseur.entrypoints.cli", *args]


@contextlib.contextmanager
def serve_chart_pod(
    cluster: Cluster, manifests: list[Manifest], workdir: Path
) -> Iterator[Webhook]:
    """``connaisseur serve`` as the chart's pod runs it, against the real API server."""
    token = cluster.token(RELEASE_NAMESPACE, SERVICE_ACCOUNT)
    account = service_account_files(workdir / "serviceaccount", cluster, token)
    tls = make_tls(workdir / "tls")
    port = free_port()
    env = resolve_env(manifests, "connaisseur")
    env |= {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(cluster.port)}
    env["PYTHONPATH"] = str(ROOT)
    command = in_pod_filesystem(account, pod_command(manifests, workdir / "root", tls, port))
    log = workdir / "webhook.log"
    with running(command, port, log, env=env):
        yield Webhook(port, tls, log, token)


def admissions(webhook: Webhook, namespace: str) -> list[dict[str, Any]]:
    """The webhook's admission log entries for ``namespace``, oldest first."""
    lines = webhook.log.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("uid") and e.get("namespace") == namespace]


def loopback_webhook(manifests: list[Manifest], webhook: Webhook) -> Manifest:
    """The chart's armed MutatingWebhookConfiguration calling ``webhook`` by URL."""
    config = copy.deepcopy(armed_webhook(manifests))
    del config["metadata"]["annotations"]  # Helm's hook annotations; kubectl applies it here
    for hook in config["webhooks"]:
        hook["clientConfig"] = {
            "url": webhook.url,
            "caBundle": base64.b64encode(webhook.tls.ca_pem.encode()).decode(),
        }
    return config


@contextlib.contextmanager
def webhook_changed(cluster: Cluster, config: Manifest, change: dict[str, Any]) -> Iterator[None]:
    """The registered webhook with ``change`` merged into its one hook, until the block ends."""
    changed = copy.deepcopy(config)
    changed["webhooks"][0].update(change)
    cluster.apply([changed], "--force-conflicts")
    try:
        yield
    finally:
        cluster.apply([config], "--force-conflicts")


CHILD = "automatic approval of child image reference"  # an image's "skipped" in the log
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """``probe()``'s first truthy answer, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def listed(cluster: Cluster, namespace: str, resource: str) -> list[dict[str, Any]]:
    """The ReplicaSets or Pods of ``namespace`` (with the type a list leaves out)."""
    version, kind = ("apps/v1", "ReplicaSet") if resource == "replicasets" else ("v1", "Pod")
    base = "/apis" if "/" in version else "/api"
    found = cluster.get(f"{base}/{version}/namespaces/{namespace}/{resource}")
    return [{"apiVersion": version, "kind": kind, **item} for item in found["items"]]


def running_deployment(
    cluster: Cluster, namespace: str, name: str, image: str, replicas: int = 2
) -> tuple[Manifest, list[dict[str, Any]]]:
    """Create a Deployment and wait for its Pods; (the stored Deployment, its Pods)."""
    obj = workload("Deployment", name, namespace, image)
    obj["spec"]["replicas"] = replicas
    cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(obj))

    def pods() -> list[dict[str, Any]] | None:
        mine = [
            p for p in listed(cluster, namespace, "pods") if p["metadata"]["labels"]["app"] == name
        ]
        return mine if len(mine) == replicas else None

    found = eventually(pods, f"{replicas} pods of deployment {name}")
    return cluster.get(api_path(obj)), found


def owner(obj: dict[str, Any]) -> dict[str, Any]:
    (reference,) = obj["metadata"]["ownerReferences"]
    return dict(reference)
