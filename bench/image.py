"""Benchmark: the product image as the chart runs it — size, start-to-ready time and memory.

Builds the image when needed (tests/support/images.py, cached by content), renders the chart with
the static validators of bench/static-config.yaml, and starts the image ``--runs`` times exactly
as the Deployment runs it (tests/support/chart_pod.py: read-only root, UID 10001, no
capabilities, the chart's limits, ConfigMap and TLS Secret mounted read-only). For each start it
measures the time from ``docker run`` to the first 200 from /ready over HTTPS; on the last one,
the webhook's resident set size (VmRSS from the host's /proc) when ready and after ``--reviews``
AdmissionReviews (allowed and denied, one connection each). Needs a Docker engine:

    bash scripts/with-docker.sh .venv/bin/python -m bench.image [--runs 5] [--reviews 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from tests.support import chart_pod, images
from tests.support.admission import admission_review, pod
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]


def drive(client: chart_pod.PodClient, reviews: int) -> None:
    for i in range(reviews):
        image = "docker.io/library/nginx:1" if i % 2 else "quay.io/someone/else:1"
        body = json.dumps(admission_review(pod(image))).encode()
        status, answer = client.request("POST", "/mutate?timeout=10s", body)
        allowed = json.loads(answer)["response"]["allowed"]
        if status != 200 or allowed != bool(i % 2):
            raise RuntimeError(f"unexpected answer {status}: {answer[:200]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reviews", type=int, default=500)
    args = parser.parse_args(argv)
    image = images.build_product()
    size = int(images.docker("image", "inspect", "--format", "{{.Size}}", image))
    static = yaml.safe_load((ROOT / "bench" / "static-config.yaml").read_text())
    values = {"application": {**static, "features": {"cache": {"expirySeconds": 0}}}}
    ready: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        manifests = chart_pod.render_chart(values, Path(tmp))
        for n in range(args.runs):
            run = chart_pod.pod_run(manifests, Path(tmp) / f"run-{n}", free_port(), {})
            client = chart_pod.PodClient(run)
            with chart_pod.running_pod(image, run) as running:
                ready.append(client.wait_ready(running))
                if n == args.runs - 1:
                    rss_ready = chart_pod.rss_kib(running)
                    drive(client, args.reviews)
                    rss_after = chart_pod.rss_kib(running)
    print(f"image          {image}")
    print(f"size           {size / 1e6:.1f} MB (docker image inspect .Size)")
    print(
        f"start to ready median {statistics.median(ready):.2f} s, "
        f"min {min(ready):.2f} s, max {max(ready):.2f} s over {args.runs} starts"
    )
    print(f"RSS ready      {rss_ready / 1024:.1f} MiB")
    print(f"RSS after {args.reviews} reviews {rss_after / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
