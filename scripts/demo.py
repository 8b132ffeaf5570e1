"""Quick start without a cluster: sign an image with Docker Content Trust and watch the webhook.

Starts a local registry and Notary stack (like the test fixtures), pushes a small demo image,
signs its ``v1`` tag with the real ``notary`` client, starts the webhook pinned to the demo
root key, then sends two AdmissionReviews: the signed image (admitted, pinned to its digest)
and an unsigned tag (denied, with the reason). Everything it starts is stopped at the end.
Only 127.0.0.1 is contacted. It asks nothing and exits non-zero when an answer is not the one it
promises (tests/e2e/test_demo.py runs both variants).

With ``--containers`` the registry, the Notary server and signer and the webhook all run in
containers: the servers from the locally built images, the webhook from the product image, run
the way the Helm chart runs it (read-only root, UID 10001, no capabilities, its configuration and
certificate mounted read-only from the rendered chart). It needs a Docker engine and the images;
``make demo-containers`` brings both (scripts/with-docker.sh).

    make demo             (or: .venv/bin/python scripts/demo.py)
    make demo-containers  (or: bash scripts/with-docker.sh .venv/bin/python scripts/demo.py \
                               --containers)
"""

# ruff: noqa: S310, S603  -- every URL and command here is built by this script for 127.0.0.1.
from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hashlib
import io
import json
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from tests.support import chart_pod, images
from tests.support.containers import Backend
from tests.support.notary_stack import NotaryCli, notary_stack
from tests.support.servers import free_port, registry_server, wait_for_port
from tests.support.tls import make_tls

REPO = "demo/hello"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def _request(url: str, method: str = "GET", data: bytes | None = None, **headers: str) -> Any:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    return urllib.request.urlopen(req, timeout=10)  # only 127.0.0.1


def push_blob(registry: str, blob: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with _request(f"{registry}/v2/{REPO}/blobs/uploads/", "POST") as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = registry + location
    sep = "&" if "?" in location else "?"
    headers = {"Content-Type": "application/octet-stream"}
    _request(f"{location}{sep}digest={digest}", "PUT", blob, **headers).close()
    return digest


def push_image(registry: str, tag: str) -> str:
    """A one-layer OCI image (a text file); returns the manifest digest."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        content = b"hello from the connaisseur notary demo\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    layer = gzip.compress(layer_tar.getvalue(), mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "config": {"Cmd": ["/bin/cat", "/hello.txt"]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": push_blob(registry, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": push_blob(registry, layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    _request(
        f"{registry}/v2/{REPO}/manifests/{tag}",
        "PUT",
        manifest,
        **{"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    ).close()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def write_config(path: Path, registry_host: str, notary_url: str, ca: str, root_pem: str) -> None:
    def block(text: str, indent: int) -> str:
        return "|\n" + "".join(" " * indent + line + "\n" for line in text.strip().splitlines())

    path.write_text(
        f"""validators:
  - name: deny
    type: static
    approve: false
  - name: demo-notary
    type: notaryv1
    host: {notary_url}
    cert: {block(ca, 6)}    trustRoots:
      - name: default
        key: {block(root_pem, 10)}policy:
  - pattern: "*:*"
    validator: deny
  - pattern: "{registry_host}/demo/*:*"
    validator: demo-notary
"""
    )


@contextlib.contextmanager
def webhook(config: Path, workdir: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    tls = make_tls(workdir / "webhook-tls")
    port = free_port()
    cmd = [sys.executable, "-m", "connaisseur.entrypoints.cli", "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{port}"]
    cmd += ["--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file)]
    print("$ " + " ".join(cmd[1:]))
    log = (workdir / "webhook.log").open("wb")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    try:
        wait_for_port(port, proc)
        yield f"https://127.0.0.1:{port}", ssl.create_default_context(cadata=tls.ca_pem)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@contextlib.contextmanager
def webhook_container(config: Path, workdir: Path) -> Iterator[chart_pod.PodClient]:
    """The product image as the chart runs it, with ``config`` as the chart's application."""
    values = {"application": yaml.safe_load(config.read_text())}
    values["application"]["features"] = {
        "automaticChildApproval": False,
        "cache": {"expirySeconds": 0},
    }
    manifests = chart_pod.render_chart(values, workdir)
    run = chart_pod.pod_run(manifests, workdir / "volumes", free_port(), {})
    image = images.PRODUCT.name()
    print(f"$ docker run --network host {' '.join(run.options)} {image} {' '.join(run.args)}")
    with chart_pod.running_pod(image, run) as pod:
        client = chart_pod.PodClient(run)
        print(f"ready after {client.wait_ready(pod):.2f} s")
        yield client


def review_body(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "demo-" + hashlib.sha256(image.encode()).hexdigest()[:8],
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "default",
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "hello", "namespace": "default"},
                "spec": {"containers": [{"name": "hello", "image": image}]},
            },
        },
    }


