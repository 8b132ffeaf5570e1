"""The API server calls the webhook: every workload kind, created and updated, as a user sees it
through ``kubectl`` — allowed and pinned in the stored object, or denied with our message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.cluster.images import SIGNED, SIGNED_TOO, UNSIGNED, Images
from tests.cluster.workloads import KINDS, Manifest, api_path, images_of, workload
from tests.support.cluster import (
    RELEASE_NAMESPACE,
    SELECTOR_KEY,
    WEBHOOK_NAME,
    create_namespace,
    webhook_changed,
)
from tests.support.helm import Renderer, armed_webhook
from tests.support.kube import Cluster, KubectlError
from tests.support.servers import free_port

pytestmark = pytest.mark.cluster


def create(cluster: Cluster, obj: Manifest, *extra: str) -> str:
    return cluster.kubectl("create", "-f", "-", *extra, stdin=yaml.safe_dump(obj)).stdout


def refused(cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    """What kubectl prints when the request is refused (it must be)."""
    with pytest.raises(KubectlError) as refusal:
        cluster.kubectl(*args, stdin=stdin)
    return refusal.value.stderr


def denial(images: Images, name: str) -> str:
    """Our denial of an unsigned image under the session's cosign rule (D7 wording)."""
    image = images.ref(name)
    return (
        f"image '{image}' (rule '{images.registry.host}/team/*:*', validator 'team') denied "
        f"[no_trust_data]: cosign: image {image} (trust roots: default): no signatures found"
    )


def image_patch(obj: Manifest, image: str) -> list[str]:
    """``kubectl patch`` arguments replacing the first container's image (JSON patch)."""
    path = "/" + "/".join(container_path(obj)) + "/containers/0/image"
    patch = json.dumps([{"op": "replace", "path": path, "value": image}])
    meta = obj["metadata"]
    target = f"{obj['kind'].lower()}/{meta['name']}"
    return ["patch", target, "-n", meta["namespace"], "--type=json", "-p", patch]


