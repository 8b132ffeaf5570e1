"""Manifests of the eight workload kinds the webhook admits, and where their images are."""

from __future__ import annotations

import copy
from typing import Any

Manifest = dict[str, Any]

#: kind → (apiVersion, plural resource)
KINDS = {
    "Pod": ("v1", "pods"),
    "Deployment": ("apps/v1", "deployments"),
    "ReplicationController": ("v1", "replicationcontrollers"),
    "ReplicaSet": ("apps/v1", "replicasets"),
    "DaemonSet": ("apps/v1", "daemonsets"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "Job": ("batch/v1", "jobs"),
    "CronJob": ("batch/v1", "cronjobs"),
}


def pod_spec(*images: str, init: tuple[str, ...] = (), restart: str = "Always") -> Manifest:
    spec: Manifest = {
        "restartPolicy": restart,
        "containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)],
    }
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": x} for i, x in enumerate(init)]
    return spec


def workload(kind: str, name: str, namespace: str, *images: str, **options: Any) -> Manifest:
    """A minimal valid ``kind`` named ``name`` running ``images`` (``init=`` for init
    containers)."""
    api_version, _ = KINDS[kind]
    labels = {"app": name}
    restart = "Never" if kind in ("Job", "CronJob") else "Always"
    template = {
        "metadata": {"labels": labels},
        "spec": pod_spec(*images, restart=restart, **options),
    }
    spec: Manifest
    if kind == "Pod":
        spec = template["spec"]
    elif kind == "ReplicationController":
        spec = {"replicas": 1, "selector": labels, "template": template}
    elif kind == "Job":
        spec = {"template": template, "backoffLimit": 0}
    elif kind == "CronJob":
        spec = {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": template}}}
    else:
        spec = {"selector": {"matchLabels": labels}, "template": template}
        if kind != "DaemonSet":
            spec["replicas"] = 1
        if kind == "StatefulSet":
            spec["serviceName"] = name
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def template_spec(obj: Manifest) -> Manifest:
    """The pod spec inside ``obj`` (the object itself for a Pod)."""
    kind = obj["kind"]
    if kind == "Pod":
        spec: Manifest = obj["spec"]
    elif kind == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = obj["spec"]["template"]["spec"]
    return spec


def images_of(obj: Manifest) -> dict[str, list[str]]:
    """Container type → the images written there."""
    spec = template_spec(obj)
    return {
        ctype: [c["image"] for c in spec[ctype]]
        for ctype in ("containers", "initContainers", "ephemeralContainers")
        if spec.get(ctype)
    }


def with_images(obj: Manifest, *images: str) -> Manifest:
    """A copy of ``obj`` whose containers run ``images``."""
    changed = copy.deepcopy(obj)
    for container, image in zip(template_spec(changed)["containers"], images, strict=True):
        container["image"] = image
    return changed


def api_path(obj: Manifest) -> str:
    api_version, resource = KINDS[obj["kind"]]
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    meta = obj["metadata"]
    return f"{base}/namespaces/{meta['namespace']}/{resource}/{meta['name']}"