def review(url: str, context: ssl.SSLContext, image: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{url}/mutate?timeout=10s",
        data=json.dumps(review_body(image)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, context=context, timeout=15) as resp:
        response: dict[str, Any] = json.loads(resp.read())["response"]
    return response


def show(response: dict[str, Any]) -> None:
    print(f"allowed: {response['allowed']}")
    if "patch" in response:
        patch = json.loads(base64.b64decode(response["patch"]))
        print("patch:   " + json.dumps(patch))
    if response.get("status", {}).get("message"):
        print("reason:  " + response["status"]["message"])


def pinned_digest(response: dict[str, Any]) -> str | None:
    """The digest the JSON patch pins the Pod's one image to (None: no patch)."""
    if "patch" not in response:
        return None
    [operation] = json.loads(base64.b64decode(response["patch"]))
    value: str = operation["value"]
    return value.rpartition("@")[2] or None


def as_expected(response: dict[str, Any], digest: str | None) -> bool:
    """Admitted and pinned to ``digest``, or denied with a reason when ``digest`` is None."""
    if digest is None:
        ok = response["allowed"] is False and bool(response.get("status", {}).get("message"))
        print(f"expected: denied -> {'ok' if ok else 'UNEXPECTED'}")
    else:
        ok = response["allowed"] is True and pinned_digest(response) == digest
        print(f"expected: admitted, pinned to {digest} -> {'ok' if ok else 'UNEXPECTED'}")
    return ok


def send_reviews(send: Callable[[str], dict[str, Any]], cases: dict[str, str | None]) -> bool:
    """One AdmissionReview per image; ``cases`` maps it to the digest it must be pinned to (None:
    it must be denied). True when every answer is the expected one."""
    ok = True
    for image, digest in cases.items():
        say(f"AdmissionReview for {image}")
        response = send(image)
        show(response)
        ok = as_expected(response, digest) and ok
    return ok


def review_container(client: chart_pod.PodClient, image: str) -> dict[str, Any]:
    status, body = client.request(
        "POST", "/mutate?timeout=10s", json.dumps(review_body(image)).encode()
    )
    if status != 200:
        raise RuntimeError(f"webhook answered {status}: {body[:200]!r}")
    response: dict[str, Any] = json.loads(body)["response"]
    return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", action="store_true", help="everything in containers")
    in_containers = parser.parse_args(argv).containers
    backend: Backend = "containers" if in_containers else "auto"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="connaisseur-demo-") as tmp:
        work = Path(tmp)
        say("Starting a local registry and a Notary server + signer")
        with (
            registry_server(work / "registry", backend=backend) as registry,
            notary_stack(work / "notary", backend) as ns,
        ):
            print(f"registry: {registry.url} ({registry.backend})")
            print(f"notary:   {ns.url} ({ns.backend})")
            say("Pushing the demo image (tags v1 and unsigned)")
            digest = push_image(registry.url, "v1")
            push_image(registry.url, "unsigned")
            print(f"{registry.host}/{REPO}:v1 -> {digest}")
            say("Signing v1 with the real notary client (init, addhash, publish)")
            gun = f"{registry.host}/{REPO}"
            cli = NotaryCli(ns, work / "trust")
            cli.init(gun)
            cli.addhash(gun, "v1", digest)
            print(cli.run("list", gun))
            root_pem = cli.root_public_pem(gun)
            config = work / "config.yaml"
            write_config(config, registry.host, ns.url, ns.ca_pem, root_pem)
            cases = {f"{gun}:v1": digest, f"{gun}:unsigned": None}
            if in_containers:
                say("Starting the product image the way the chart runs it, pinned to the root key")
                with webhook_container(config, work) as client:
                    ok = send_reviews(lambda image: review_container(client, image), cases)
            else:
                say("Starting the webhook pinned to the demo root key")
                with webhook(config, work) as (url, context):
                    ok = send_reviews(lambda image: review(url, context, image), cases)
        say(f"Stopped everything ({time.monotonic() - started:.1f}s)")
    if not ok:
        print("demo: an answer was not the expected one (see UNEXPECTED above)", file=sys.stderr)
        return 1
    print("demo: every answer as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
