"""What a rendered pod sees, built the way the kubelet builds it: its environment and its files.

Used by the contract tests between the chart and the application: the environment is resolved
from ``envFrom`` and ``env`` (``value``, ``configMapKeyRef``, ``secretKeyRef``, ``fieldRef``)
against the rendered ConfigMaps and Secrets, and the Secret/ConfigMap volumes are written into a
directory that stands for the container's root filesystem. A reference to an object the chart
does not render fails, as the pod would not start.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connaisseur.application.settings import Settings
from connaisseur.config.loader import load_settings
from tests.support.helm import Manifest, find

#: Injected by the kubelet into every container (lowest precedence, like service links).
KUBELET_ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def pod_spec(manifests: list[Manifest], deployment: str) -> Manifest:
    spec: Manifest = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    return spec


def container(manifests: list[Manifest], deployment: str) -> Manifest:
    only: Manifest
    (only,) = pod_spec(manifests, deployment)["containers"]
    return only


def object_data(manifests: list[Manifest], kind: str, name: str) -> dict[str, str]:
    """The decoded ``data`` of a rendered ConfigMap or Secret."""
    data: dict[str, str] = find(manifests, kind, name).get("data") or {}
    if kind == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in data.items()}
    return dict(data)


def resolve_env(
    manifests: list[Manifest], deployment: str, pod_name: str = "connaisseur-7d9f-abcde"
) -> dict[str, str]:
    """The container's environment: kubelet variables, then ``envFrom``, then ``env``."""
    c = container(manifests, deployment)
    env = dict(KUBELET_ENV)
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            data = object_data(manifests, "ConfigMap", source["configMapRef"]["name"])
        else:
            data = object_data(manifests, "Secret", source["secretRef"]["name"])
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in c.get("env", []):
        env[var["name"]] = _value(manifests, var, pod_name)
    return env


def _value(manifests: list[Manifest], var: Mapping[str, Any], pod_name: str) -> str:
    if "value" in var:
        return str(var["value"])
    source = var["valueFrom"]
    if "fieldRef" in source:
        assert source["fieldRef"]["fieldPath"] == "metadata.name", source
        return pod_name
    kind, ref = (
        ("ConfigMap", source["configMapKeyRef"])
        if "configMapKeyRef" in source
        else ("Secret", source["secretKeyRef"])
    )
    data = object_data(manifests, kind, ref["name"])
    assert ref["key"] in data, f"{kind} {ref['name']} has no key {ref['key']}"
    return data[ref["key"]]


def materialize(manifests: list[Manifest], deployment: str, root: Path) -> dict[str, Path]:
    """Write the container's Secret and ConfigMap mounts under ``root``; mountPath → its path.

    A ``subPath`` mount is the one file of the volume at that path (the mount path is the file).
    """
    spec = pod_spec(manifests, deployment)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounted = {}
    for mount in container(manifests, deployment).get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target = in_root(root, mount["mountPath"])
        mounted[mount["mountPath"]] = target
        files = _volume_files(manifests, volume)
        if "subPath" in mount:
            assert mount["subPath"] in files, f"volume {mount['name']} has no {mount['subPath']}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[mount["subPath"]])
            continue
        target.mkdir(parents=True, exist_ok=True)
        for path, content in files.items():
            (target / path).write_text(content)
    return mounted


def _volume_files(manifests: list[Manifest], volume: Manifest) -> dict[str, str]:
    """A Secret or ConfigMap volume's files (path → content); empty for an emptyDir."""
    if "secret" in volume:
        source = volume["secret"]
        data = object_data(manifests, "Secret", source["secretName"])
    elif "configMap" in volume:
        source = volume["configMap"]
        data = object_data(manifests, "ConfigMap", source["name"])
    else:
        return {}
    items = source.get("items") or [{"key": k, "path": k} for k in data]
    return {item["path"]: data[item["key"]] for item in items}


def in_root(root: Path, path: str) -> Path:
    """``path`` of the container's filesystem, inside ``root``."""
    return root / path.lstrip("/")


def arg_value(args: list[str], flag: str) -> str:
    """The value following ``flag`` on a command line."""
    return args[args.index(flag) + 1]


def command_line(manifests: list[Manifest], deployment: str, root: Path) -> list[str]:
    """The container's ``args`` as the kubelet runs them, with mounted paths under ``root``.

    ``$(VAR)`` is expanded from the container's environment, as Kubernetes does.
    """
    env = resolve_env(manifests, deployment)
    mounted = materialize(manifests, deployment, root)
    out = []
    for arg in container(manifests, deployment).get("args", []):
        arg = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), arg)
        for mount_path, directory in mounted.items():
            if arg == mount_path or arg.startswith(mount_path.rstrip("/") + "/"):
                arg = str(directory) + arg[len(mount_path.rstrip("/")) :]
                break  # mapped once: the new path may itself start with a mount path (/tmp)
        out.append(arg)
    return out


def served_settings(manifests: list[Manifest], root: Path) -> Settings:
    """Settings as ``connaisseur serve`` loads them in the rendered pod (files under ``root``)."""
    materialize(manifests, "connaisseur", root)
    args = container(manifests, "connaisseur")["args"]
    assert args[0] == "serve"
    alerting = arg_value(args, "--alerting-config") if "--alerting-config" in args else None
    return load_settings(
        in_root(root, arg_value(args, "--config")),
        secrets_dir=in_root(root, arg_value(args, "--secrets-dir")),
        env=resolve_env(manifests, "connaisseur"),
        alerting_config=in_root(root, alerting) if alerting else None,
    )
