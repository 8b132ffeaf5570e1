"""Notary v1 round trips: cold and warm verifications against the real local Notary stack.

A TCP proxy in front of notary-server delays every client→server chunk by ``--latency-ms``
(default 20 ms), so each request (and each TLS handshake flight) pays that latency. The
benchmark counts HTTP requests and *sequential* round trips (the longest chain of requests
each starting after the previous one ended) and the wall time per verification.

    .venv/bin/python -m bench.notary_roundtrips [--latency-ms 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp

from connaisseur.adapters.clock import SystemClock
from connaisseur.adapters.http import HttpClient, HttpResponse
from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.notaryv1 import NotaryV1Validator
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.notary_sim import digest_of
from tests.support.notary_stack import NotaryCli, NotaryStack, notary_stack
from tests.support.servers import free_port
from tests.support.settings import validator_settings


class TimedHttpClient(HttpClient):
    """Records (start, end) of every request."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        super().__init__(session)
        self.spans: list[tuple[float, float]] = []

    async def request(
        self, method: str, url: str, deadline: Deadline, **kw: object
    ) -> HttpResponse:
        start = time.perf_counter()
        try:
            return await super().request(method, url, deadline, **kw)  # type: ignore[arg-type]
        finally:
            self.spans.append((start, time.perf_counter()))


def sequential_rounds(spans: list[tuple[float, float]]) -> int:
    """Longest chain of requests in which each starts after the previous one ended."""
    ordered = sorted(spans)
    depth: list[int] = []
    for i, (start, _) in enumerate(ordered):
        before = [depth[j] for j in range(i) if ordered[j][1] <= start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


@contextlib.asynccontextmanager
async def latency_proxy(target_port: int, delay: float) -> AsyncIterator[int]:
    """127.0.0.1:PORT → 127.0.0.1:target_port, delaying client→server data by ``delay``."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lag: float) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                if lag:
                    await asyncio.sleep(lag)
                writer.write(chunk)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        # Connections still open when the benchmark ends are cancelled: that is expected.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(client_r, server_w, delay), pipe(server_r, client_w, 0.0))

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        yield port


async def verify(
    validator: NotaryV1Validator, image: str, delegations: tuple[str, ...] = ()
) -> None:
    options = RuleOptions(trust_root="default", delegations=delegations)
    deadline = Deadline.after(SystemClock(), 30.0)
    await validator.validate(ImageReference.parse(image), options, deadline)


async def measure(
    stack: NotaryStack,
    proxy_port: int,
    pem: str,
    image: str,
    delegations: tuple[str, ...],
    runs: int,
) -> Mapping[str, tuple[int, int, float]]:
    settings = validator_settings(
        {
            "name": "bench",
            "type": "notaryv1",
            "host": f"https://127.0.0.1:{proxy_port}",
            "cert": stack.ca_pem,
            "trustRoots": [{"name": "default", "key": pem}],
        }
    )
    results: dict[str, list[tuple[int, int, float]]] = {"cold": [], "warm": []}
    for _ in range(runs):
        async with aiohttp.ClientSession() as session:
            http = TimedHttpClient(session)
            validator = NotaryV1Validator(settings, NotaryV1HttpClient(http), SystemClock())
            for kind in ("cold", "warm"):
                http.spans.clear()
                start = time.perf_counter()
                await verify(validator, image, delegations)
                elapsed = (time.perf_counter() - start) * 1000
                results[kind].append((len(http.spans), sequential_rounds(http.spans), elapsed))
    return {
        kind: (rows[0][0], rows[0][1], statistics.median(r[2] for r in rows))
        for kind, rows in results.items()
    }


async def run(latency_ms: float, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-notary-") as tmp, notary_stack(Path(tmp)) as ns:
        cli = NotaryCli(ns, Path(tmp) / "trust")
        plain, delegated = "127.0.0.1:5000/bench/plain", "127.0.0.1:5000/bench/delegated"
        cli.init(plain)
        cli.addhash(plain, "v1", digest_of("bench"))
        cli.init(delegated)
        for role in ("targets/releases", "targets/qa"):
            cli.add_delegation(delegated, role, Path(tmp) / "keys")
            cli.addhash(delegated, "v1", digest_of("bench"), role)
        pem = cli.root_public_pem(plain)
        target = int(ns.url.rsplit(":", 1)[1])
        async with latency_proxy(target, latency_ms / 1000) as port:
            print(f"Notary backend: {ns.backend}; injected latency {latency_ms:g} ms per request")
            print(f"{'scenario':44} {'kind':5} {'requests':>8} {'seq. RTs':>8} {'median ms':>10}")
            cases = [
                ("targets only", f"{plain}:v1", ()),
                ("targets/releases (default rule)", f"{delegated}:v1", ()),
                ("with.delegations [releases, qa]", f"{delegated}:v1", ("releases", "qa")),
            ]
            for title, image, dels in cases:
                figures = await measure(ns, port, pem, image, dels, runs)
                for kind, (requests, rounds, ms) in figures.items():
                    print(f"{title:44} {kind:5} {requests:8d} {rounds:8d} {ms:10.1f}")
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.latency_ms, args.runs))


if __name__ == "__main__":
    main()
