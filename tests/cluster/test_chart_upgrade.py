"""``helm upgrade`` against the real API server: what a previous install left behind is re-used
through Helm's ``lookup`` — the webhook's certificate (and so the caBundle the API server
trusts), Redis' certificate and password, and the cache HMAC key (a new key would orphan every
cache entry, docs/decisions/0005-honest-cache.md) — and renewed only when it must be.

Each test installs the chart into a namespace of its own with ``helm install``, then upgrades it
to the same templates under the next chart version, so Helm really rewrites every object. Hooks
are not run (``--no-hooks``): the armed MutatingWebhookConfiguration is cluster-wide and would
call a webhook that is not running; the rendered hook is read back from the release instead.
Child approval is off so that the release has no cluster-wide RBAC objects either (those of the
other cluster tests' chart would clash by name). The namespaces are labelled to be ignored by
the webhook those other tests register.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import SELECTOR_KEY, create_namespace
from tests.support.helm import CHART, RELEASE, Manifest, armed_webhook
from tests.support.kube import Cluster
from tests.support.tls import self_signed

pytestmark = pytest.mark.cluster

NOT_AFTER = "connaisseur-py/tls-not-after"
KEPT_SECRETS = (
    "connaisseur-tls",
    "connaisseur-redis-tls",
    "connaisseur-redis-secret",
    "connaisseur-cache-key",
)
SETTINGS = ("--no-hooks", "--set", "application.features.automaticChildApproval=false")

Helm = Callable[..., str]


@pytest.fixture(scope="module")
def next_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's templates under the next patch version."""
    chart = tmp_path_factory.mktemp("next-chart") / "connaisseur"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    major, minor, patch = meta["version"].split(".")
    meta["version"] = f"{major}.{minor}.{int(patch) + 1}"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    return chart


@pytest.fixture
def helm(helm_bin: Path, cluster: Cluster) -> Helm:
    """``helm(*args)`` against the test cluster; stdout, or the failure with helm's stderr."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(helm_bin), "--kubeconfig", str(cluster.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def install(cluster: Cluster, helm: Helm, namespace: str, *extra: str) -> str:
    """The chart installed with ``helm install`` into a fresh namespace (returned)."""
    ignored = f"{namespace}-helm"
    create_namespace(cluster, ignored, {SELECTOR_KEY: "ignore"})
    helm("install", RELEASE, str(CHART), "--namespace", ignored, *SETTINGS, *extra)
    return ignored


@pytest.fixture
def release(cluster: Cluster, helm: Helm, namespace: str) -> str:
    return install(cluster, helm, namespace)


def upgrade(helm: Helm, namespace: str, chart: Path, *extra: str) -> None:
    helm("upgrade", RELEASE, str(chart), "--namespace", namespace, *SETTINGS, *extra)


def secret(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return cluster.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")


def pem(stored: dict[str, Any], key: str) -> str:
    return base64.b64decode(stored["data"][key]).decode()


def release_webhook(helm: Helm, namespace: str) -> Manifest:
    """The armed webhook configuration as the release rendered it."""
    hooks = [d for d in yaml.safe_load_all(helm("get", "hooks", RELEASE, "-n", namespace)) if d]
    return armed_webhook(hooks)


def ca_bundle(helm: Helm, namespace: str) -> str:
    (hook,) = release_webhook(helm, namespace)["webhooks"]
    return base64.b64decode(hook["clientConfig"]["caBundle"]).decode()


def deployment(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/connaisseur")


def test_upgrade_keeps_certificates_password_and_cache_key(
    cluster: Cluster, helm: Helm, release: str, next_chart: Path
) -> None:
    before = {name: secret(cluster, release, name) for name in KEPT_SECRETS}
    generation = deployment(cluster, release)["metadata"]["generation"]

    upgrade(helm, release, next_chart)
    for name in KEPT_SECRETS:
        after = secret(cluster, release, name)
        assert after["metadata"]["labels"]["helm.sh/chart"] == "connaisseur-0.1.1", name
        assert after["data"] == before[name]["data"], name
    assert ca_bundle(helm, release) == pem(before["connaisseur-tls"], "ca.crt")
    # nothing the pods read changed, so they are not rolled
    rolled = deployment(cluster, release)
    assert rolled["metadata"]["labels"]["helm.sh/chart"] == "connaisseur-0.1.1"
    assert rolled["metadata"]["generation"] == generation


def test_certificate_inside_the_renewal_window_is_renewed_and_the_cache_key_kept(
    cluster: Cluster, helm: Helm, release: str, next_chart: Path
) -> None:
    old = secret(cluster, release, "connaisseur-tls")
    kept = {name: secret(cluster, release, name) for name in KEPT_SECRETS[2:]}
    generation = deployment(cluster, release)["metadata"]["generation"]

    # the certificate lasts 730 days: a 731-day window puts its expiry inside it, as time would
    upgrade(helm, release, next_chart, "--set", "kubernetes.certificates.renewBeforeDays=731")
    renewed = secret(cluster, release, "connaisseur-tls")
    assert pem(renewed, "tls.crt") != pem(old, "tls.crt")
    assert pem(renewed, "ca.crt") != pem(old, "ca.crt")
    assert int(renewed["metadata"]["annotations"][NOT_AFTER]) >= int(
        old["metadata"]["annotations"][NOT_AFTER]
    )
    assert ca_bundle(helm, release) == pem(renewed, "ca.crt")
    for name, before in kept.items():  # the Redis password and the cache key stay
        assert secret(cluster, release, name)["data"] == before["data"], name
    # a new certificate must reach the pods: they are rolled
    assert deployment(cluster, release)["metadata"]["generation"] == generation + 1


def go_chart_secret(namespace: str, name: str) -> Manifest:
    """What the Connaisseur (Go) chart leaves: an ``Opaque`` Secret with a 100-year certificate,
    no expiry annotation, owned by the Helm release."""
    cert, key = self_signed("connaisseur-svc.connaisseur.svc")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": RELEASE,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "type": "Opaque",
        "data": {
            "tls.crt": base64.b64encode(cert.encode()).decode(),
            "tls.key": base64.b64encode(key.encode()).decode(),
        },
    }


def test_connaisseur_go_certificates_are_replaced_by_bounded_ones(
    cluster: Cluster, helm: Helm, namespace: str, next_chart: Path
) -> None:
    """Migration: the Go chart's certificate Secrets have type ``Opaque`` (a Secret's type
    cannot change) and no expiry annotation. Its release was installed by Helm 3, which
    applies client-side; Helm 4 upgrades such a release the same way."""
    release = install(cluster, helm, namespace, "--server-side=false")
    for name in ("connaisseur-tls", "connaisseur-redis-tls"):
        cluster.kubectl("delete", "secret", name, "-n", release)
        cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(go_chart_secret(release, name)))
    go_cert = pem(secret(cluster, release, "connaisseur-tls"), "tls.crt")

    upgrade(helm, release, next_chart)
    replaced = secret(cluster, release, "connaisseur-tls")
    assert replaced["type"] == "Opaque"  # kept: it cannot change
    assert pem(replaced, "tls.crt") != go_cert
    assert NOT_AFTER in replaced["metadata"]["annotations"]
    assert ca_bundle(helm, release) == pem(replaced, "ca.crt")
    redis = secret(cluster, release, "connaisseur-redis-tls")
    assert NOT_AFTER in redis["metadata"]["annotations"]
