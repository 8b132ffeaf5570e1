"""Benchmark: the webhook against the Python limit on this machine.

Starts ``connaisseur serve`` with static validators (``bench/static-config.yaml``), the bare
reference server (``bench/bare_server.py``, the Python limit) and, unless ``--no-floor``, a
minimal aiohttp handler (``bench/aiohttp_floor.py``), all over TLS on 127.0.0.1; checks that each
answers correctly, then drives them with ``wrk`` (POST of an AdmissionReview of a 3-container
Deployment, allowed and static-denied) at several concurrencies, alternating the servers run by
run so that drift hits all alike. Reports req/s, p50, p99 and server CPU per request, and the
ratio to bare; exits non-zero only on errors (a server that fails to start or answers wrongly,
a wrk error), never on missed targets. See bench/README.md.

After the table, ``--soak`` seconds of sustained load on the webhook sample its resident set
size (RSS) at six marks; RSS is also read before and after every run (memory stays flat,
docs/decisions/0018-performance-targets.md).

    .venv/bin/python -m bench.webhook [--duration 5] [--rounds 2] [--concurrency 1,10,64]
                                      [--soak 60]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connaisseur.entrypoints.tls import CertificateFiles, throwaway_certificate

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
HOST = "127.0.0.1"
PATH = "/mutate?timeout=10s"
TARGET_RATIO = 0.50
TARGET_P99_MS = 5.0
TARGET_CONCURRENCY = 10

ALLOWED_IMAGES = (
    "registry.example.com/shop/web:1.4.2",
    "registry.example.com/shop/metrics-sidecar:0.9.1",
    "busybox:1.36",
)
DENIED_IMAGES = (
    "untrusted.example.org/shop/web:1.4.2",
    "untrusted.example.org/shop/metrics-sidecar:0.9.1",
    "untrusted.example.org/library/busybox:1.36",
)


#: Servers that answer every review with a fixed "allowed" (they parse, they do not decide).
REFERENCES = ("bare", "floor")


class BenchError(Exception):
    """Something went wrong that makes the figures meaningless."""


# ---------------------------------------------------------------- request bodies


def admission_review(uid: str, images: tuple[str, str, str]) -> bytes:
    """An AdmissionReview (v1, CREATE) of a realistic 3-container Deployment."""
    web, sidecar, init = images
    container = {
        "imagePullPolicy": "IfNotPresent",
        "resources": {
            "limits": {"cpu": "500m", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    labels = {"app.kubernetes.io/name": "shop-web", "app.kubernetes.io/part-of": "shop"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "shop-web",
            "namespace": "shop",
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": "7"},
        },
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "shop-web",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "initContainers": [
                        {
                            **container,
                            "name": "wait-for-db",
                            "image": init,
                            "command": ["sh", "-c", "until nc -z db 5432; do sleep 1; done"],
                        }
                    ],
                    "containers": [
                        {
                            **container,
                            "name": "web",
                            "image": web,
                            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "DB_HOST", "value": "db.shop.svc.cluster.local"},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": "http"},
                                "periodSeconds": 5,
                            },
                        },
                        {
                            **container,
                            "name": "metrics",
                            "image": sidecar,
                            "ports": [{"containerPort": 9090, "name": "metrics"}],
                        },
                    ],
                },
            },
        },
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "shop-web",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:ci:deployer",
                "uid": "9b1b7c4e-8a43-4d35-a7c6-2f0b7a1c5d11",
                "groups": ["system:serviceaccounts", "system:authenticated"],
            },
            "object": deployment,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
    return json.dumps(review, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Variant:
    name: str
    images: tuple[str, str, str]
    allowed: bool

    @property
    def uid(self) -> str:
        return f"bench-{self.name}-0b6b5d1e-2c55-4f0a-9d5e-6a8c1f3e7b42"

    def body(self) -> bytes:
        return admission_review(self.uid, self.images)


ALLOW = Variant("allow", ALLOWED_IMAGES, allowed=True)
DENY = Variant("deny", DENIED_IMAGES, allowed=False)


# ---------------------------------------------------------------- servers


def make_certificate(folder: Path) -> CertificateFiles:
    """The webhook's own throw-away certificate (self-signed P-256, 127.0.0.1 and localhost)."""
    return throwaway_certificate(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    command: list[str]
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}{PATH}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux ``/proc``)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident set size of the server process now, in KiB (Linux ``/proc``)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        line = next((ln for ln in status.splitlines() if ln.startswith("VmRSS:")), None)
        return int(line.split()[1]) if line is not None else None

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise BenchError(f"{self.name} exited with {self.process.returncode}:\n{tail}")


