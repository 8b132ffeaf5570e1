"""AdmissionReview documents as the API server sends them, and their answers decoded."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any


def pod(*images: str) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": containers},
    }


def admission_review(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview for ``obj`` with a fresh uid."""
    group, _, version = obj["apiVersion"].rpartition("/")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
            "namespace": obj["metadata"].get("namespace", "default"),
            "operation": operation,
            "object": obj,
        },
    }


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON Patch of an admission response."""
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch
