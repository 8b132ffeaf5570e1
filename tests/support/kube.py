"""A real Kubernetes control plane on 127.0.0.1 for tests: etcd, kube-apiserver and, when asked,
kube-controller-manager, each on free ports, each process stopped when its block ends.

The API server has its own CA and serving certificate, a static admin token (group
``system:masters``), RBAC authorization and a service-account signing key, so ``kubectl create
token`` issues real service-account tokens that RBAC then restricts. No kubelet and no scheduler
run: Pods are stored and stay ``Pending``, which is all an admission webhook sees anyway.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.servers import free_port, running
from tests.support.tls import TlsFiles, make_tls, private_key_pem
from tests.support.tools import find_tool

#: What a machine needs for the cluster tests, in the words of the skip reason.
INSTALL_HINT = (
    "etcd (apt-get install etcd-server), kube-apiserver and kube-controller-manager v1.36 "
    "and kubectl (scripts/install_helm.py) on PATH or in .tools/bin"
)
SERVICE_CIDR = "10.96.0.0/16"  # a configuration value only: nothing routes to it
ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class KubeTools:
    etcd: Path
    apiserver: Path
    controller_manager: Path
    kubectl: Path


def kube_tools() -> KubeTools | str:
    """The binaries, or a one-line reason naming what is missing and what to install."""
    found = {
        name: find_tool(name)
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return f"{', '.join(missing)} not found; the cluster tests need {INSTALL_HINT}"
    paths = [p for p in found.values() if p is not None]
    return KubeTools(*paths)


class KubectlError(Exception):
    """kubectl exited non-zero; ``stderr`` is what it printed (what a user would read)."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)}: {stderr}")
        self.stderr = stderr


@dataclass(frozen=True)
class Cluster:
    """A running API server and how to talk to it as the admin."""

    url: str
    port: int
    ca_file: Path
    admin_token: str = ""
    kubeconfig: Path = Path()
    kubectl_bin: Path = Path()
    workdir: Path = Path()

    def kubectl(
        self, *args: str, stdin: str | None = None, token: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the admin (or with ``token``); raise :class:`KubectlError` on failure."""
        command = [str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig)]
        command += ["--cache-dir", str(self.workdir / "kubectl-cache")]
        if token is not None:
            command += ["--token", token]
        done = subprocess.run(
            [*command, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise KubectlError(args, done.stderr.strip())
        return done

    def apply(self, manifests: Sequence[dict[str, Any]], *extra: str) -> str:
        """``kubectl apply --server-side`` of ``manifests``; returns kubectl's output."""
        text = yaml.safe_dump_all(manifests)
        return self.kubectl("apply", "--server-side", "-f", "-", *extra, stdin=text).stdout

    def get(self, path: str) -> dict[str, Any]:
        """GET an API path as the admin (``/api/v1/namespaces/x/pods/y``), decoded."""
        body: dict[str, Any] = json.loads(self.get_raw(path))
        return body

    def get_raw(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.url + path,
            headers={"Authorization": f"Bearer {self.admin_token}", "Accept": "application/json"},
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            data: bytes = response.read()
        return data

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise
        return True

    def token(self, namespace: str, service_account: str) -> str:
        """A bound token of ``service_account`` (TokenRequest API, one hour)."""
        out = self.kubectl(
            "create", "token", service_account, "-n", namespace, "--duration", "1h"
        ).stdout
        return out.strip()


@dataclass(frozen=True)
class Pki:
    tls: TlsFiles  # the CA and the API server's serving certificate (127.0.0.1, localhost)
    sa_key: Path
    sa_pub: Path


def make_pki(directory: Path) -> Pki:
    tls = make_tls(directory / "tls")
    key = ec.generate_private_key(ec.SECP256R1())
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    sa_key.write_bytes(private_key_pem(key))
    sa_pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(tls, sa_key, sa_pub)


def _etcd_command(etcd: Path, data: Path, client: int, peer: int) -> list[str]:
    return [
        str(etcd),
        "--name=test",
        f"--data-dir={data}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=test=http://127.0.0.1:{peer}",
        "--log-level=warn",
        "--logger=zap",
    ]


def _apiserver_command(
    apiserver: Path, workdir: Path, pki: Pki, etcd_port: int, port: int, tokens: Path
) -> list[str]:
    return [
        str(apiserver),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'certs'}",
        f"--tls-cert-file={pki.tls.cert_file}",
        f"--tls-private-key-file={pki.tls.key_file}",
        f"--token-auth-file={tokens}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def write_kubeconfig(path: Path, url: str, ca_file: Path, token: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "test",
                        "cluster": {"server": url, "certificate-authority": str(ca_file)},
                    }
                ],
                "users": [{"name": "admin", "user": {"token": token}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                "current-context": "test",
            }
        )
    )
    path.chmod(0o600)


def wait_ready(cluster: Cluster, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Until ``/readyz`` answers 200 (RBAC bootstrap roles and every post-start hook done)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited with {proc.returncode}; see its log")
        try:
            cluster.get_raw("/readyz")
            return
        except OSError as e:
            last = str(e)
        time.sleep(0.25)
    raise TimeoutError(f"kube-apiserver not ready after {timeout}s: {last}")


@contextlib.contextmanager
def control_plane(workdir: Path, tools: KubeTools) -> Iterator[Cluster]:
    """etcd and kube-apiserver on free loopback ports until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")
    admin_token = secrets.token_hex(24)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{admin_token},admin,admin-uid,"system:masters"\n')
    tokens.chmod(0o600)
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    etcd = _etcd_command(tools.etcd, workdir / "etcd-data", etcd_port, peer_port)
    with running(etcd, etcd_port, workdir / "etcd.log"):
        url = f"https://127.0.0.1:{api_port}"
        kubeconfig = workdir / "kubeconfig"
        write_kubeconfig(kubeconfig, url, pki.tls.ca_file, admin_token)
        cluster = Cluster(
            url=url,
            port=api_port,
            ca_file=pki.tls.ca_file,
            admin_token=admin_token,
            kubeconfig=kubeconfig,
            kubectl_bin=tools.kubectl,
            workdir=workdir,
        )
        command = _apiserver_command(tools.apiserver, workdir, pki, etcd_port, api_port, tokens)
        with running(command, api_port, workdir / "kube-apiserver.log") as api_proc:
            wait_ready(cluster, api_proc)
            yield cluster


@contextlib.contextmanager
def controller_manager(
    cluster: Cluster, tools: KubeTools, controllers: Sequence[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """kube-controller-manager running ``controllers`` as the admin until the block ends.

    It does not elect a leader (it is the only one); its health port is a free loopback one.
    """
    port = free_port()
    command = [
        str(tools.controller_manager),
        f"--kubeconfig={cluster.kubeconfig}",
        f"--controllers={','.join(controllers)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cluster.workdir / 'kcm-certs'}",
        "--use-service-account-credentials=false",
        "--concurrent-deployment-syncs=2",
        "--concurrent-replicaset-syncs=2",
        "--concurrent-gc-syncs=2",
        "--v=1",
    ]
    with running(command, port, cluster.workdir / "kube-controller-manager.log") as proc:
        yield proc
