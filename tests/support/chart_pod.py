"""The product image run the way the Helm chart's Deployment runs it, with ``docker run``.

The rendered Deployment is translated field by field: its security context (read-only root file
system, user and group, capabilities, privilege escalation, seccomp), its resource limits, its
volumes (ConfigMaps and Secrets written out from the rendered manifests, or from the caller's
directories for Secrets the chart only names; an emptyDir becomes a tmpfs) mounted where and how
the Deployment mounts them, its environment and its arguments. A field this translation does not
know is an error, so a new hardening setting in the chart cannot be silently ignored. Only the
network differs: the host's, with ``--listen 127.0.0.1:PORT`` added (no bridge here).

Used by tests/helm/test_image_runs_like_the_chart.py and bench/image.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import containers, images

ROOT = Path(__file__).resolve().parents[2]
Manifest = dict[str, Any]
SECURITY_FIELDS = {
    "allowPrivilegeEscalation",
    "capabilities",
    "privileged",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "seccompProfile",
}


@dataclass(frozen=True)
class PodRun:
    """How to start the chart's pod with docker, and how to reach it."""

    options: tuple[str, ...]
    args: tuple[str, ...]
    port: int
    ca_pem: str  # what the webhook configuration's caBundle trusts
    server_name: str  # the Service's DNS name, which the serving certificate names


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    hits = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    if len(hits) != 1:
        raise LookupError(f"expected one {kind}/{name}, found {len(hits)}")
    return hits[0]


def deployment_container(manifests: list[Manifest]) -> tuple[Manifest, Manifest]:
    """(pod spec, the webhook container) of the chart's Deployment."""
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    pod: Manifest = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def security_options(pod: Manifest, container: Manifest) -> list[str]:
    """``docker run`` options for the container's (and pod's) security context."""
    if pod.get("securityContext"):
        raise ValueError(f"pod securityContext not translated: {pod['securityContext']}")
    context: Mapping[str, Any] = container.get("securityContext") or {}
    unknown = set(context) - SECURITY_FIELDS
    if unknown:
        raise ValueError(f"securityContext fields not translated: {sorted(unknown)}")
    options: list[str] = []
    if context.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    uid, gid = context.get("runAsUser"), context.get("runAsGroup")
    if uid is not None:
        options += ["--user", f"{uid}:{gid if gid is not None else uid}"]
    if context.get("runAsNonRoot") and not uid:
        raise ValueError("runAsNonRoot without a non-root runAsUser: the image decides")
    capabilities = context.get("capabilities") or {}
    options += [f"--cap-drop={c}" for c in capabilities.get("drop", [])]
    options += [f"--cap-add={c}" for c in capabilities.get("add", [])]
    if context.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    if context.get("privileged"):
        options.append("--privileged")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp not in (None, "RuntimeDefault"):  # Docker's default profile is RuntimeDefault
        raise ValueError(f"seccompProfile {seccomp} not translated")
    return options


def resource_options(container: Manifest) -> list[str]:
    limits = (container.get("resources") or {}).get("limits") or {}
    options = []
    if "memory" in limits:
        options += ["--memory", _bytes(str(limits["memory"]))]
    if "cpu" in limits:
        cpu = str(limits["cpu"])
        options += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]
    return options


def _bytes(quantity: str) -> str:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return str(int(quantity[: -len(suffix)]) * factor)
    return quantity


def _secret_files(manifests: list[Manifest], name: str) -> dict[str, bytes] | None:
    hits = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"] == name]
    if not hits:
        return None
    data = {k: base64.b64decode(v) for k, v in (hits[0].get("data") or {}).items()}
    data |= {k: v.encode() for k, v in (hits[0].get("stringData") or {}).items()}
    return data


def _write_volume(
    directory: Path, files: Mapping[str, bytes], items: list[Manifest] | None
) -> Path:
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    chosen = {i["key"]: i["path"] for i in items} if items else {k: k for k in files}
    for key, path in chosen.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[key])
        target.chmod(0o644)
    return directory


