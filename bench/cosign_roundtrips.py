"""Round trips and latency of a cold cosign verification against a real local registry.

Setup: Debian's docker-registry on 127.0.0.1 (plain HTTP, free port); in front of it an
aiohttp proxy over HTTPS (test CA = the validator's ``cert``) that adds a fixed latency to every
request and demands a Bearer token (served by the proxy's ``/token``). A signed image with three
signature layers (three distinct payload blobs) is pushed through the distribution API.

Measured: a cold verification (new client: empty token cache), then a warm one (token cached).
Sequential round trips are counted by grouping requests whose start times fall within half the
injected latency of each other (concurrent requests form one round trip).

Run from the repository root:  /work/main/.venv/bin/python -m bench.cosign_roundtrips
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.deadline import Deadline
from connaisseur.application.validators import Validator
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.oci_push import Pusher
from tests.support.registry_proxy import RegistryProxy
from tests.support.servers import registry_server, serving
from tests.support.settings import validator_settings
from tests.support.tls import make_tls, server_context

# (seconds, registry requests, token requests, sequential round trips) of one verification
Sample = tuple[float, int, int, int]


@dataclass
class TimedProxy(RegistryProxy):
    """Records the start time of every request: all of them in ``starts``, and those to the
    token service and to the registry apart (round trips after auth are counted from those)."""

    starts: list[float] = field(default_factory=list)
    token_starts: list[float] = field(default_factory=list)
    registry_starts: list[float] = field(default_factory=list)

    def reset(self) -> None:
        super().reset()
        for times in (self.starts, self.token_starts, self.registry_starts):
            times.clear()

    async def _token(self, request: web.Request) -> web.Response:
        now = time.perf_counter()
        self.starts.append(now)
        self.token_starts.append(now)
        return await super()._token(request)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        now = time.perf_counter()
        self.starts.append(now)
        self.registry_starts.append(now)
        return await super()._forward(request)


S = TypeVar("S")  # what a benchmark samples from one verification


class Proxied(NamedTuple):
    proxy: TimedProxy
    host: str  # the proxy's host:port, as image references name it
    ca_pem: str  # the proxy's test CA: the validator's ``cert``
    session: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def behind_timed_proxy(
    work: Path, upstream: str, latency: float, *, bearer: bool = True
) -> AsyncIterator[Proxied]:
    """The registry at ``upstream`` behind a :class:`TimedProxy` served over HTTPS (a test CA
    made in ``work``), and a client session for the benchmark."""
    tls = make_tls(work / "tls")
    proxy = TimedProxy(upstream, latency_seconds=latency, bearer=bearer)
    async with (
        serving(proxy.app(), server_context(tls.cert_file, tls.key_file)) as url,
        aiohttp.ClientSession() as session,
    ):
        yield Proxied(proxy, url.removeprefix("https://"), tls.ca_pem, session)


class Check(NamedTuple):
    """One verification a round-trip benchmark repeats."""

    session: aiohttp.ClientSession
    clock: FakeClock
    image: ImageReference
    options: RuleOptions
    digest: str


async def cold_and_warm(
    runs: int,
    proxy: TimedProxy,
    new_validator: Callable[[AiohttpRegistryClient], Validator],
    check: Check,
    sample: Callable[[float], S],
) -> tuple[list[S], list[S]]:
    """``runs`` times: a validator with a new client (empty token cache) verifies
    ``check.image`` cold, then warm; each verification is timed alone (the proxy's records
    cleared before it), must pin ``check.digest`` and is sampled after it."""
    cold: list[S] = []
    warm: list[S] = []
    for _ in range(runs):
        validator = new_validator(AiohttpRegistryClient(HttpClient(check.session), check.clock))
        for bucket in (cold, warm):
            proxy.reset()
            t0 = time.perf_counter()
            deadline = Deadline.after(check.clock, 10)
            result = await validator.validate(check.image, check.options, deadline)
            elapsed = time.perf_counter() - t0
            assert result.digest == check.digest, result
            bucket.append(sample(elapsed))
    return cold, warm


def round_trips(starts: list[float], latency: float) -> int:
    groups, last = 0, None
    for t in sorted(starts):
        if last is None or t - last > latency / 2:
            groups += 1
            last = t
    return groups


async def main(latency: float, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with registry_server(work / "registry") as registry:
            await bench(registry.url, registry.host, registry.backend, work, latency, runs)


async def bench(
    upstream: str, upstream_host: str, backend: str, work: Path, latency: float, runs: int
) -> None:
    signers = [Signer(ec.generate_private_key(ec.SECP256R1())) for _ in range(3)]
    async with behind_timed_proxy(work, upstream, latency) as (proxy, host, ca_pem, session):
        pusher = Pusher(session, upstream)
        manifest, blobs = image_manifest("bench")
        digest = await pusher.image("bench/app", "1.0", manifest, blobs)
        layers: list[tuple[bytes, bytes, dict[str, str]]] = []
        for i, s in enumerate(signers):
            body = payload(digest, f"{host}/bench/app") + b" " * i  # distinct blobs
            layers.append((body, s.sign(body), {}))
        await pusher.signatures("bench/app", digest, sign_layout(layers))
        roots = [{"name": f"k{i}", "key": s.public_pem} for i, s in enumerate(signers)]
        settings = validator_settings(
            {"name": "bench", "type": "cosign", "cert": ca_pem, "trustRoots": roots}
        )
        clock = FakeClock()
        options = RuleOptions(trust_root="*", verify_in_transparency_log=False)
        image = ImageReference.parse(f"{host}/bench/app:1.0")
        no_rekor = unreachable_transparency_log(
            "no Rekor in this benchmark (verifyInTransparencyLog: false)"
        )
        cold, warm = await cold_and_warm(
            runs,
            proxy,
            lambda client: CosignValidator(settings, client, no_rekor, clock),
            Check(session, clock, image, options, digest),
            lambda seconds: (
                seconds,
                len(proxy.requests),
                len(proxy.token_requests),
                round_trips(proxy.starts, latency),
            ),
        )
    report(cold, warm, latency, backend)


def report(
    cold: list[Sample],
    warm: list[Sample],
    latency: float,
    backend: str,
) -> None:
    argv = " ".join(sys.argv[1:])
    print(f"command: {Path(sys.executable).name} -m bench.cosign_roundtrips {argv}".rstrip())
    print(f"registry: {backend} behind an HTTPS latency proxy (+{latency * 1000:.0f} ms/request)")
    print("image: 1 manifest, signature manifest with 3 layers (3 distinct blobs), trustRoot '*'")
    for name, rows in (("cold (no token)", cold), ("warm (token cached)", warm)):
        times = sorted(r[0] for r in rows)
        median = times[len(times) // 2]
        _, reqs, tokens, trips = rows[-1]
        print(
            f"{name:20s} median {median * 1000:7.1f} ms over {len(rows)} runs; "
            f"registry requests {reqs}, token requests {tokens}, sequential round trips {trips}"
        )


def latency_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options every round-trip benchmark takes: injected latency and runs."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    return parser


if __name__ == "__main__":
    args = latency_arguments(__doc__).parse_args()
    asyncio.run(main(args.latency_ms / 1000, args.runs))
