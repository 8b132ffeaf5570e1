"""With kube-controller-manager: the children a Deployment's controllers create are admitted
through child approval (docs/decisions/0010-child-approval-is-earned.md), the owner looked up
in the real API with the chart ServiceAccount's token; forged owners earn nothing; a denied
Deployment never gets a ReplicaSet or a Pod.
"""

from __future__ import annotations

import pytest
import yaml

from tests.cluster.images import SIGNED, UNSIGNED, Images
from tests.cluster.workloads import api_path, images_of, workload
from tests.support.cluster import (
    CHILD,
    Webhook,
    admissions,
    listed,
    owner,
    running_deployment,
)
from tests.support.kube import Cluster, KubectlError

pytestmark = pytest.mark.cluster


def test_deployment_children_are_admitted_by_child_approval_through_the_real_api(
    cluster: Cluster,
    controllers: None,
    webhook_process: Webhook,
    images: Images,
    namespace: str,
) -> None:
    deployment, pods = running_deployment(cluster, namespace, "web", images.ref(SIGNED))
    pinned = images.pinned(SIGNED)
    assert images_of(deployment)["containers"] == [pinned]
    (replicaset,) = listed(cluster, namespace, "replicasets")
    assert owner(replicaset)["uid"] == deployment["metadata"]["uid"]
    assert images_of(replicaset)["containers"] == [pinned]
    for pod in pods:
        assert owner(pod)["uid"] == replicaset["metadata"]["uid"]
        assert images_of(pod)["containers"] == [pinned]

    entries = admissions(webhook_process, namespace)
    created = {(e["kind"], e["operation"]) for e in entries}
    assert {("Deployment", "CREATE"), ("ReplicaSet", "CREATE"), ("Pod", "CREATE")} <= created
    for entry in entries:
        if entry["kind"] in ("ReplicaSet", "Pod") and entry["operation"] == "CREATE":
            assert entry["decision"] == "admit"
            assert [i["skipped"] for i in entry["images"]] == [CHILD], entry
    (deployment_entry,) = [e for e in entries if e["kind"] == "Deployment"]
    assert deployment_entry["images"][0]["skipped"] is None  # the owner itself was verified


def test_children_claiming_a_real_owner_with_other_images_are_verified_and_denied(
    cluster: Cluster,
    controllers: None,
    images: Images,
    namespace: str,
) -> None:
    """D10: the owner exists (its real UID), but the child's images are not the owner's."""
    deployment, _ = running_deployment(cluster, namespace, "web", images.ref(SIGNED), 1)
    (replicaset,) = listed(cluster, namespace, "replicasets")
    forged = [
        ("ReplicaSet", "evil-rs", deployment),
        ("Pod", "evil-pod", replicaset),
    ]
    for kind, name, parent in forged:
        child = workload(kind, name, namespace, images.ref(UNSIGNED))
        child["metadata"]["labels"] = {"app": "decoy"}  # not matched by the real controllers
        if kind == "ReplicaSet":
            child["spec"]["selector"]["matchLabels"] = {"app": "decoy"}
            child["spec"]["template"]["metadata"]["labels"] = {"app": "decoy"}
        child["metadata"]["ownerReferences"] = [
            {
                "apiVersion": parent["apiVersion"],
                "kind": parent["kind"],
                "name": parent["metadata"]["name"],
                "uid": parent["metadata"]["uid"],
            }
        ]
        with pytest.raises(KubectlError) as refusal:
            cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(child))
        assert f"image '{images.ref(UNSIGNED)}'" in refusal.value.stderr
        assert "[no_trust_data]" in refusal.value.stderr
        assert not cluster.exists(api_path(child))


def test_denied_deployment_gets_no_replicaset_and_no_pods(
    cluster: Cluster,
    controllers: None,
    images: Images,
    namespace: str,
) -> None:
    bad = workload("Deployment", "bad", namespace, images.ref(UNSIGNED))
    with pytest.raises(KubectlError) as refusal:
        cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(bad))
    assert "denied the request" in refusal.value.stderr
    # a Deployment created after it is running: the controllers have had their turn
    deployment, pods = running_deployment(cluster, namespace, "good", images.ref(SIGNED), 1)
    (replicaset,) = listed(cluster, namespace, "replicasets")
    assert owner(replicaset)["name"] == "good"
    assert [p["metadata"]["name"] for p in listed(cluster, namespace, "pods")] == [
        p["metadata"]["name"] for p in pods
    ]
    # an update of the running Deployment to the unsigned image is denied: no new ReplicaSet
    bad_update = workload("Deployment", "good", namespace, images.ref(UNSIGNED))
    with pytest.raises(KubectlError) as refusal:
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(bad_update))
    assert f"image '{images.ref(UNSIGNED)}'" in refusal.value.stderr
    stored = cluster.get(api_path(deployment))
    assert stored["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert [r["metadata"]["uid"] for r in listed(cluster, namespace, "replicasets")] == [
        replicaset["metadata"]["uid"]
    ]