@contextlib.contextmanager
def running(name: str, command: list[str], port: int, workdir: Path) -> Iterator[Server]:
    log_file = workdir / f"{name}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = Server(name, port, command, process, log_file)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post(server: Server, body: bytes, context: ssl.SSLContext) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(HOST, server.port, context=context, timeout=5)
    try:
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(server: Server, context: ssl.SSLContext, timeout: float = 20.0) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        server.check_alive()
        try:
            post(server, ALLOW.body(), context)
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{server.name} did not answer on port {server.port} within {timeout} s")


def check_answer(server: Server, variant: Variant, context: ssl.SSLContext) -> None:
    """The server answers the variant as it must (uid echoed, decision, no patch)."""
    status, raw = post(server, variant.body(), context)
    if status != 200:
        raise BenchError(f"{server.name}/{variant.name}: HTTP {status}: {raw[:300]!r}")
    response = json.loads(raw)["response"]
    expected = variant.allowed or server.name in REFERENCES
    if response.get("uid") != variant.uid or response.get("allowed") is not expected:
        raise BenchError(f"{server.name}/{variant.name}: unexpected answer {response}")
    if "patch" in response:
        raise BenchError(f"{server.name}/{variant.name}: unexpected patch {response}")
    if not expected and response.get("status", {}).get("message", "").count("static_deny") != 3:
        raise BenchError(f"{server.name}/{variant.name}: denial not itemised: {response}")


# ---------------------------------------------------------------- wrk

_LUA = """-- generated by bench/webhook.py
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Run:
    server: str
    variant: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float | None  # server CPU time per request: steadier than req/s on a busy host
    rss_before_kib: int | None = None
    rss_after_kib: int | None = None
    requests: int = 0


def write_lua(folder: Path, variant: Variant) -> Path:
    path = folder / f"{variant.name}.lua"
    path.write_text(_LUA.format(body=variant.body().decode()))
    return path


def wrk_command(
    server: Server, script: Path, concurrency: int, threads: int, seconds: float
) -> list[str]:
    threads = max(1, min(threads, concurrency))
    return [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{seconds:g}s",
        "--timeout",
        "2s",
        "-s",
        str(script),
        server.url,
    ]


def run_wrk(
    server: Server, variant: Variant, script: Path, concurrency: int, args: argparse.Namespace
) -> Run:
    command = wrk_command(server, script, concurrency, args.threads, args.duration)
    rss_before, cpu_before = server.rss_kib(), server.cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 30)
    cpu_after, rss_after = server.cpu_seconds(), server.rss_kib()
    server.check_alive()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    r = json.loads(line.removeprefix("BENCH-RESULT "))
    errors = sum(r[k] for k in ("connect", "read", "write", "status", "timeout"))
    cpu_us = None
    if cpu_before is not None and cpu_after is not None and r["requests"]:
        cpu_us = (cpu_after - cpu_before) / r["requests"] * 1e6
    return Run(
        server=server.name,
        variant=variant.name,
        concurrency=concurrency,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        errors=errors,
        cpu_us=cpu_us,
        rss_before_kib=rss_before,
        rss_after_kib=rss_after,
        requests=r["requests"],
    )


# ---------------------------------------------------------------- report


def aggregate(runs: list[Run]) -> tuple[float, float, float, str]:
    """Median over rounds of req/s, p50, p99 and server CPU µs per request."""
    cpu = [r.cpu_us for r in runs if r.cpu_us is not None]
    return (
        statistics.median(r.rps for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        f"{statistics.median(cpu):.0f}" if cpu else "n/a",
    )


def report(runs: list[Run], concurrencies: list[int]) -> list[str]:
    lines = [
        "| c | server | variant | req/s | p50 ms | p99 ms | req/s vs bare | CPU µs/req |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for c in concurrencies:
        bare = [r for r in runs if r.concurrency == c and r.server == "bare"]
        bare_rps, p50, p99, cpu = aggregate(bare)
        lines.append(f"| {c} | bare | allow | {bare_rps:,.0f} | {p50:.2f} | {p99:.2f} | | {cpu} |")
        floor = [r for r in runs if r.concurrency == c and r.server == "floor"]
        if floor:
            rps, p50, p99, cpu = aggregate(floor)
            lines.append(
                f"| {c} | aiohttp floor | allow | {rps:,.0f} | {p50:.2f} | {p99:.2f} "
                f"| {rps / bare_rps:.0%} | {cpu} |"
            )
        for variant in (ALLOW, DENY):
            ours = [r for r in runs if r.concurrency == c and r.variant == variant.name]
            ours = [r for r in ours if r.server == "ours"]
            rps, p50, p99, cpu = aggregate(ours)
            ratio = rps / bare_rps
            lines.append(
                f"| {c} | ours | {variant.name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} "
                f"| {ratio:.0%} | {cpu} |"
            )
            if c == TARGET_CONCURRENCY:
                ok = ratio >= TARGET_RATIO and p99 <= TARGET_P99_MS
                verdicts.append(
                    f"target at c={c} ({variant.name}): ratio {ratio:.0%} "
                    f"(>= {TARGET_RATIO:.0%}), p99 {p99:.2f} ms (<= {TARGET_P99_MS} ms): "
                    + ("met" if ok else "MISSED")
                )
    return [*lines, "", *verdicts]


def _mib(kib: int | None) -> str:
    return f"{kib / 1024:.1f}" if kib is not None else "n/a"


def memory_report(runs: list[Run], concurrencies: list[int]) -> list[str]:
    """Server RSS after warm-up and after each concurrency's runs (flat is the target)."""
    lines = [
        "| server | after warm-up MiB | "
        + " | ".join(f"after c={c} MiB" for c in concurrencies)
        + " | growth MiB |",
        "|---|" + "---:|" * (len(concurrencies) + 2),
    ]
    for name in dict.fromkeys(r.server for r in runs):
        own = [r for r in runs if r.server == name]
        start = own[0].rss_before_kib
        after = [[r for r in own if r.concurrency == c][-1].rss_after_kib for c in concurrencies]
        end = after[-1]
        growth = f"{(end - start) / 1024:+.1f}" if start is not None and end is not None else "n/a"
        cells = " | ".join(_mib(a) for a in after)
        lines.append(f"| {name} | {_mib(start)} | {cells} | {growth} |")
    return lines


