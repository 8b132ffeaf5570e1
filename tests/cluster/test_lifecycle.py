"""An incident: a running Deployment's image is denied *now* (its signature was removed from the
registry). The operator's lifecycle commands still work
(docs/decisions/0011-lifecycle-updates.md) — each prints our warning — while anything that would
run a new image is still reviewed.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.cluster.images import Images
from tests.cluster.workloads import api_path, images_of, workload
from tests.support.cluster import (
    CHILD,
    Webhook,
    admissions,
    eventually,
    listed,
    owner,
    running_deployment,
)
from tests.support.kube import Cluster, KubectlError

pytestmark = pytest.mark.cluster
UNCHANGED_WARNING = "Warning: images unchanged: admitted without enforcing verification"
_repos = itertools.count()


@dataclass(frozen=True)
class Incident:
    namespace: str
    image: str  # as the Deployment was written
    pinned: str  # as it was stored
    deployment: dict[str, Any]

    def denial(self) -> str:
        return f"image '{self.pinned}'"


@pytest.fixture
def incident(cluster: Cluster, controllers: None, images: Images, namespace: str) -> Incident:
    """A Deployment of a signed image with its two Pods running; then the signature is gone."""
    name = f"incident{next(_repos)}:v1"
    image = images.push(name, signed=True)
    deployment, _ = running_deployment(cluster, namespace, "web", image)
    images.remove_signature(name)
    # nothing new with this image is admitted any more
    pod = workload("Pod", "probe", namespace, images.pinned(name))
    with pytest.raises(KubectlError) as refusal:
        cluster.kubectl("create", "-f", "-", stdin=yaml.safe_dump(pod))
    assert "[no_trust_data]" in refusal.value.stderr
    return Incident(namespace, image, images.pinned(name), deployment)


def warned(stderr: str, incident: Incident) -> bool:
    """kubectl printed our D11 warning and the denial it stands for."""
    lines = stderr.splitlines()
    return UNCHANGED_WARNING in lines and any(
        line.startswith("Warning: ") and incident.denial() in line for line in lines
    )


def pods_of(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return [
        p
        for p in listed(cluster, namespace, "pods")
        if p["metadata"].get("deletionTimestamp") is None
    ]


def test_scale_to_zero_by_a_patch_of_the_deployment_is_admitted_with_a_warning(
    cluster: Cluster, incident: Incident
) -> None:
    patch = json.dumps({"spec": {"replicas": 0}})
    done = cluster.kubectl("patch", "deployment/web", "-n", incident.namespace, "-p", patch)
    assert warned(done.stderr, incident), done.stderr
    eventually(lambda: not pods_of(cluster, incident.namespace) or None, "the pods are gone")
    assert cluster.get(api_path(incident.deployment))["spec"]["replicas"] == 0


def test_label_only_updates_of_the_deployment_and_its_pods_are_admitted(
    cluster: Cluster, incident: Incident
) -> None:
    done = cluster.kubectl("label", "deployment/web", "-n", incident.namespace, "incident=open")
    assert warned(done.stderr, incident), done.stderr
    # a Pod of the live, pinned ReplicaSet is approved as its child: admitted without a warning
    pod = pods_of(cluster, incident.namespace)[0]["metadata"]["name"]
    cluster.kubectl("label", f"pod/{pod}", "-n", incident.namespace, "quarantine=yes")
    labelled = cluster.get(f"/api/v1/namespaces/{incident.namespace}/pods/{pod}")
    assert labelled["metadata"]["labels"]["quarantine"] == "yes"
    stored = cluster.get(api_path(incident.deployment))
    assert stored["metadata"]["labels"]["incident"] == "open"
    assert images_of(stored)["containers"] == [incident.pinned]  # admitted unchanged


def test_delete_with_orphan_cascade_releases_the_replicaset(
    cluster: Cluster, incident: Incident
) -> None:
    """The garbage collector removes the ownerReference (an UPDATE of the ReplicaSet with its
    images unchanged) before the Deployment goes."""
    (replicaset,) = listed(cluster, incident.namespace, "replicasets")
    cluster.kubectl("delete", "deployment/web", "-n", incident.namespace, "--cascade=orphan")

    def released() -> dict[str, Any] | None:
        current = cluster.get(api_path(replicaset))
        gone = not cluster.exists(api_path(incident.deployment))
        return current if gone and not current["metadata"].get("ownerReferences") else None

    kept = eventually(released, "the Deployment deleted and its ReplicaSet orphaned")
    assert kept["metadata"]["uid"] == replicaset["metadata"]["uid"]
    assert len(pods_of(cluster, incident.namespace)) == 2


def test_rollout_restart_is_admitted_and_its_new_pods_are_children_of_the_pinned_template(
    cluster: Cluster, incident: Incident, webhook_process: Webhook
) -> None:
    """A restart changes an annotation of the template; the new ReplicaSet and Pods are
    CREATEs, approved as children of the live, pinned Deployment (decision 0010)."""
    (old,) = listed(cluster, incident.namespace, "replicasets")
    seen = len(admissions(webhook_process, incident.namespace))
    done = cluster.kubectl("rollout", "restart", "deployment/web", "-n", incident.namespace)
    assert warned(done.stderr, incident), done.stderr

    def new_replicaset() -> dict[str, Any] | None:
        sets = listed(cluster, incident.namespace, "replicasets")
        fresh = [r for r in sets if r["metadata"]["uid"] != old["metadata"]["uid"]]
        return fresh[0] if fresh and fresh[0].get("status", {}).get("replicas") else None

    fresh = eventually(new_replicaset, "a new ReplicaSet with Pods")
    assert owner(fresh)["uid"] == incident.deployment["metadata"]["uid"]
    assert images_of(fresh)["containers"] == [incident.pinned]
    since = admissions(webhook_process, incident.namespace)[seen:]
    created = [e for e in since if e["operation"] == "CREATE"]
    assert {e["kind"] for e in created} == {"ReplicaSet", "Pod"}
    for entry in created:
        assert entry["decision"] == "admit"
        assert [i["skipped"] for i in entry["images"]] == [CHILD]


def test_changing_the_image_during_the_incident_is_still_reviewed(
    cluster: Cluster, incident: Incident, images: Images
) -> None:
    """Only unchanged images pass unverified: a new one (here the same tag, unpinned, which
    resolves to the image now unsigned) is verified and denied."""
    patch = json.dumps(
        [
            {
                "op": "replace",
                "path": "/spec/template/spec/containers/0/image",
                "value": incident.image,
            }
        ]
    )
    with pytest.raises(KubectlError) as refusal:
        cluster.kubectl(
            "patch", "deployment/web", "-n", incident.namespace, "--type=json", "-p", patch
        )
    assert "denied the request" in refusal.value.stderr
    assert f"image '{incident.image}'" in refusal.value.stderr
    stored = cluster.get(api_path(incident.deployment))
    assert images_of(stored)["containers"] == [incident.pinned]
    assert len(listed(cluster, incident.namespace, "replicasets")) == 1
