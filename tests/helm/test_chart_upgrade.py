"""Certificate and password re-use on `helm upgrade` (Helm `lookup`).

`helm template --dry-run=server` performs the chart's lookups against a cluster. The cluster here
is a minimal API server on 127.0.0.1 that answers discovery and serves the Secrets a previous
install left behind, so the re-use and renewal rules run for real.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.helm.conftest import CHART, NAMESPACE, RELEASE, Manifest, armed_webhook, find, run_helm
from tests.helm.test_chart_tls import self_signed

pytestmark = pytest.mark.helm

RESOURCES = {
    "v1": [
        ("secrets", "Secret", True),
        ("configmaps", "ConfigMap", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
    ],
    "apps/v1": [("deployments", "Deployment", True)],
    "rbac.authorization.k8s.io/v1": [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "admissionregistration.k8s.io/v1": [
        ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False)
    ],
}


def resource_list(group_version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": n, "singularName": k.lower(), "namespaced": ns, "kind": k, "verbs": ["get"]}
            for n, k, ns in RESOURCES[group_version]
        ],
    }


def group_list() -> dict[str, Any]:
    groups = []
    for gv in RESOURCES:
        if gv != "v1":
            version = {"groupVersion": gv, "version": gv.split("/")[1]}
            groups.append(
                {"name": gv.split("/")[0], "versions": [version], "preferredVersion": version}
            )
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


class FakeApiServer(BaseHTTPRequestHandler):
    """Read-only API server: discovery plus the Secrets in ``secrets`` (name → manifest)."""

    secrets: ClassVar[dict[str, Manifest]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        secret_prefix = f"/api/v1/namespaces/{NAMESPACE}/secrets/"
        if path == "/version":
            self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        elif path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path == "/apis":
            self._send(200, group_list())
        elif path == "/api/v1":
            self._send(200, resource_list("v1"))
        elif path.startswith("/apis/") and path[6:] in RESOURCES:
            self._send(200, resource_list(path[6:]))
        elif path.startswith(secret_prefix) and path[len(secret_prefix) :] in self.secrets:
            self._send(200, self.secrets[path[len(secret_prefix) :]])
        else:
            self._send(
                404, {"kind": "Status", "apiVersion": "v1", "reason": "NotFound", "code": 404}
            )

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Manifest]]]:
    """(kubeconfig, the cluster's Secrets by name) — fill the dict before rendering."""
    secrets: dict[str, Manifest] = {}
    handler = type("Handler", (FakeApiServer,), {"secrets": secrets})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "u", "user": {"token": "test"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    try:
        yield kubeconfig, secrets
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def upgrade_render(helm_bin: Path, kubeconfig: Path) -> list[Manifest]:
    text = run_helm(
        helm_bin,
        "template",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--dry-run=server",
        "--disable-openapi-validation",
        "--kubeconfig",
        str(kubeconfig),
        chart=CHART,
    )
    return [d for d in yaml.safe_load_all(text) if d]


def previous_install(helm_bin: Path, kubeconfig: Path) -> list[Manifest]:
    """What a first install stores (the cluster has nothing yet)."""
    return upgrade_render(helm_bin, kubeconfig)


def in_cluster(manifest: Manifest) -> Manifest:
    """The object as the API server returns it after a Helm install (ownership metadata)."""
    metadata = dict(manifest["metadata"])
    metadata["labels"] = {**metadata.get("labels", {}), "app.kubernetes.io/managed-by": "Helm"}
    metadata["annotations"] = {
        **metadata.get("annotations", {}),
        "meta.helm.sh/release-name": RELEASE,
        "meta.helm.sh/release-namespace": NAMESPACE,
    }
    return {**manifest, "metadata": metadata}


def pem(secret: Manifest, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


KEPT_SECRETS = (
    "connaisseur-tls",
    "connaisseur-redis-tls",
    "connaisseur-redis-secret",
    "connaisseur-cache-key",  # a new key would orphan every cache entry (D5)
)


def test_upgrade_reuses_the_certificates_password_and_cache_key(
    helm_bin: Path, cluster: tuple[Path, dict[str, Manifest]]
) -> None:
    kubeconfig, secrets = cluster
    first = previous_install(helm_bin, kubeconfig)
    for name in KEPT_SECRETS:
        secrets[name] = in_cluster(find(first, "Secret", name))

    second = upgrade_render(helm_bin, kubeconfig)
    for name in KEPT_SECRETS:
        assert find(second, "Secret", name)["data"] == secrets[name]["data"], name
    (hook,) = armed_webhook(second)["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).decode() == pem(
        secrets["connaisseur-tls"], "ca.crt"
    )
    # nothing changed, so the pods are not rolled
    checksum = find(first, "Deployment", "connaisseur")["spec"]["template"]["metadata"][
        "annotations"
    ]["checksum/config"]
    assert (
        find(second, "Deployment", "connaisseur")["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]
        == checksum
    )


def test_certificate_close_to_expiry_is_renewed(
    helm_bin: Path, cluster: tuple[Path, dict[str, Manifest]]
) -> None:
    kubeconfig, secrets = cluster
    old = in_cluster(find(previous_install(helm_bin, kubeconfig), "Secret", "connaisseur-tls"))
    soon = int(time.time()) + 30 * 86400  # inside the default 60-day renewal window
    old["metadata"]["annotations"]["connaisseur-py/tls-not-after"] = str(soon)
    secrets["connaisseur-tls"] = old

    renewed = find(upgrade_render(helm_bin, kubeconfig), "Secret", "connaisseur-tls")
    assert pem(renewed, "tls.crt") != pem(old, "tls.crt")
    assert pem(renewed, "ca.crt") != pem(old, "ca.crt")
    assert int(renewed["metadata"]["annotations"]["connaisseur-py/tls-not-after"]) > soon


def test_connaisseur_go_certificate_is_replaced_by_a_bounded_one(
    helm_bin: Path, cluster: tuple[Path, dict[str, Manifest]]
) -> None:
    """Migration: the Go chart's Secret has no expiry annotation (its cert lasts 100 years)."""
    kubeconfig, secrets = cluster
    cert, key = self_signed("connaisseur-svc.connaisseur.svc")
    secrets["connaisseur-tls"] = in_cluster(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "connaisseur-tls", "namespace": NAMESPACE},
            "type": "Opaque",
            "data": {
                "tls.crt": base64.b64encode(cert.encode()).decode(),
                "tls.key": base64.b64encode(key.encode()).decode(),
            },
        }
    )
    replaced = find(upgrade_render(helm_bin, kubeconfig), "Secret", "connaisseur-tls")
    assert pem(replaced, "tls.crt") != cert
    assert "connaisseur-py/tls-not-after" in replaced["metadata"]["annotations"]
