"""The chart mounts an offline bundle (docs/decisions/0055-offline-bundles.md) from values:
``kubernetes.deployment.offlineBundle`` with one of a ConfigMap, a Secret, a PVC or an image
volume, read-only at /app/bundle, and ``serve --offline /app/bundle``; pods roll when the source
changes; a wrong block fails the render with its path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.helm import HelmError, Manifest, Renderer, app_config, find

pytestmark = pytest.mark.helm
KEY = "kubernetes.deployment.offlineBundle"
ITEMS = [{"key": "oci.index.json", "path": "oci/index.json"}]
IMAGE = {"reference": "registry.example/trust:2026-05-01", "pullPolicy": "IfNotPresent"}
SOURCES = {
    "configMap": (
        [
            f"{KEY}.configMap.name=trust",
            f"{KEY}.configMap.items[0].key=oci.index.json",
            f"{KEY}.configMap.items[0].path=oci/index.json",
        ],
        {"configMap": {"name": "trust", "items": ITEMS}},
    ),
    "secret": ([f"{KEY}.secret.secretName=trust"], {"secret": {"secretName": "trust"}}),
    "persistentVolumeClaim": (
        [f"{KEY}.persistentVolumeClaim.claimName=trust"],
        {"persistentVolumeClaim": {"claimName": "trust", "readOnly": True}},
    ),
    "image": (
        [f"{KEY}.image.reference={IMAGE['reference']}", f"{KEY}.image.pullPolicy=IfNotPresent"],
        {"image": IMAGE},
    ),
}


def pod(manifests: list[Manifest]) -> dict[str, Any]:
    template: dict[str, Any] = find(manifests, "Deployment", "connaisseur")["spec"]["template"]
    return template


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_bundle_source_is_mounted_read_only_and_served_offline(
    render: Renderer, source: str
) -> None:
    sets, volume = SOURCES[source]
    template = pod(render([], sets))
    spec = template["spec"]
    (container,) = spec["containers"]
    assert container["args"][-2:] == ["--offline", "/app/bundle"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/app/bundle")
    assert mount["readOnly"] is True
    rendered = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert {k: v for k, v in rendered.items() if k != "name"} == volume
    assert "checksum/offline-bundle" in template["metadata"]["annotations"]


def test_a_bundle_for_some_validators_is_mounted_without_offline(render: Renderer) -> None:
    """``everyValidator: false``: the bundle is mounted, the process is not offline, and a
    validator's own ``source`` (passed to the application as written) points at the mount."""
    source = {"type": "bundle", "path": "/app/bundle"}
    sets = [
        f"{KEY}.secret.secretName=trust",
        f"{KEY}.everyValidator=false",
        "application.validators[0].name=shop",
        "application.validators[0].type=cosign",
        "application.validators[0].source.type=bundle",
        "application.validators[0].source.path=/app/bundle",
    ]
    manifests = render([], sets)
    spec = pod(manifests)["spec"]
    (container,) = spec["containers"]
    assert "--offline" not in container["args"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/app/bundle")
    rendered = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert rendered["secret"] == {"secretName": "trust"}
    (shop,) = app_config(manifests)["validators"]
    assert shop["source"] == source


def test_every_validator_is_the_default(render: Renderer) -> None:
    sets = [f"{KEY}.secret.secretName=trust", f"{KEY}.everyValidator=true"]
    (container,) = pod(render([], sets))["spec"]["containers"]
    assert container["args"][-2:] == ["--offline", "/app/bundle"]


def test_without_a_bundle_nothing_changes(render: Renderer) -> None:
    template = pod(render())
    (container,) = template["spec"]["containers"]
    assert "--offline" not in container["args"]
    assert all(m["mountPath"] != "/app/bundle" for m in container["volumeMounts"])
    assert "checksum/offline-bundle" not in template["metadata"]["annotations"]


def test_a_new_bundle_image_rolls_the_pods(render: Renderer) -> None:
    def checksum(tag: str) -> str:
        sets = [f"{KEY}.image.reference=registry.example/trust:{tag}"]
        annotations: dict[str, str] = pod(render([], sets))["metadata"]["annotations"]
        return annotations["checksum/offline-bundle"]

    assert checksum("2026-05-01") != checksum("2026-05-08")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            [f"{KEY}.secret.secretName=a", f"{KEY}.image.reference=b"],
            "offlineBundle: one source only, got image, secret",
        ),
        ([f"{KEY}.hostPath.path=/x"], "offlineBundle.hostPath: unknown source"),
        ([f"{KEY}.persistentVolumeClaim.readOnly=true"], "claimName is required"),
        ([f"{KEY}.image.pullPolicy=Always"], "image.reference is required"),
        ([f"{KEY}.everyValidator=false"], "everyValidator: name a source"),
        (
            [f"{KEY}.secret.secretName=a", f"{KEY}.everyValidator=no"],
            "everyValidator must be true or false",
        ),
    ],
)
def test_a_wrong_bundle_block_fails_the_render(
    render: Renderer, sets: list[str], message: str
) -> None:
    with pytest.raises(HelmError, match=message):
        render([], sets)
