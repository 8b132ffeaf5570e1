"""The chart's objects in a real API server: accepted server-side, on install and on upgrade,
and the ServiceAccount's RBAC is exactly what the application uses.
"""

from __future__ import annotations

import copy

import pytest

from tests.support.cluster import (
    KEY_SECRET,
    KEYS_NAMESPACE,
    RELEASE_NAMESPACE,
    SERVICE_ACCOUNT,
    create_namespace,
    is_hook,
)
from tests.support.helm import ALL_FEATURES, Manifest, Renderer
from tests.support.kube import Cluster, KubectlError

pytestmark = pytest.mark.cluster

#: What child approval reads: the owner kinds, ``get`` only (as kubectl lists them).
OWNER_KINDS = {
    "pods",
    "replicationcontrollers",
    "deployments.apps",
    "replicasets.apps",
    "daemonsets.apps",
    "statefulsets.apps",
    "jobs.batch",
    "cronjobs.batch",
}


def object_path(manifest: Manifest) -> str:
    """The API path of a chart object (core or grouped, namespaced or cluster-wide)."""
    group_version = manifest["apiVersion"]
    base = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
    plural = {
        "PodDisruptionBudget": "poddisruptionbudgets",
        "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    }.get(manifest["kind"], manifest["kind"].lower() + "s")
    meta = manifest["metadata"]
    namespace = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
    return f"{base}{namespace}/{plural}/{meta['name']}"


def applied_names(output: str) -> set[str]:
    """``kind.group/name`` of each line ``kubectl apply`` printed."""
    return {line.split()[0] for line in output.splitlines() if line.strip()}


def kubectl_name(manifest: Manifest) -> str:
    group = manifest["apiVersion"].rpartition("/")[0]
    kind = manifest["kind"].lower() + (f".{group}" if group else "")
    return f"{kind}/{manifest['metadata']['name']}"


def test_every_chart_object_is_stored_by_a_server_side_apply(
    cluster: Cluster, installed: list[Manifest], manifests: list[Manifest]
) -> None:
    kinds = {m["kind"] for m in installed}
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "Role", "Secret"} <= kinds
    for manifest in installed:
        stored = cluster.get(object_path(manifest))
        assert stored["metadata"]["name"] == manifest["metadata"]["name"]
    # the two MutatingWebhookConfigurations are Helm hooks: the API server validates them too
    hooks = [m for m in manifests if is_hook(m)]
    assert [m["kind"] for m in hooks] == ["MutatingWebhookConfiguration"] * 2
    for hook in hooks:
        out = cluster.apply([hook], "--dry-run=server", "--force-conflicts")
        assert "serverside-applied (server dry run)" in out


def test_upgrade_values_pass_a_server_side_dry_run_over_the_installed_objects(
    cluster: Cluster, installed: list[Manifest], render: Renderer
) -> None:
    upgrade = render([ALL_FEATURES], namespace=RELEASE_NAMESPACE)
    create_namespace(cluster, "signing")  # where a k8s:// key of these values lives
    objects = [without_immutable_change(m, installed) for m in upgrade]
    out = cluster.apply(objects, "--dry-run=server", "--force-conflicts")
    assert applied_names(out) == {kubectl_name(m) for m in objects}
    assert all(line.endswith("(server dry run)") for line in out.splitlines())


def without_immutable_change(manifest: Manifest, installed: list[Manifest]) -> Manifest:
    """``manifest``, but a Deployment keeps the installed selector: ``podLabels`` are part of
    it (as in Connaisseur's chart), and a Deployment's selector cannot change on upgrade."""
    if manifest["kind"] != "Deployment":
        return manifest
    before = [
        m
        for m in installed
        if m["kind"] == "Deployment" and m["metadata"]["name"] == manifest["metadata"]["name"]
    ]
    if not before:
        return manifest
    changed = copy.deepcopy(manifest)
    selector = before[0]["spec"]["selector"]
    changed["spec"]["selector"] = selector
    changed["spec"]["template"]["metadata"]["labels"] |= selector["matchLabels"]
    return changed


def granted(cluster: Cluster, namespace: str, token: str) -> set[tuple[str, str, str]]:
    """(resource, resource names, verbs) rows of ``kubectl auth can-i --list``."""
    out = cluster.kubectl("auth", "can-i", "--list", "-n", namespace, token=token).stdout
    rows = set()
    for line in out.splitlines()[1:]:
        if line and not line.startswith(" "):  # resource rows (URL rows start blank)
            resource, _urls, names, verbs = line.split()
            rows.add((resource, names, verbs))
    return rows


@pytest.fixture(scope="module")
def baseline_token(cluster: Cluster, installed: list[Manifest]) -> str:
    """A ServiceAccount with no binding: what every account may do anyway."""
    cluster.kubectl("create", "serviceaccount", "nobody", "-n", RELEASE_NAMESPACE)
    return cluster.token(RELEASE_NAMESPACE, "nobody")


def test_service_account_reads_owners_and_the_named_key_secret_and_nothing_more(
    cluster: Cluster, installed: list[Manifest], baseline_token: str, namespace: str
) -> None:
    token = cluster.token(RELEASE_NAMESPACE, SERVICE_ACCOUNT)
    owners = {(kind, "[]", "[get]") for kind in OWNER_KINDS}
    for where, expected in (
        (namespace, owners),
        (KEYS_NAMESPACE, owners | {("secrets", f"[{KEY_SECRET}]", "[get]")}),
    ):
        extra = granted(cluster, where, token) - granted(cluster, where, baseline_token)
        assert extra == expected, where

    def can(*args: str) -> bool:
        try:
            cluster.kubectl("auth", "can-i", *args, token=token)
        except KubectlError:
            return False
        return True

    assert can("get", f"secrets/{KEY_SECRET}", "-n", KEYS_NAMESPACE)
    assert can("get", "replicasets.apps/anything", "-n", namespace)
    assert not can("get", "secrets/another", "-n", KEYS_NAMESPACE)
    assert not can("list", "secrets", "-n", KEYS_NAMESPACE)
    assert not can("get", f"secrets/{KEY_SECRET}", "-n", namespace)
    assert not can("list", "pods", "-n", namespace)
    assert not can("create", "pods", "-n", namespace)
    assert not can("patch", "deployments.apps", "-n", namespace)
