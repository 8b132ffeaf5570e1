"""Round trips and latency of cold and warm cosign verifications of bundle-signed images (and,
for comparison, a classically signed one) against a real local registry.

Setup: Debian's docker-registry on 127.0.0.1 (distribution 2.8: no OCI referrers API, so the
referrers are found through the ``sha256-<hex>`` tag schema, as cosign writes it there); in
front of it the HTTPS latency proxy of ``bench/cosign_roundtrips.py`` (a fixed latency per
request, a Bearer token from its ``/token``). Images are pushed through the distribution API:
one signed by cosign v3's layout (a Sigstore bundle v0.3 with a DSSE statement as a referrer),
one with a classic ``.sig`` signature.

Scenarios (``verifyInTransparencyLog: false``, one key):
  bundle by tag       ``repo:tag`` signed with a bundle referrer;
  bundle by digest    ``repo@sha256:…``, the same image;
  classic by tag      ``repo:tag`` signed in the classic layout (every verification also asks
                      for the referrers).

Measured per scenario: a cold verification (new registry client: no token, nothing known about
the registry), then a warm one (same client). Sequential round trips are requests grouped by
start time (within half the injected latency: concurrent requests are one round trip); the
token requests of the cold run are counted apart ("after auth"). Times are medians over
``--runs`` runs.

Run from the repository root:  .venv/bin/python -m bench.cosign_bundle_roundtrips
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
from cryptography.hazmat.primitives.asymmetric import ec

from bench.cosign_roundtrips import (
    Check,
    TimedProxy,
    behind_timed_proxy,
    cold_and_warm,
    round_trips,
)
from connaisseur.application.cosign import CosignValidator
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import Signer, image_manifest, payload, sign_layout
from tests.support.fakes import FakeClock, unreachable_transparency_log
from tests.support.oci_push import Pusher
from tests.support.servers import registry_server
from tests.support.settings import validator_settings
from tests.support.sigstore_bundles import Signing, dsse_bundle, push_bundle_to, statement


@dataclass
class Sample:
    seconds: float
    requests: int
    tokens: int
    trips: int
    trips_after_auth: int


async def main(latency: float, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with registry_server(work / "registry") as registry:
            await bench(registry.url, registry.backend, work, latency, runs)


async def bench(upstream: str, backend: str, work: Path, latency: float, runs: int) -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    async with behind_timed_proxy(work, upstream, latency) as (proxy, host, ca_pem, session):
        pusher = Pusher(session, upstream)
        manifest, blobs = image_manifest("bundle")
        bundled = await pusher.image("bench/bundle", "1.0", manifest, blobs)
        bundle = dsse_bundle(Signing(signer), statement(bundled))
        await push_bundle_to(pusher, "bench/bundle", bundled, bundle)
        manifest, blobs = image_manifest("classic")
        classic = await pusher.image("bench/classic", "1.0", manifest, blobs)
        body = payload(classic, f"{host}/bench/classic")
        layout = sign_layout([(body, signer.sign(body), {})])
        await pusher.signatures("bench/classic", classic, layout)
        scenarios = {
            "bundle by tag": (f"{host}/bench/bundle:1.0", bundled),
            "bundle by digest": (f"{host}/bench/bundle@{bundled}", bundled),
            "classic by tag": (f"{host}/bench/classic:1.0", classic),
        }
        settings = validator_settings(
            {
                "name": "bench",
                "type": "cosign",
                "cert": ca_pem,
                "trustRoots": [{"name": "default", "key": signer.public_pem}],
            }
        )
        results = {}
        for name, (reference, digest) in scenarios.items():
            results[name] = await measure(
                session, proxy, settings, reference, digest, latency, runs
            )
    report(results, latency, backend)


async def measure(
    session: aiohttp.ClientSession,
    proxy: TimedProxy,
    settings: ValidatorSettings,
    reference: str,
    digest: str,
    latency: float,
    runs: int,
) -> tuple[list[Sample], list[Sample]]:
    clock = FakeClock()
    options = RuleOptions(verify_in_transparency_log=False)
    no_rekor = unreachable_transparency_log("no Rekor in this benchmark")

    def sample(seconds: float) -> Sample:
        authed = max(proxy.token_starts, default=0.0)
        after_auth = [t for t in proxy.registry_starts if t > authed]
        return Sample(
            seconds=seconds,
            requests=len(proxy.requests),
            tokens=len(proxy.token_requests),
            trips=round_trips(proxy.starts, latency),
            trips_after_auth=round_trips(after_auth, latency),
        )

    return await cold_and_warm(
        runs,
        proxy,
        lambda client: CosignValidator(settings, client, no_rekor, clock),
        Check(session, clock, ImageReference.parse(reference), options, digest),
        sample,
    )


def report(
    results: dict[str, tuple[list[Sample], list[Sample]]], latency: float, backend: str
) -> None:
    argv = " ".join(sys.argv[1:])
    print(f"command: {Path(sys.executable).name} -m bench.cosign_bundle_roundtrips {argv}".rstrip())
    print(f"registry: {backend} behind an HTTPS latency proxy (+{latency * 1000:.0f} ms/request)")
    for name, (cold, warm) in results.items():
        for label, rows in (("cold", cold), ("warm", warm)):
            median = statistics.median(r.seconds for r in rows) * 1000
            last = rows[-1]
            print(
                f"{name:17s} {label}: median {median:6.1f} ms over {len(rows)} runs; "
                f"requests {last.requests} + {last.tokens} token; sequential round trips "
                f"{last.trips} ({last.trips_after_auth} after auth)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.latency_ms / 1000, args.runs))
