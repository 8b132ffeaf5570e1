"""A real Kubernetes API server calling the webhook, set up the way the chart sets it up.

One control plane per test run (etcd + kube-apiserver on 127.0.0.1, ``tests/support/kube.py``).
The chart is rendered with this session's values (a cosign validator whose key is the Secret
``k8s://cluster-keys/cosign-key``, a local HTTPS registry) and its objects are applied
server-side into the release namespace. ``connaisseur serve`` then runs with exactly what the
chart's pod gets (its arguments, environment and mounted files, ``tests/support/helm_pod.py``) and a
token of the chart's ServiceAccount at the path the kubelet mounts it, in a private mount
namespace. The chart's armed MutatingWebhookConfiguration is registered with its ``clientConfig``
switched to a loopback ``url`` (no Service routing exists without a cluster network), and with a
serving certificate for 127.0.0.1 instead of the chart's one for the Service's DNS name.

Each test gets a namespace of its own. Without the binaries the tests skip with one line naming
what to install."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from tests.cluster.images import Images, publish_images
from tests.support.cluster import (
    KEYS_NAMESPACE,
    RELEASE_NAMESPACE,
    Webhook,
    cluster_values,
    create_namespace,
    is_hook,
    key_secret,
    loopback_webhook,
    serve_chart_pod,
)
from tests.support.cosign import Signer
from tests.support.helm import Manifest, Renderer
from tests.support.kube import Cluster, KubeTools, control_plane, controller_manager, kube_tools
from tests.support.servers import RegistryServer, registry_server
from tests.support.tls import make_tls

_counter = itertools.count()


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


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for the test, with the ``default`` ServiceAccount Pods need (the
    controller that would create it does not run)."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t{next(_counter)}-{base}"
    create_namespace(cluster, name)
    return name


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Debian's docker-registry over HTTPS with a throw-away CA."""
    work = tmp_path_factory.mktemp("registry")
    # one backend: the API server is under test; tests/integration runs this registry on both
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


@pytest.fixture(scope="session")
def webhook_process(
    cluster: Cluster,
    manifests: list[Manifest],
    installed: list[Manifest],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Webhook]:
    with serve_chart_pod(cluster, manifests, tmp_path_factory.mktemp("webhook")) as webhook:
        yield webhook


@pytest.fixture(scope="session")
def registered(cluster: Cluster, manifests: list[Manifest], webhook_process: Webhook) -> Manifest:
    """The webhook registered with the API server; yields the configuration as applied."""
    config = loopback_webhook(manifests, webhook_process)
    cluster.apply([config])
    return config


@pytest.fixture(scope="module")
def controllers(cluster: Cluster, kube_binaries: KubeTools, registered: Manifest) -> Iterator[None]:
    """kube-controller-manager with the controllers a Deployment needs, for this module."""
    names = ["deployment-controller", "replicaset-controller", "garbage-collector-controller"]
    with controller_manager(cluster, kube_binaries, names):
        yield
