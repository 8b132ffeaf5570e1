"""Round trips and latency of a Notation verification against a real local registry.

Setup: Debian's docker-registry on 127.0.0.1 (plain HTTP, free port; distribution 2.8, so no
OCI referrers API: signatures are found through the ``sha256-<hex>`` referrers tag schema); in
front of it an aiohttp proxy over HTTPS (test CA = the validator's ``cert``) that adds a fixed
latency to every request and, with ``--auth bearer`` (the default), demands a Bearer token served
by the proxy's ``/token``. Images and Notation signature artefacts (JWS envelopes, per-run PKI)
are pushed through the distribution API.

Scenarios:
  tag      ``repo:tag``, one signature by a trusted certificate (the common case);
  digest   ``repo@sha256:…``, one signature;
  rotated  ``repo:tag``, two signatures annotated with a trusted chain, the first by a
           certificate that has expired (a key rotation): the second one must be tried.

Measured per scenario: a cold verification (new registry client: no token, nothing known about
the registry), then a warm one (same client). Sequential round trips are counted by grouping
requests whose start times fall within half the injected latency of each other (concurrent
requests form one round trip). Times are the median over ``--runs`` runs.

Run from the repository root:  /work/main/.venv/bin/python -m bench.notation_roundtrips
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.cosign_roundtrips import (
    Check,
    TimedProxy,
    behind_timed_proxy,
    cold_and_warm,
    round_trips,
)
from connaisseur.application.notation import NotationValidator
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import image_manifest
from tests.support.fakes import FakeClock
from tests.support.notation_oci import JWS, Subject, push_signatures, signature_artifact
from tests.support.notation_signing import DAY, REAL_NOW, Signer, issue, make_ca, sign_jws, target
from tests.support.oci_push import Pusher
from tests.support.servers import registry_server
from tests.support.settings import validator_settings

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCENARIOS = ("tag", "digest", "rotated")


@dataclass(frozen=True)
class Sample:
    seconds: float
    requests: list[tuple[str, str]]
    tokens: int
    trips: int


async def main(latency: float, runs: int, bearer: bool, show: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with registry_server(work / "registry") as registry:
            proxied = behind_timed_proxy(work, registry.url, latency, bearer=bearer)
            async with proxied as (proxy, host, ca_pem, session):
                root = make_ca("bench-root")
                images = await push_scenarios(Pusher(session, registry.url), root)
                settings = validator_settings(
                    {
                        "name": "bench",
                        "type": "notation",
                        "cert": ca_pem,
                        "trustRoots": [{"name": "default", "cert": root.pem()}],
                    }
                )
                results = {
                    name: await measure(
                        session, proxy, settings, f"{host}/{ref}", digest, latency, runs
                    )
                    for name, (ref, digest) in images.items()
                }
    report(results, latency, registry.backend, bearer, show)


async def push_scenarios(push: Pusher, root: Signer) -> dict[str, tuple[str, str]]:
    """Push one image per scenario; return {scenario: (reference without host, digest)}."""
    leaf = issue(root, "bench-signer")
    expired = issue(root, "bench-old", start=REAL_NOW - 20 * DAY, end=REAL_NOW - 2 * DAY)
    images = {}
    for name in SCENARIOS:
        manifest, blobs = image_manifest(f"bench-notation-{name}")
        repo = f"bench/{name}"
        digest = await push.image(repo, "1.0", manifest, blobs)
        subject = Subject(digest=digest, size=len(manifest), media_type=DOCKER_MANIFEST)
        signed = target(subject.digest, subject.size, subject.media_type)
        signers = [expired, leaf] if name == "rotated" else [leaf]
        artifacts = [
            signature_artifact(
                subject,
                sign_jws(s, signed, signing_time=REAL_NOW - 10 * DAY if s is expired else REAL_NOW),
                JWS,
                s.chain,
            )
            for s in signers
        ]
        await push_signatures(push, repo, subject, artifacts)
        images[name] = (f"{repo}@{digest}" if name == "digest" else f"{repo}:1.0", digest)
    return images


async def measure(
    session: aiohttp.ClientSession,
    proxy: TimedProxy,
    settings: ValidatorSettings,
    image: str,
    digest: str,
    latency: float,
    runs: int,
) -> tuple[list[Sample], list[Sample]]:
    clock = FakeClock(REAL_NOW)
    return await cold_and_warm(
        runs,
        proxy,
        lambda client: NotationValidator(settings, client, clock),
        Check(session, clock, ImageReference.parse(image), RuleOptions(), digest),
        lambda seconds: Sample(
            seconds=seconds,
            requests=list(proxy.requests),
            tokens=len(proxy.token_requests),
            trips=round_trips(proxy.starts, latency),
        ),
    )


def report(
    results: dict[str, tuple[list[Sample], list[Sample]]],
    latency: float,
    backend: str,
    bearer: bool,
    show: bool,
) -> None:
    argv = " ".join(sys.argv[1:])
    print(f"command: {Path(sys.executable).name} -m bench.notation_roundtrips {argv}".rstrip())
    auth = "Bearer token challenge" if bearer else "no auth"
    print(
        f"registry: {backend} (no referrers API) behind an HTTPS latency proxy "
        f"(+{latency * 1000:.0f} ms/request, {auth})"
    )
    for scenario, (cold, warm) in results.items():
        for name, rows in (("cold", cold), ("warm", warm)):
            median = statistics.median(r.seconds for r in rows)
            trips = statistics.median(r.trips for r in rows)
            last = rows[-1]
            print(
                f"{scenario:8s} {name:5s} median {median * 1000:7.1f} ms over {len(rows)} runs; "
                f"registry requests {len(last.requests)}, token requests {last.tokens}, "
                f"sequential round trips {trips:g}"
            )
            if show:
                for method, path in last.requests:
                    print(f"    {method:4s} {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--auth", choices=("bearer", "none"), default="bearer")
    parser.add_argument("--show-requests", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.latency_ms / 1000, args.runs, args.auth == "bearer", args.show_requests))
