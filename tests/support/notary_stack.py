"""The real Notary v1 stack for integration tests, the demo and the benchmark.

``notary_stack()`` starts ``notary-signer`` and ``notary-server`` (memory storage, TLS from a
throw-away CA) on free loopback ports — Debian's binaries, or containers with the same command
line (``backend``, see tests/support/containers.py). ``NotaryCli``
drives the real ``notary`` client to create trust data (init, addhash, publish, delegations,
key rotation).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import containers
from tests.support.containers import Backend
from tests.support.processes import free_port
from tests.support.tls import certificate, certificate_pem, make_tls, private_key_pem

PASSPHRASES = {
    "NOTARY_ROOT_PASSPHRASE": "root-pass",
    "NOTARY_TARGETS_PASSPHRASE": "targets-pass",
    "NOTARY_SNAPSHOT_PASSPHRASE": "snapshot-pass",
    "NOTARY_DELEGATION_PASSPHRASE": "delegation-pass",
}


@dataclass(frozen=True)
class NotaryStack:
    """A running Notary server (and its signer)."""

    url: str
    ca_pem: str
    ca_file: Path
    backend: str

    @property
    def host(self) -> str:
        return self.url.removeprefix("https://")


def _write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


@contextlib.contextmanager
def notary_stack(workdir: Path, backend: Backend | None = None) -> Iterator[NotaryStack]:
    """Start signer + server on free loopback ports; stop both when the block ends."""
    services = [containers.NOTARY_SIGNER, containers.NOTARY_SERVER]
    ran = containers.resolve(backend, services)
    workdir.mkdir(parents=True, exist_ok=True)
    tls = make_tls(workdir / "tls")
    grpc_port, http_port = free_port(), free_port()
    signer = _write_json(
        workdir / "signer.json",
        {
            "server": {
                "grpc_addr": f"127.0.0.1:{grpc_port}",
                "tls_cert_file": str(tls.cert_file),
                "tls_key_file": str(tls.key_file),
            },
            "logging": {"level": "warning"},
            "storage": {"backend": "memory", "default_alias": "test"},
        },
    )
    server = _write_json(
        workdir / "server.json",
        {
            "server": {
                "http_addr": f"127.0.0.1:{http_port}",
                "tls_cert_file": str(tls.cert_file),
                "tls_key_file": str(tls.key_file),
            },
            "trust_service": {
                "type": "remote",
                "hostname": "127.0.0.1",
                "port": str(grpc_port),
                "key_algorithm": "ecdsa",
                "tls_ca_file": str(tls.ca_file),
            },
            "logging": {"level": "warning"},
            "storage": {"backend": "memory"},
        },
    )
    env = {"NOTARY_SIGNER_TEST": "signer-pass"}
    with (
        containers.run_service(
            ran, services[0], ["-config", str(signer)], grpc_port, workdir / "signer.log",
            [workdir], env,
        ),
        containers.run_service(
            ran, services[1], ["-config", str(server)], http_port, workdir / "server.log",
            [workdir],
        ),
    ):  # fmt: skip
        yield NotaryStack(
            url=f"https://127.0.0.1:{http_port}",
            ca_pem=tls.ca_pem,
            ca_file=tls.ca_file,
            backend=" + ".join(containers.describe(ran, s) for s in services),
        )


def make_delegation_key(directory: Path, name: str) -> tuple[Path, Path]:
    """An ECDSA key and self-signed certificate for ``notary delegation add``/``key import``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = certificate(
        name, key, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30)
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(certificate_pem(cert))
    key_file.write_bytes(private_key_pem(key))
    return cert_file, key_file


class NotaryCli:
    """The real ``notary`` client against a stack, with its own trust directory."""

    def __init__(self, stack: NotaryStack, trust_dir: Path) -> None:
        self.stack = stack
        self.trust_dir = trust_dir

    def run(self, *args: str, stdin: str | None = None) -> str:
        cmd = ["notary", "-d", str(self.trust_dir), "-s", self.stack.url]
        cmd += ["--tlscacert", str(self.stack.ca_file), *args]
        done = subprocess.run(
            cmd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **PASSPHRASES},
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def init(self, gun: str) -> None:
        self.run("init", gun, "-p")

    def addhash(self, gun: str, tag: str, digest: str, *roles: str, publish: bool = True) -> None:
        args = ["addhash", gun, tag, "1000", "--sha256", digest.removeprefix("sha256:")]
        for role in roles:
            args += ["--roles", role]
        self.run(*args, *(["-p"] if publish else []))

    def remove(self, gun: str, tag: str) -> None:
        self.run("remove", gun, tag, "-p")

    def add_delegation(self, gun: str, role: str, workdir: Path, paths: str = "") -> None:
        cert, key = make_delegation_key(workdir, role.replace("/", "-"))
        path_args = ["--paths", paths] if paths else ["--all-paths"]
        self.run("delegation", "add", gun, role, str(cert), *path_args, "-p")
        self.run("key", "import", str(key), "--role", role, "--gun", gun)

    def rotate(self, gun: str, role: str) -> None:
        self.run("key", "rotate", gun, role, *(["-r"] if role == "snapshot" else []), stdin="yes\n")

    def publish(self, gun: str) -> None:
        self.run("publish", gun)

    def root_public_pem(self, gun: str) -> str:
        """The current root key of ``gun`` as a PEM public key (what a validator pins)."""
        context = ssl.create_default_context(cadata=self.stack.ca_pem)
        url = f"{self.stack.url}/v2/{gun}/_trust/tuf/root.json"
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            signed = json.loads(resp.read())["signed"]
        key = signed["keys"][signed["roles"]["root"]["keyids"][0]]
        cert = x509.load_pem_x509_certificate(base64.b64decode(key["keyval"]["public"]))
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        return cert.public_key().public_bytes(serialization.Encoding.PEM, spki).decode()