def container_path(obj: Manifest) -> tuple[str, ...]:
    return {
        "Pod": ("spec",),
        "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    }.get(obj["kind"], ("spec", "template", "spec"))


# ------------------------------------------------------------------ the eight kinds


@pytest.mark.parametrize("kind", list(KINDS))
def test_signed_workload_is_created_and_updated_with_its_tags_pinned(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str, kind: str
) -> None:
    obj = workload(kind, "web", namespace, images.ref(SIGNED), init=(images.ref(SIGNED_TOO),))
    create(cluster, obj)
    stored = cluster.get(api_path(obj))
    assert images_of(stored) == {
        "containers": [images.pinned(SIGNED)],
        "initContainers": [images.pinned(SIGNED_TOO)],
    }
    if kind == "Job":  # a Job's pod template is immutable: the update is a label
        cluster.kubectl("label", "job/web", "-n", namespace, "tier=backend")
        assert images_of(cluster.get(api_path(obj)))["containers"] == [images.pinned(SIGNED)]
        return
    cluster.kubectl(*image_patch(obj, images.ref(SIGNED_TOO)))
    assert images_of(cluster.get(api_path(obj)))["containers"] == [images.pinned(SIGNED_TOO)]


@pytest.mark.parametrize("kind", list(KINDS))
def test_unsigned_workload_is_denied_on_create_and_on_update_with_our_message(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str, kind: str
) -> None:
    bad = workload(kind, "bad", namespace, images.ref(UNSIGNED))
    printed = refused(cluster, "create", "-f", "-", stdin=yaml.safe_dump(bad))
    assert printed == (
        'Error from server (no_trust_data): error when creating "STDIN": admission webhook '
        f'"{WEBHOOK_NAME}" denied the request: {denial(images, UNSIGNED)}'
    )
    assert not cluster.exists(api_path(bad))

    good = workload(kind, "good", namespace, images.ref(SIGNED))
    create(cluster, good)
    printed = refused(cluster, *image_patch(good, images.ref(UNSIGNED)))
    assert printed == (
        f'Error from server (no_trust_data): admission webhook "{WEBHOOK_NAME}" denied the '
        f"request: {denial(images, UNSIGNED)}"
    )
    assert images_of(cluster.get(api_path(good)))["containers"] == [images.pinned(SIGNED)]


def test_denial_names_every_failing_image_and_only_those(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    other = images.push("other:unsigned", signed=False)
    pod = workload("Pod", "mixed", namespace, images.ref(SIGNED), images.ref(UNSIGNED), other)
    printed = refused(cluster, "create", "-f", "-", stdin=yaml.safe_dump(pod))
    message = printed.split("denied the request: ", 1)[1]
    assert message == (
        f"2 of 3 images denied: {denial(images, UNSIGNED)}; {denial(images, 'other:unsigned')}"
    )
    assert images.ref(SIGNED) not in message


# ------------------------------------------------------------------ dry run and debug containers


def test_server_side_dry_run_is_reviewed_and_stores_nothing(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    good = workload("Deployment", "dry", namespace, images.ref(SIGNED))
    answered = json.loads(create(cluster, good, "--dry-run=server", "-o", "json"))
    assert images_of(answered)["containers"] == [images.pinned(SIGNED)]
    assert not cluster.exists(api_path(good))

    bad = workload("Deployment", "dry", namespace, images.ref(UNSIGNED))
    printed = refused(cluster, "create", "-f", "-", "--dry-run=server", stdin=yaml.safe_dump(bad))
    assert printed.endswith(f"denied the request: {denial(images, UNSIGNED)}")


def ephemeral(cluster: Cluster, namespace: str, pod: str) -> list[dict[str, Any]]:
    stored = cluster.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
    containers: list[dict[str, Any]] = stored["spec"].get("ephemeralContainers") or []
    return containers


def test_debug_container_with_a_signed_image_is_pinned(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    create(cluster, workload("Pod", "app", namespace, images.ref(SIGNED)))
    cluster.kubectl(
        "debug",
        "app",
        "-n",
        namespace,
        "--image",
        images.ref(SIGNED_TOO),
        "-c",
        "dbg",
        "--profile=general",
    )
    (added,) = ephemeral(cluster, namespace, "app")
    assert added["name"] == "dbg"
    assert added["image"] == images.pinned(SIGNED_TOO)


def test_debug_container_with_an_unsigned_image_is_denied(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    create(cluster, workload("Pod", "app", namespace, images.ref(SIGNED)))
    printed = refused(
        cluster,
        "debug",
        "app",
        "-n",
        namespace,
        "--image",
        images.ref(UNSIGNED),
        "-c",
        "dbg",
        "--profile=general",
    )
    assert printed.startswith(
        f'Error from server (no_trust_data): admission webhook "{WEBHOOK_NAME}" denied the request'
    )
    # only the debug image is named (the Pod's own image may be counted as verified)
    assert printed.endswith(denial(images, UNSIGNED))
    assert images.ref(SIGNED) not in printed
    assert ephemeral(cluster, namespace, "app") == []


# ------------------------------------------------------------------ objects being deleted


def test_a_pod_held_by_a_finalizer_cannot_be_switched_to_an_unsigned_image(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    """The audit's bypass through the real API: a deleted Pod kept by a finalizer is still
    reviewed when its image changes; dropping the finalizer (images unchanged) is not blocked."""
    pod = workload("Pod", "held", namespace, images.ref(SIGNED))
    pod["metadata"]["finalizers"] = ["example.com/hold"]
    create(cluster, pod)
    cluster.kubectl("delete", "pod/held", "-n", namespace, "--wait=false")
    terminating = cluster.get(api_path(pod))
    assert terminating["metadata"].get("deletionTimestamp")
    printed = refused(cluster, *image_patch(pod, images.ref(UNSIGNED)))
    assert printed.endswith(denial(images, UNSIGNED)), printed
    assert images_of(cluster.get(api_path(pod)))["containers"] == [images.pinned(SIGNED)]
    release = json.dumps([{"op": "remove", "path": "/metadata/finalizers"}])
    cluster.kubectl("patch", "pod/held", "-n", namespace, "--type=json", "-p", release)
    assert not cluster.exists(api_path(pod))


# ------------------------------------------------------------------ which namespaces are reviewed


def admitted_unreviewed(cluster: Cluster, images: Images, namespace: str) -> None:
    """An unsigned image is stored as written, and a signed tag is not pinned: the API server
    did not call the webhook at all."""
    pod = workload("Pod", "free", namespace, images.ref(UNSIGNED), images.ref(SIGNED))
    create(cluster, pod)
    assert images_of(cluster.get(api_path(pod)))["containers"] == [
        images.ref(UNSIGNED),
        images.ref(SIGNED),
    ]


def test_namespace_labelled_ignore_and_the_release_namespace_are_not_reviewed(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    ignored = f"{namespace}-ignored"
    create_namespace(cluster, ignored, {SELECTOR_KEY: "ignore"})
    admitted_unreviewed(cluster, images, ignored)
    admitted_unreviewed(cluster, images, RELEASE_NAMESPACE)
    # any other value of the label is reviewed
    create_namespace(cluster, f"{namespace}-other", {SELECTOR_KEY: "validate"})
    bad = workload("Pod", "bad", f"{namespace}-other", images.ref(UNSIGNED))
    assert "denied the request" in refused(cluster, "create", "-f", "-", stdin=yaml.safe_dump(bad))


def test_validate_mode_reviews_only_namespaces_labelled_validate(
    cluster: Cluster,
    registered: Manifest,
    images: Images,
    namespace: str,
    render: Renderer,
    values_file: Any,
) -> None:
    mode = render(
        [values_file],
        ["application.features.namespacedValidation.mode=validate"],
        namespace=RELEASE_NAMESPACE,
    )
    (hook,) = armed_webhook(mode)["webhooks"]
    with webhook_changed(cluster, registered, {"namespaceSelector": hook["namespaceSelector"]}):
        admitted_unreviewed(cluster, images, namespace)
        create_namespace(cluster, f"{namespace}-v", {SELECTOR_KEY: "validate"})
        bad = workload("Pod", "bad", f"{namespace}-v", images.ref(UNSIGNED))
        printed = refused(cluster, "create", "-f", "-", stdin=yaml.safe_dump(bad))
        assert printed.endswith(denial(images, UNSIGNED))


# ------------------------------------------------------------------ deadline and outage


def test_api_server_timeout_becomes_the_webhook_deadline(
    cluster: Cluster, registered: Manifest, namespace: str, stalled_registry: str
) -> None:
    """D6 (docs/decisions/0006-deadline-from-the-caller.md): with ``timeoutSeconds: 3`` the API
    server sends ``?timeout=3s``; a registry that never answers yields our ``timeout`` denial
    within that budget, not the API server's own timeout error."""
    image = f"{stalled_registry}/app:v1"
    with webhook_changed(cluster, registered, {"timeoutSeconds": 3}):
        pod = workload("Pod", "slow", namespace, image)
        printed = refused(cluster, "create", "-f", "-", stdin=yaml.safe_dump(pod))
    assert printed.startswith(
        f'Error from server (timeout): error when creating "STDIN": admission webhook '
        f"\"{WEBHOOK_NAME}\" denied the request: image '{image}'"
    )
    assert "[timeout]" in printed
    assert "deadline exceeded" not in printed
    assert not cluster.exists(api_path(pod))


def test_webhook_down_with_failure_policy_fail_admits_nothing(
    cluster: Cluster, registered: Manifest, images: Images, namespace: str
) -> None:
    (hook,) = registered["webhooks"]
    assert hook["failurePolicy"] == "Fail"  # the chart's default
    down = f"https://127.0.0.1:{free_port()}/mutate"  # nothing listens there
    client = {"url": down, "caBundle": hook["clientConfig"]["caBundle"]}
    with webhook_changed(cluster, registered, {"clientConfig": client}):
        pod = workload("Pod", "signed", namespace, images.ref(SIGNED))
        printed = refused(cluster, "create", "-f", "-", stdin=yaml.safe_dump(pod))
    assert printed.startswith(
        'Error from server (InternalError): error when creating "STDIN": Internal error '
        f'occurred: failed calling webhook "{WEBHOOK_NAME}"'
    )
    assert "connection refused" in printed
    assert not cluster.exists(api_path(pod))
    # the webhook is back: the same Pod is admitted and pinned
    create(cluster, pod)
    assert images_of(cluster.get(api_path(pod)))["containers"] == [images.pinned(SIGNED)]
