"""Webhook fuzz: mutated AdmissionReviews against ``connaisseur serve`` over real HTTPS.

The server runs a static policy: everything is denied (``*:*``) except ``allowed.example/app``.
Each request is a valid review (a Pod or a controller, CREATE or UPDATE) that the mutator then
abuses: hostile objects, wrong types at every level, huge arrays, unicode in images, duplicate
keys, deep nesting. The oracle, independent of the product's code, judges every answer:

* no HTTP 5xx and no ``internal error`` denial (status code 500);
* an admission admits only images the static allow covers — read from the request as Kubernetes
  would (last duplicate key wins, every container list of the kind's pod spec). An UPDATE that
  keeps exactly the images it had is the one exception the design allows
  (docs/decisions/0011-lifecycle-updates.md);
* the server process never dies, and its resident memory stays bounded (sampled).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.fuzz.mutate import Mutator, interesting_values
from tests.support.webhook_process import Webhook, serve_webhook

ALLOWED = "allowed.example/app"
CONFIG = {
    "validators": [
        {"name": "allow", "type": "static", "approve": True},
        {"name": "deny", "type": "static", "approve": False},
    ],
    "policy": [
        {"pattern": "*:*", "validator": "deny"},
        {"pattern": ALLOWED, "validator": "allow"},
    ],
    "features": {
        "automaticChildApproval": False,
        "automaticUnchangedApproval": False,
        "detectionMode": False,
    },
}
#: What the static allow covers: the repository, any tag, any digest (D1: whole-name match).
_ALLOWED_IMAGE = re.compile(
    r"allowed\.example/app(?::[A-Za-z0-9_.-]{1,128})?(?:@sha256:[0-9a-f]{64})?"
)
IMAGES = [
    f"{ALLOWED}:1",
    f"{ALLOWED}@sha256:" + "a" * 64,
    "nginx",
    "evil.example/app:1",
    "allowed.example/app2:1",
    "allowed.example/app/x:1",
    "ALLOWED.example/app:1",
    "allowed.example/app:1\u0000",
    "allowed.example\u2215app:1",
    "allowed.example/app:\u0661",
    "docker.io/library/nginx:latest",
]
# Written out again on purpose, not imported from domain/workload.py: the oracle stays
# independent of the product, so a wrong table there cannot make the oracle agree.
_POD_SPECS = {
    "Pod": ("spec",),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    **{
        k: ("spec", "template", "spec")
        for k in (
            "Deployment",
            "ReplicaSet",
            "DaemonSet",
            "StatefulSet",
            "Job",
            "ReplicationController",
        )
    },
}
_GROUPS = {"Pod": "", "ReplicationController": "", "Job": "batch", "CronJob": "batch"}


def template(kind: str, images: list[str], rng: random.Random) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    spec: dict[str, Any] = {"containers": containers}
    if rng.random() < 0.3:
        spec["initContainers"] = [{"name": "init", "image": rng.choice(IMAGES)}]
    if kind == "Pod" and rng.random() < 0.2:
        spec["ephemeralContainers"] = [{"name": "debug", "image": rng.choice(IMAGES)}]
    obj: dict[str, Any] = {"metadata": {"name": "x", "namespace": "default"}}
    node = obj
    path = _POD_SPECS[kind]
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = spec
    return obj


def review(rng: random.Random, uid: str) -> dict[str, Any]:
    kind = rng.choice(list(_POD_SPECS))
    operation = rng.choice(["CREATE", "CREATE", "UPDATE"])
    images = [rng.choice(IMAGES) for _ in range(rng.randrange(1, 4))]
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": _GROUPS.get(kind, "apps"), "version": "v1", "kind": kind},
        "namespace": "default",
        "operation": operation,
        "object": template(kind, images, rng),
    }
    if operation == "UPDATE":
        old = template(kind, [rng.choice(IMAGES)], rng)
        if rng.random() < 0.2:
            old["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        if rng.random() < 0.2:
            old = json.loads(json.dumps(request["object"]))  # unchanged (D11)
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def huge(rng: random.Random, uid: str) -> dict[str, Any]:
    """A maximal request: tens of thousands of containers (allowed and denied mixed)."""
    document = review(rng, uid)
    document["request"]["kind"]["kind"] = "Pod"
    count = rng.choice([1000, 10_000, 30_000])
    images = [IMAGES[i % 3] if i % 7 else "nginx" for i in range(count)]
    document["request"]["object"] = template("Pod", images, rng)
    document["request"]["operation"] = "CREATE"
    return document


def images_of(document: Any) -> tuple[set[str], bool] | None:
    """(images the object would run, readable) as Kubernetes reads the review; ``None`` when
    the request names no kind we can read (then any answer but an admission is fine)."""
    request = document.get("request") if isinstance(document, dict) else None
    if not isinstance(request, dict):
        return None
    kind = request.get("kind")
    kind = kind.get("kind") if isinstance(kind, dict) else None
    if kind not in _POD_SPECS:
        return set(), False
    return _spec_images(request.get("object"), kind), True


def _spec_images(obj: Any, kind: str) -> set[str]:
    node = obj
    for part in _POD_SPECS[kind]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return set()
    lists = ("containers", "initContainers") + (("ephemeralContainers",) if kind == "Pod" else ())
    found: set[str] = set()
    for name in lists:
        for container in node.get(name) or [] if isinstance(node.get(name), list) else []:
            image = container.get("image") if isinstance(container, dict) else None
            found.add(image if isinstance(image, str) else repr(image))
    return found


def unchanged_update(document: dict[str, Any]) -> bool:
    """An UPDATE whose container lists hold the same images as before: admitted by design
    (docs/decisions/0011-lifecycle-updates.md), whatever the policy says today."""
    request = document["request"]
    kind = request.get("kind", {}).get("kind")
    if request.get("operation") != "UPDATE" or kind not in _POD_SPECS:
        return False
    return _image_lists(request.get("object"), kind) == _image_lists(request.get("oldObject"), kind)


def _image_lists(obj: Any, kind: str) -> list[Counter[str]] | None:
    node = obj
    for part in _POD_SPECS[kind]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return None
    lists = []
    for name in ("containers", "initContainers", "ephemeralContainers"):
        entries = node.get(name)
        entries = entries if isinstance(entries, list) else []
        lists.append(
            Counter(repr(c.get("image")) if isinstance(c, dict) else repr(c) for c in entries)
        )
    return lists


@dataclass
class Report:
    inputs: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    admitted: int = 0
    denied: int = 0
    server_errors: list[str] = field(default_factory=list)
    wrong_admissions: list[str] = field(default_factory=list)
    crashed: bool = False
    rss_start_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_end_mib: float = 0.0

    @property
    def problems(self) -> int:
        return len(self.server_errors) + len(self.wrong_admissions) + int(self.crashed)

    def summary(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        return "\n".join(
            [
                f"webhook: {self.inputs} reviews in {self.seconds:.1f} s ({rate:.0f}/s) "
                f"over HTTPS; statuses {dict(sorted(self.statuses.items()))}; "
                f"admitted {self.admitted}, denied {self.denied}",
                f"webhook: 5xx or internal errors {len(self.server_errors)}, admissions of a "
                f"denied image {len(self.wrong_admissions)}, server crashed {self.crashed}",
                f"webhook: server RSS start {self.rss_start_mib:.0f} MiB, peak "
                f"{self.rss_peak_mib:.0f} MiB, end {self.rss_end_mib:.0f} MiB",
                *[f"    5xx: {e}" for e in self.server_errors[:5]],
                *[f"    wrong admission: {e}" for e in self.wrong_admissions[:5]],
            ]
        )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Campaign:
    """Generates, sends and judges ``inputs`` reviews with ``concurrency`` in flight."""

    def __init__(self, inputs: int, seed: int, out: Path, huge_every: int = 2000) -> None:
        self.inputs = inputs
        self.rng = random.Random(seed)
        self.out = out
        self.huge_every = huge_every
        self.report = Report()
        self.mutator = Mutator([], max_size=2 * 1024 * 1024)

    def next_body(self, index: int) -> bytes:
        rng = self.rng
        uid = f"fuzz-{index}"
        if self.huge_every and index % self.huge_every == self.huge_every - 1:
            return json.dumps(huge(rng, uid)).encode()
        document: Any = review(rng, uid)
        if rng.random() < 0.15:
            return json.dumps(document).encode()  # unmutated: the oracle's sanity baseline
        body = json.dumps(document).encode()
        for _ in range(1 + rng.randrange(3)):
            body = self.mutator.mutate(body, rng)
        if rng.random() < 0.05:
            document["request"]["object"] = interesting_values(rng)
            body = json.dumps(document).encode()
        return body

    def judge(self, body: bytes, status: int, answer: bytes) -> None:
        report = self.report
        report.statuses[status] = report.statuses.get(status, 0) + 1
        if status >= 500:
            report.server_errors.append(f"HTTP {status}: {answer[:120]!r}")
            self._save("5xx", body)
            return
        if status != 200:
            return
        response = json.loads(answer).get("response", {})
        if response.get("status", {}).get("code") == 500:
            report.server_errors.append(f"internal error denial: {answer[:120]!r}")
            self._save("internal", body)
        if not response.get("allowed"):
            report.denied += 1
            return
        report.admitted += 1
        self._check_admission(body)

    def _check_admission(self, body: bytes) -> None:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        seen = images_of(document)
        if seen is None or not seen[1]:
            self.report.wrong_admissions.append("admitted a request whose kind is unreadable")
            self._save("admitted", body)
            return
        if unchanged_update(document):
            return
        bad = sorted(i for i in seen[0] if not _ALLOWED_IMAGE.fullmatch(i))
        if bad or not seen[0]:
            self.report.wrong_admissions.append(f"admitted {bad[:3]!r}")
            self._save("admitted", body)

    def _save(self, what: str, body: bytes) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{what}-{len(list(self.out.iterdir()))}.json").write_bytes(body)

    async def send_all(self, port: int, context: ssl.SSLContext, pid: int) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(self.inputs):
            queue.put_nowait(index)
        connector = aiohttp.TCPConnector(ssl=context, limit=16)
        url = f"https://127.0.0.1:{port}/mutate?timeout=10s"
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                while not queue.empty():
                    index = queue.get_nowait()
                    body = self.next_body(index)
                    headers = {"Content-Type": "application/json"}
                    async with session.post(url, data=body, headers=headers) as resp:
                        self.judge(body, resp.status, await resp.read())
                    if index % 500 == 0:
                        rss = rss_mib(pid)
                        self.report.rss_peak_mib = max(self.report.rss_peak_mib, rss)

            await asyncio.gather(*(worker() for _ in range(16)))


@contextlib.contextmanager
def serving(workdir: Path) -> Iterator[Webhook]:
    """``connaisseur serve`` with the fuzz policy on a free port, over a throw-away CA."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    with serve_webhook(workdir, config, env={"LOG_LEVEL": "warning"}) as webhook:
        yield webhook


def run_campaign(inputs: int, seed: int, out: Path, huge_every: int = 2000) -> Report:
    campaign = Campaign(inputs, seed, out, huge_every)
    report = campaign.report
    with serving(out) as webhook:
        proc = webhook.process
        assert proc is not None
        report.rss_start_mib = report.rss_peak_mib = rss_mib(proc.pid)
        started = time.perf_counter()
        asyncio.run(campaign.send_all(webhook.port, webhook.context(), proc.pid))
        report.seconds = time.perf_counter() - started
        report.inputs = inputs
        report.crashed = proc.poll() is not None
        if not report.crashed:
            report.rss_end_mib = rss_mib(proc.pid)
            report.rss_peak_mib = max(report.rss_peak_mib, report.rss_end_mib)
    return report
