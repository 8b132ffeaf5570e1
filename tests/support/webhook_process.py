"""The ``connaisseur serve`` process for end-to-end tests: started on a free port with a test
CA, and a client that speaks HTTPS to it."""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.servers import free_port, running
from tests.support.tls import TlsFiles, make_tls

ROOT = Path(__file__).resolve().parents[2]
STATIC_CONFIG = {
    "validators": [
        {"name": "allow", "type": "static", "approve": True},
        {"name": "deny", "type": "static", "approve": False},
    ],
    "policy": [
        {"pattern": "*:*", "validator": "deny"},
        {"pattern": "my.reg/allowed", "validator": "allow"},
        {"pattern": "registry.k8s.io/*:*", "validator": "allow"},
    ],
}


def command_line(*args: str) -> list[str]:
    """``python -m connaisseur.entrypoints.cli ARGS`` as an argument list."""
    return [sys.executable, "-m", "connaisseur.entrypoints.cli", *args]


@dataclass
class Webhook:
    """A running webhook and a client for it (a new HTTPS connection per request)."""

    port: int
    tls: TlsFiles
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls.ca_file))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = "application/json",
    ) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context(), timeout=30
        )
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def review(self, document: Any, path: str = "/mutate") -> dict[str, Any]:
        status, body, _ = self.request("POST", path, json.dumps(document).encode())
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer


@contextlib.contextmanager
def serve_webhook(
    workdir: Path, config: Path, *options: str, env: dict[str, str] | None = None
) -> Iterator[Webhook]:
    """``connaisseur serve --config config *options`` on a free port with a throw-away
    certificate; its log is ``workdir/webhook.log``. Listening means started: the validators
    are built before the site opens."""
    tls = make_tls(workdir / "tls")
    port = free_port()
    command = command_line(
        "serve",
        "--config",
        str(config),
        *options,
        "--listen",
        f"127.0.0.1:{port}",
        "--tls-cert",
        str(tls.cert_file),
        "--tls-key",
        str(tls.key_file),
    )
    log = workdir / "webhook.log"
    with running(command, port, log, env={"PYTHONPATH": str(ROOT), **(env or {})}) as proc:
        yield Webhook(port, tls, log, proc)
