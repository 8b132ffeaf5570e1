"""Round trips and latency of a verification read direct and through registry mirrors
(docs/decisions/0050-registry-mirrors.md): a mirror whose first endpoint answers must cost what
reading the source costs; a first endpoint that fails transiently costs its one failed answer,
once — afterwards it rests and the next endpoint is asked first.

Setup (all on 127.0.0.1): Debian's docker-registry holds the content (plain HTTP); a second
docker-registry is a pull-through cache of it (``proxy.remoteurl``). HTTPS latency proxies
(``bench/cosign_roundtrips.TimedProxy``: the same fixed latency per request and a Bearer token
challenge): ``source`` in front of the origin, by whose name the images are known; ``replica``,
a second one in front of the origin (a mirror serving the same store: what the mirror layer
alone costs); ``cache`` in front of the pull-through cache. A fourth HTTPS server, ``broken``,
answers every request with 503 after the same latency (a mirror down for maintenance). A
cosign-signed image (key) and a Notation-signed one (referrers tag schema) are pushed to the
origin; the pull-through cache is filled by one verification before measuring.

Each verification runs through the composed application (loader, container, VerifyImage), the
configuration differing only in ``mirrors``:

  direct          no mirrors: the source is read;
  replica         endpoints [replica], fallbackToSource: false;
  pull-through    endpoints [cache], fallbackToSource: false;
  broken first    endpoints [broken, replica], fallbackToSource: false.

Measured per validator and mode: a cold verification (a new container: no token, no resting
mirror), then a warm one (same container: token cached; in ``broken first`` the broken endpoint
is resting). Sequential round trips are counted over every server's request start times, grouped
as in ``bench.cosign_roundtrips`` (concurrent requests form one round trip). Times are medians
over ``--runs`` runs; ratios are against ``direct`` of the same run.

Run from the repository root:  .venv/bin/python -m bench.mirror_roundtrips
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from bench.cosign_roundtrips import TimedProxy, latency_arguments, round_trips
from connaisseur.adapters.clock import FixedClock
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import build_settings
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.notation_oci import JWS, Subject, push_signatures, signature_artifact
from tests.support.notation_signing import REAL_NOW, issue, make_ca, sign_jws, target
from tests.support.oci_push import Pusher
from tests.support.servers import registry_server, serving
from tests.support.tls import make_tls, server_context

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MODES = ("direct", "replica", "pull-through", "broken first")
#: mode → the endpoints of its mirror, in order
ENDPOINTS = {
    "direct": (),
    "replica": ("replica",),
    "pull-through": ("cache",),
    "broken first": ("broken", "replica"),
}
VALIDATORS = ("cosign", "notation")


class BrokenMirror(TimedProxy):
    """Answers every request with 503 (transient) after the injected latency."""

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.starts.append(time.perf_counter())
        await asyncio.sleep(self.latency_seconds)
        return web.Response(status=503, text="down for maintenance")


@dataclass(frozen=True)
class Sample:
    seconds: float
    requests: dict[str, int]  # server → requests it received
    trips: int


@dataclass
class Servers:
    """The HTTPS servers a verification may reach, by name (source, replica, cache, broken)."""

    proxies: dict[str, TimedProxy]
    hosts: dict[str, str] = field(default_factory=dict)

    def reset(self) -> None:
        for proxy in self.proxies.values():
            proxy.reset()

    def sample(self, seconds: float, latency: float) -> Sample:
        starts = {name: proxy.starts for name, proxy in self.proxies.items()}
        counts = {name: len(times) for name, times in starts.items()}
        every = [t for times in starts.values() for t in times]
        return Sample(seconds, counts, round_trips(every, latency))


@dataclass(frozen=True)
class Signed:
    """The pushed images (by the source's name) and the material that verifies them."""

    images: dict[str, tuple[str, str]]  # validator → (image, digest)
    cosign_key: str
    notation_root: str


async def main(latency: float, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (
            registry_server(work / "origin") as origin,
            registry_server(work / "cache", proxy_remote=origin.url) as cache,
        ):
            tls = make_tls(work / "tls")
            context = server_context(tls.cert_file, tls.key_file)
            upstreams = {"source": origin.url, "replica": origin.url, "cache": cache.url}
            proxies = {
                name: TimedProxy(url, latency_seconds=latency, bearer=True)
                for name, url in upstreams.items()
            }
            proxies["broken"] = BrokenMirror("", latency_seconds=latency)
            servers = Servers(proxies)
            async with AsyncExitStack() as stack:
                for name, proxy in proxies.items():
                    url = await stack.enter_async_context(serving(proxy.app(), context))
                    servers.hosts[name] = url.removeprefix("https://")
                async with aiohttp.ClientSession() as session:
                    signed = await publish(Pusher(session, origin.url), servers.hosts["source"])
                configs = {m: config(m, servers.hosts, signed, tls.ca_pem or "") for m in MODES}
                await verify_all(configs["pull-through"], signed)  # fills the cache
                results = {
                    (validator, mode): await measure(
                        configs[mode], signed, validator, servers, latency, runs
                    )
                    for validator in VALIDATORS
                    for mode in MODES
                }
    report(results, latency, origin.backend)


async def publish(push: Pusher, source: str) -> Signed:
    """Push a cosign-signed and a Notation-signed image; name them after ``source``."""
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    manifest, blobs = image_manifest("bench-mirror-cosign")
    cosign_digest = await push.image("bench/cosign", "1.0", manifest, blobs)
    body = payload(cosign_digest, f"{source}/bench/cosign")
    layout = sign_layout([(body, signer.sign(body), {})])
    await push.signatures("bench/cosign", cosign_digest, layout)

    root = make_ca("bench-mirror-root")
    leaf = issue(root, "bench-mirror-signer")
    manifest, blobs = image_manifest("bench-mirror-notation")
    notation_digest = await push.image("bench/notation", "1.0", manifest, blobs)
    subject = Subject(digest=notation_digest, size=len(manifest), media_type=DOCKER_MANIFEST)
    envelope = sign_jws(leaf, target(subject.digest, subject.size, subject.media_type))
    artifact = signature_artifact(subject, envelope, JWS, leaf.chain)
    await push_signatures(push, "bench/notation", subject, [artifact])
    return Signed(
        images={
            "cosign": (f"{source}/bench/cosign:1.0", cosign_digest),
            "notation": (f"{source}/bench/notation:1.0", notation_digest),
        },
        cosign_key=signer.public_pem,
        notation_root=root.pem(),
    )


def config(mode: str, hosts: Mapping[str, str], signed: Signed, ca_pem: str) -> dict[str, Any]:
    """The application config of ``mode``: both validators, rules for both images."""
    endpoints = [{"url": f"https://{hosts[name]}", "cert": ca_pem} for name in ENDPOINTS[mode]]
    mirrors = [{"source": hosts["source"], "endpoints": endpoints, "fallbackToSource": False}]
    source = hosts["source"]
    return {
        "validators": [
            {"name": "deny", "type": "static", "approve": False},
            {
                "name": "cosign",
                "type": "cosign",
                "cert": ca_pem,
                "trustRoots": [{"name": "default", "key": signed.cosign_key}],
            },
            {
                "name": "notation",
                "type": "notation",
                "cert": ca_pem,
                "trustRoots": [{"name": "default", "cert": signed.notation_root}],
            },
        ],
        "policy": [
            {
                "pattern": f"{source}/bench/cosign:*",
                "validator": "cosign",
                "with": {"verifyInTransparencyLog": False},
            },
            {"pattern": f"{source}/bench/notation:*", "validator": "notation"},
            {"pattern": "*:*", "validator": "deny"},
        ],
        "features": {"cache": {"expirySeconds": 0}},
        **({"mirrors": mirrors} if endpoints else {}),
    }


async def verify_all(document: Mapping[str, Any], signed: Signed) -> None:
    """Verify every image once (the pull-through cache fetches what the mirror is asked)."""
    async for _ in verifications(document, signed, list(signed.images), repeat=1):
        pass


async def verifications(
    document: Mapping[str, Any], signed: Signed, validators: list[str], repeat: int
) -> AsyncIterator[float]:
    """The seconds of each verification by one freshly composed application (``repeat``
    rounds over ``validators``' images)."""
    settings = build_settings(dict(document), secrets_dir=None, env={})
    container = build_container(settings, FixedClock(REAL_NOW))
    async with running(container):
        verify = container.verify_image()
        for _ in range(repeat):
            for validator in validators:
                image, digest = signed.images[validator]
                deadline = Deadline.after(container.clock(), 20)
                started = time.perf_counter()
                verdict = await verify.execute(VerifyImageCommand(image=image), deadline)
                elapsed = time.perf_counter() - started
                if not verdict.allowed or verdict.digest != digest:
                    raise RuntimeError(f"{image}: expected {digest}, got {verdict}")
                yield elapsed


async def measure(
    document: Mapping[str, Any],
    signed: Signed,
    validator: str,
    servers: Servers,
    latency: float,
    runs: int,
) -> tuple[list[Sample], list[Sample]]:
    """Cold (new container) and warm (same container) verifications of one image."""
    cold: list[Sample] = []
    warm: list[Sample] = []
    for _ in range(runs):
        buckets: Iterator[list[Sample]] = iter((cold, warm))
        servers.reset()
        async for elapsed in verifications(document, signed, [validator], repeat=2):
            next(buckets).append(servers.sample(elapsed, latency))
            servers.reset()
    return cold, warm


def report(
    results: Mapping[tuple[str, str], tuple[list[Sample], list[Sample]]],
    latency: float,
    backend: str,
) -> None:
    argv = " ".join(sys.argv[1:])
    print(f"command: {Path(sys.executable).name} -m bench.mirror_roundtrips {argv}".rstrip())
    print(
        f"registries: {backend} (origin) and {backend} as its pull-through cache; HTTPS "
        f"latency proxies source and replica (origin), cache (+{latency * 1000:.0f} ms/request, "
        "Bearer token challenge); broken: 503 after the same latency"
    )
    print(
        f"{'validator':9s} {'mode':12s} {'run':4s} {'median ms':>9s} {'vs direct':>9s} "
        f"{'trips':>5s} {'vs direct':>9s}  requests (source/replica/cache/broken)"
    )
    for (validator, mode), pair in results.items():
        direct = results[(validator, "direct")]
        for phase, rows, base in zip(("cold", "warm"), pair, direct, strict=True):
            ms = statistics.median(r.seconds for r in rows) * 1000
            base_ms = statistics.median(r.seconds for r in base) * 1000
            trips = statistics.median(r.trips for r in rows)
            base_trips = statistics.median(r.trips for r in base)
            counts = rows[-1].requests
            print(
                f"{validator:9s} {mode:12s} {phase:4s} {ms:9.1f} {ms / base_ms:8.2f}x "
                f"{trips:5g} {trips / base_trips:8.2f}x  "
                f"{'/'.join(str(counts[n]) for n in ('source', 'replica', 'cache', 'broken'))}"
            )


if __name__ == "__main__":
    args = latency_arguments(__doc__).parse_args()
    asyncio.run(main(args.latency_ms / 1000, args.runs))