def soak_report(soak: list[Run]) -> list[str]:
    """RSS of ``ours`` at every mark of the soak run, and its growth over the whole and the
    second half: a leak shows as steady growth, a warm-up as growth that stops."""
    if not soak:
        return []
    marks = [soak[0].rss_before_kib, *(r.rss_after_kib for r in soak)]
    if any(m is None for m in marks):
        return ["soak: RSS not available (no /proc)"]
    kib = [m for m in marks if m is not None]
    half = kib[len(kib) // 2]
    requests = sum(r.requests for r in soak)
    cpu = [r.cpu_us for r in soak if r.cpu_us is not None]
    return [
        f"soak: ours at c={soak[0].concurrency}, allow/deny alternating, {len(soak)} runs, "
        f"{requests:,} requests" + (f", CPU {statistics.median(cpu):.0f} µs/req" if cpu else ""),
        "  RSS MiB at each mark: " + ", ".join(_mib(k) for k in kib),
        f"  growth: {(kib[-1] - kib[0]) / 1024:+.1f} MiB over the soak, "
        f"{(kib[-1] - half) / 1024:+.1f} MiB over its second half",
    ]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="webhook vs bare asyncio server, with wrk")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="bare/ours alternations per c")
    parser.add_argument("--concurrency", default="1,10,64", help="comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (<= connections)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per server")
    parser.add_argument(
        "--soak",
        type=int,
        default=60,
        help="seconds of sustained load on ours after the table, RSS sampled (0: none)",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the minimal aiohttp handler (bench/aiohttp_floor.py) between bare and ours",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 2
    try:
        return bench(args)
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1


def bench(args: argparse.Namespace) -> int:
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="connaisseur-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = make_certificate(workdir)
        client = ssl.create_default_context(cafile=str(cert))
        tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
        bare_port, ours_port, floor_port = free_port(), free_port(), free_port()
        # As modules from the repository root (the working directory): the floor imports
        # the bare server's command line.
        bare_cmd = [python, "-m", "bench.bare_server", "--listen", f"{HOST}:{bare_port}", *tls]
        floor_cmd = [python, "-m", "bench.aiohttp_floor", "--listen", f"{HOST}:{floor_port}", *tls]
        ours_cmd = [
            python, "-m", "connaisseur.entrypoints.cli", "serve",
            "--config", str(BENCH / "static-config.yaml"),
            "--listen", f"{HOST}:{ours_port}", *tls,
        ]  # fmt: skip
        scripts = {v.name: write_lua(workdir, v) for v in (ALLOW, DENY)}
        with contextlib.ExitStack() as stack:
            bare = stack.enter_context(running("bare", bare_cmd, bare_port, workdir))
            ours = stack.enter_context(running("ours", ours_cmd, ours_port, workdir))
            servers = [bare, ours]
            if args.floor:
                servers.append(
                    stack.enter_context(running("floor", floor_cmd, floor_port, workdir))
                )
            for server in servers:
                wait_ready(server, client)
                for variant in (ALLOW, DENY):
                    check_answer(server, variant, client)
            print_header(args, servers, scripts, concurrencies)
            runs = measure(args, servers, scripts, concurrencies)
            soaked = soak(args, ours, scripts)
            for server in servers:
                check_answer(server, ALLOW, client)
            log_lines = sum(1 for _ in ours.log_file.open("rb"))
    print()
    print("\n".join(report(runs, concurrencies)))
    print("\nServer memory (resident set size, from /proc):\n")
    print("\n".join(memory_report(runs, concurrencies)))
    print("\n".join(["", *soak_report(soaked)]))
    print(f"\nwebhook log lines written during the run: {log_lines}")
    errors = sum(r.errors for r in [*runs, *soaked])
    if errors:
        print(f"bench: error: {errors} wrk errors (non-2xx, socket, timeout)", file=sys.stderr)
        return 1
    return 0


def print_header(
    args: argparse.Namespace,
    servers: list[Server],
    scripts: dict[str, Path],
    concurrencies: list[int],
) -> None:
    ours = servers[1]
    print(f"bench: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"  host: {os.cpu_count()} CPUs, {sys.version.split()[0]}")
    for server in servers:
        print(f"  {server.name}: {shlex.join(server.command)}")
    example = wrk_command(ours, scripts["allow"], concurrencies[0], args.threads, args.duration)
    print(f"  load: {shlex.join(example)}  (c in {concurrencies}; bodies in the .lua scripts)")
    size = len(ALLOW.body())
    print(f"  body: AdmissionReview v1 of a 3-container Deployment, {size} bytes")
    order = ", ".join(f"{s.name} {v.name}" for s, v in plan(servers))
    print(f"  order per c: {args.rounds} x ({order}), {args.duration:g} s each")
    print()


def plan(servers: list[Server]) -> list[tuple[Server, Variant]]:
    """One round: bare, the aiohttp floor, ours allowed and ours denied, back to back."""
    bare, ours, *floor = servers
    return [(bare, ALLOW), *((f, ALLOW) for f in floor), (ours, ALLOW), (ours, DENY)]


def measure(
    args: argparse.Namespace,
    servers: list[Server],
    scripts: dict[str, Path],
    concurrencies: list[int],
) -> list[Run]:
    for server in servers:
        warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
        run_wrk(server, ALLOW, scripts["allow"], max(concurrencies), warm)
    runs = []
    for c in concurrencies:
        for _ in range(args.rounds):
            for server, variant in plan(servers):
                run = run_wrk(server, variant, scripts[variant.name], c, args)
                runs.append(run)
                print(
                    f"  c={c:<3} {run.server:<5} {run.variant:<5} {run.rps:>9,.0f} req/s  "
                    f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  "
                    f"CPU {run.cpu_us or 0:5.0f} µs/req"
                    + (f"  ERRORS {run.errors}" if run.errors else ""),
                    flush=True,
                )
    return runs


SOAK_MARKS = 6


def soak(args: argparse.Namespace, ours: Server, scripts: dict[str, Path]) -> list[Run]:
    """Sustained load on ``ours`` for ``--soak`` seconds in ``SOAK_MARKS`` runs (allow and deny
    alternating), so the RSS is sampled at every mark."""
    if args.soak <= 0:
        return []
    seconds = max(1, round(args.soak / SOAK_MARKS))
    chunk = argparse.Namespace(**{**vars(args), "duration": seconds})
    runs = []
    for i in range(SOAK_MARKS):
        variant = (ALLOW, DENY)[i % 2]
        run = run_wrk(ours, variant, scripts[variant.name], TARGET_CONCURRENCY, chunk)
        runs.append(run)
        print(
            f"  soak {(i + 1) * seconds:>4} s  {run.rps:>9,.0f} req/s  "
            f"RSS {_mib(run.rss_after_kib)} MiB" + (f"  ERRORS {run.errors}" if run.errors else ""),
            flush=True,
        )
    return runs


if __name__ == "__main__":
    sys.exit(main())