def volume_options(
    manifests: list[Manifest],
    pod: Manifest,
    container: Manifest,
    workdir: Path,
    user_secrets: Mapping[str, Path],
) -> list[str]:
    """``-v``/``--tmpfs`` options for every volume mount, from the rendered manifests."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    options: list[str] = []
    for mount in container.get("volumeMounts", []):
        volume, path = volumes[mount["name"]], mount["mountPath"]
        if "emptyDir" in volume:
            size = _bytes(str((volume["emptyDir"] or {}).get("sizeLimit", "64Mi")))
            options += ["--tmpfs", f"{path}:rw,size={size},mode=1777"]
            continue
        source = _volume_source(manifests, volume, workdir / mount["name"], user_secrets)
        if "subPath" in mount:
            source = source / mount["subPath"]
        mode = "ro" if mount.get("readOnly") else "rw"
        options += ["-v", f"{source}:{path}:{mode}"]
    return options


def _volume_source(
    manifests: list[Manifest], volume: Manifest, directory: Path, user_secrets: Mapping[str, Path]
) -> Path:
    if "configMap" in volume:
        config_map = find(manifests, "ConfigMap", volume["configMap"]["name"])
        encoded = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
        return _write_volume(directory, encoded, volume["configMap"].get("items"))
    if "secret" in volume:
        name = volume["secret"]["secretName"]
        files = _secret_files(manifests, name)
        if files is None:  # a Secret the user creates (e.g. registry credentials)
            files = {p.name: p.read_bytes() for p in user_secrets[name].iterdir()}
        return _write_volume(directory, files, volume["secret"].get("items"))
    raise ValueError(f"volume kind not translated: {sorted(volume)}")


def environment(manifests: list[Manifest], container: Manifest) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = find(manifests, "ConfigMap", source["configMapRef"]["name"]).get("data") or {}
            env |= {k: str(v) for k, v in data.items()}
        elif "secretRef" in source:
            files = _secret_files(manifests, source["secretRef"]["name"]) or {}
            env |= {k: v.decode() for k, v in files.items()}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
        elif "fieldRef" in variable.get("valueFrom", {}):
            env[variable["name"]] = "connaisseur-pod-0"  # metadata.name of the pod
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            secret = _secret_files(manifests, ref["name"]) or {}
            env[variable["name"]] = secret[ref["key"]].decode()
    return env


def pod_run(
    manifests: list[Manifest], workdir: Path, port: int, user_secrets: Mapping[str, Path]
) -> PodRun:
    """Translate the chart's Deployment; files go under ``workdir``."""
    pod, container = deployment_container(manifests)
    options = security_options(pod, container) + resource_options(container)
    options += volume_options(manifests, pod, container, workdir, user_secrets)
    for key, value in environment(manifests, container).items():
        options += ["-e", f"{key}={value}"]
    webhooks = [m for m in manifests if m["kind"] == "MutatingWebhookConfiguration"]
    client = webhooks[0]["webhooks"][0]["clientConfig"]  # every copy names the same CA
    service = client["service"]
    return PodRun(
        options=tuple(options),
        args=(*container["args"], "--listen", f"127.0.0.1:{port}"),
        port=port,
        ca_pem=base64.b64decode(client["caBundle"]).decode(),
        server_name=f"{service['name']}.{service['namespace']}.svc",
    )


@dataclass(frozen=True)
class RunningPod:
    container_id: str
    run: PodRun
    started: float  # time.monotonic() just before `docker run`

    def inspect(self) -> dict[str, Any]:
        (found,) = json.loads(images.docker("inspect", self.container_id))
        return dict(found)

    def logs(self) -> str:
        done = subprocess.run(
            ["docker", "logs", self.container_id], capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr


@contextmanager
def running_pod(image: str, run: PodRun) -> Iterator[RunningPod]:
    """``docker run`` the pod; removed (by id) when the block ends."""
    started = time.monotonic()
    container_id = images.docker(
        "run", "-d", "--network", "host", "--label", f"{containers.LABEL}=chart-pod",
        *run.options, image, *run.args,
    )  # fmt: skip
    try:
        yield RunningPod(container_id, run, started)
    finally:
        images.docker("rm", "-f", container_id)


def rss_kib(pod: RunningPod) -> int:
    """Resident set size of the webhook process, from the host's /proc."""
    pid = pod.inspect()["State"]["Pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError("no VmRSS")


def render_chart(values: Mapping[str, Any], workdir: Path) -> list[Manifest]:
    """``helm template`` of the chart with ``values`` (helm from PATH, else .tools/bin)."""
    path = workdir / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values)))
    helm = shutil.which("helm") or str(ROOT / ".tools" / "bin" / "helm")
    out = subprocess.run(
        [helm, "template", "connaisseur", str(ROOT / "helm"), "--namespace", "connaisseur",
         "--values", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


class PodClient:
    """HTTPS to 127.0.0.1 trusting the chart's CA and checking the Service's name, as the API
    server does; a new connection per request."""

    def __init__(self, run: PodRun) -> None:
        self.run = run
        self.context = ssl.create_default_context(cadata=run.ca_pem)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        raw = socket.create_connection(("127.0.0.1", self.run.port), timeout=10)
        with self.context.wrap_socket(raw, server_hostname=self.run.server_name) as tls:
            conn = http.client.HTTPConnection("127.0.0.1", self.run.port, timeout=10)
            conn.sock = tls
            headers = {"Content-Type": "application/json"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()

    def wait_ready(self, pod: RunningPod, timeout: float = 60) -> float:
        """Seconds from ``docker run`` to the first 200 from /ready (the readiness probe)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/ready")[0] == 200:
                    return time.monotonic() - pod.started
            except OSError:
                pass
            if pod.inspect()["State"]["Status"] != "running":
                raise RuntimeError(f"the pod exited:\n{pod.logs()}")
            time.sleep(0.02)
        raise TimeoutError(f"not ready after {timeout} s:\n{pod.logs()}")
