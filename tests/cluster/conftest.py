"""A real Kubernetes API server calling the webhook, set up the way the chart sets it up.

One control plane per test run (etcd + kube-apiserver on 127.0.0.1, ``tests/support/kube.py``).
The chart is rendered with this session's values (a cosign validator whose key is the Secret
``k8s://cluster-keys/cosign-key``, a local HTTPS registry) and its objects are applied
server-side into the release namespace. ``connaisseur serve`` then runs with exactly what the
chart's pod gets (its arguments, environment and mounted files, ``tests/helm/pod.py``) and a
token of the chart's ServiceAccount at the path the kubelet mounts it, in a private mount
namespace. The chart's armed MutatingWebhookConfiguration is registered with its ``clientConfig``
switched to a loopback ``url`` (no Service routing exists without a cluster network), and with a
serving certificate for 127.0.0.1 instead of the chart's one for the Service's DNS name.

Each test gets a namespace of its own. Without the binaries the tests skip with one line naming
what to install.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.cluster.images import Images, publish_images
from tests.cluster.workloads import api_path, workload
from tests.helm import conftest as helm_fixtures
from tests.helm.conftest import Manifest, Renderer, armed_webhook
from tests.helm.pod import command_line, resolve_env
from tests.support.cosign import Signer
from tests.support.kube import Cluster, KubeTools, control_plane, controller_manager, kube_tools
from tests.support.servers import RegistryServer, free_port, registry_server, running
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

# the chart fixtures (the pinned helm binary, rendering) are shared with the chart tests
helm_bin = helm_fixtures.helm_bin
render = helm_fixtures.render


@pytest.fixture(scope="session")
def kube_binaries() -> KubeTools:
    found = kube_tools()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def cluster(
    kube_binaries: KubeTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """etcd and kube-apiserver for the whole run."""
    with control_plane(tmp_path_factory.mktemp("kube"), kube_binaries) as running:
        yield running


_counter = itertools.count()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for the test, with the ``default`` ServiceAccount Pods need (the
    controller that would create it does not run)."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t{next(_counter)}-{base}"
    create_namespace(cluster, name)
    return name


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


# ------------------------------------------------------------------ images and signing key


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Debian's docker-registry over HTTPS with a throw-away CA."""
    work = tmp_path_factory.mktemp("registry")
    with registry_server(work / "registry", tls=make_tls(work / "tls")) as server:
        yield server


@pytest.fixture(scope="session")
def images(registry: RegistryServer, signer: Signer) -> Images:
    return publish_images(registry, signer)


@pytest.fixture(scope="session")
def stalled_registry() -> Iterator[str]:
    """A host that accepts TCP connections and never answers (not even the TLS handshake):
    the kernel completes the handshakes into the backlog, nobody reads."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


# ------------------------------------------------------------------ the chart


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


@pytest.fixture(scope="session")
def values_file(
    images: Images, stalled_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("values") / "values.yaml"
    path.write_text(yaml.safe_dump(cluster_values(images, stalled_registry)))
    return path


@pytest.fixture(scope="session")
def manifests(render: Renderer, values_file: Path) -> list[Manifest]:
    return render([values_file], namespace=RELEASE_NAMESPACE)


def is_hook(manifest: Manifest) -> bool:
    return "helm.sh/hook" in (manifest["metadata"].get("annotations") or {})


@pytest.fixture(scope="session")
def installed(cluster: Cluster, manifests: list[Manifest], images: Images) -> list[Manifest]:
    """The chart's objects (hooks aside) applied server-side, with the namespaces they need
    and the key Secret its Role names; returns what was applied."""
    create_namespace(cluster, RELEASE_NAMESPACE)
    create_namespace(cluster, KEYS_NAMESPACE)
    cluster.apply([key_secret(images.public_pem)])
    objects = [m for m in manifests if not is_hook(m)]
    cluster.apply(objects)
    return objects


def key_secret(public_pem: str, name: str = KEY_SECRET) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": KEYS_NAMESPACE},
        "data": {"cosign.pub": base64.b64encode(public_pem.encode()).decode()},
    }


# ------------------------------------------------------------------ the webhook process


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


@pytest.fixture(scope="session")
def webhook_process(
    cluster: Cluster,
    manifests: list[Manifest],
    installed: list[Manifest],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Webhook]:
    with serve_chart_pod(cluster, manifests, tmp_path_factory.mktemp("webhook")) as webhook:
        yield webhook


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


@pytest.fixture(scope="session")
def registered(cluster: Cluster, manifests: list[Manifest], webhook_process: Webhook) -> Manifest:
    """The webhook registered with the API server; yields the configuration as applied."""
    config = loopback_webhook(manifests, webhook_process)
    cluster.apply([config])
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


# ------------------------------------------------------------------ controllers

CHILD = "automatic approval of child image reference"  # an image's "skipped" in the log
T = TypeVar("T")


@pytest.fixture(scope="module")
def controllers(cluster: Cluster, kube_binaries: KubeTools, registered: Manifest) -> Iterator[None]:
    """kube-controller-manager with the controllers a Deployment needs, for this module."""
    names = ["deployment-controller", "replicaset-controller", "garbage-collector-controller"]
    with controller_manager(cluster, kube_binaries, names):
        yield


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
