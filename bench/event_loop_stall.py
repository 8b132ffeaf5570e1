"""Benchmark: does one maximal request stall the webhook for everybody else?

Starts ``connaisseur serve`` (``bench/static-config.yaml``: static rules only, so the figures
are CPU, not network) over TLS on 127.0.0.1. A prober sends a small AdmissionReview (one Pod,
one allowed image) every 10 ms, one at a time, while the largest requests the webhook accepts
(a body just under 3 MiB) are sent one after another:

- ``distinct``: CREATE of a Pod with as many containers as fit, every image a different
  (statically allowed) string;
- ``same``: CREATE of a Pod with as many containers as fit, all of one image;
- ``update``: UPDATE of such a Pod (old and new object each half the body), images unchanged.

Reports, per variant: the answer (allowed or the denial's category), how long the maximal
request took, and the prober's latency while it ran — the median, the maximum and how many
probes waited more than 100 ms — next to the prober's latency on an idle server.

    .venv/bin/python -m bench.event_loop_stall [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from connaisseur.entrypoints.tls import throwaway_certificate

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MAX_BODY = 3 * 1024 * 1024
PROBE_INTERVAL = 0.01


def review(uid: str, operation: str, obj: dict[str, Any], old: Any = None) -> dict[str, Any]:
    request = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "bench",
        "operation": operation,
        "object": obj,
        "oldObject": old,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def pod(images: list[str]) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": containers},
    }


def fill(budget: int, image_of: Any) -> list[str]:
    """As many images as make a Pod of at most ``budget`` bytes."""
    per = len(json.dumps({"name": "c99999", "image": image_of(99999)})) + 2
    count = budget // per
    while len(json.dumps(pod([image_of(i) for i in range(count)]))) > budget:
        count -= count // 50 + 1
    return [image_of(i) for i in range(count)]


def bodies() -> dict[str, tuple[bytes, int]]:
    """Variant → (body, containers per object), each body just under the 3 MiB limit."""
    room = MAX_BODY - 4096

    def distinct(i: int) -> str:
        return f"registry.example.com/shop/i{i}:1"

    def same(i: int) -> str:
        return "registry.example.com/shop/web:1.4.2"

    out: dict[str, tuple[bytes, int]] = {}
    images = fill(room, distinct)
    out["distinct"] = (
        json.dumps(review("max-distinct", "CREATE", pod(images))).encode(),
        len(images),
    )
    images = fill(room, same)
    out["same"] = (json.dumps(review("max-same", "CREATE", pod(images))).encode(), len(images))
    images = fill(room // 2, distinct)
    doc = review("max-update", "UPDATE", pod(images), pod(images))
    out["update"] = (json.dumps(doc).encode(), len(images))
    for name, (body, _) in out.items():
        assert len(body) <= MAX_BODY, name
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def webhook(workdir: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    cert, key = throwaway_certificate(workdir)
    port = free_port()
    log = (workdir / "webhook.log").open("w")
    command = [
        sys.executable, "-m", "connaisseur.entrypoints.cli", "serve",
        "--config", str(ROOT / "bench" / "static-config.yaml"),
        "--listen", f"{HOST}:{port}", "--tls-cert", str(cert), "--tls-key", str(key),
    ]  # fmt: skip
    env = {**os.environ, "LOG_LEVEL": "error"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"webhook did not start, see {workdir / 'webhook.log'}")
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cert))
        yield port, context
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def probe(
    session: aiohttp.ClientSession, url: str, body: bytes, stop: asyncio.Event
) -> list[float]:
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
            await r.read()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL)
    return latencies


async def measure(port: int, context: ssl.SSLContext, repeat: int) -> None:
    url = f"https://{HOST}:{port}/mutate?timeout=10s"
    small = json.dumps(
        review("probe", "CREATE", pod(["registry.example.com/shop/web:1.4.2"]))
    ).encode()
    variants = bodies()
    connector = aiohttp.TCPConnector(ssl=context, limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        idle = await _probing(session, url, small, asyncio.sleep(1.0))
        print(f"idle prober: median {_ms(statistics.median(idle))} ms, max {_ms(max(idle))} ms")
        columns: tuple[str, ...] = ("variant", "containers", "answer", "request s")
        columns += ("prober median ms", "prober max ms", "probes > 100 ms")
        print("| " + " | ".join(columns) + " |")
        print("|---" * len(columns) + "|")
        for name, (body, containers) in variants.items():
            for _ in range(repeat):
                outcome: dict[str, Any] = {}
                latencies = await _probing(session, url, small, _big(session, url, body, outcome))
                slow = sum(1 for x in latencies if x > 0.1)
                cells: tuple[object, ...] = (name, containers, outcome["answer"])
                cells += (f"{outcome['seconds']:.2f}", _ms(statistics.median(latencies)))
                cells += (_ms(max(latencies)),)
                cells += (f"{slow}/{len(latencies)}",)
                print("| " + " | ".join(map(str, cells)) + " |")


async def _probing(
    session: aiohttp.ClientSession, url: str, small: bytes, work: Any
) -> list[float]:
    stop = asyncio.Event()
    prober = asyncio.ensure_future(probe(session, url, small, stop))
    await asyncio.sleep(0.1)  # the prober is running
    await work
    stop.set()
    return await prober


async def _big(
    session: aiohttp.ClientSession, url: str, body: bytes, outcome: dict[str, Any]
) -> None:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        text = await r.text()
    outcome["seconds"] = time.perf_counter() - started
    if r.status != 200:
        outcome["answer"] = f"HTTP {r.status}"
        return
    answer = json.loads(text)["response"]
    outcome["answer"] = (
        "allowed" if answer["allowed"] else f"denied ({answer['status'].get('reason')})"
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="maximal requests per variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, webhook(Path(tmp)) as (port, context):
        asyncio.run(measure(port, context, args.repeat))


if __name__ == "__main__":
    main()
