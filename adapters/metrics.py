"""Prometheus metrics (``prometheus-client``), Connaisseur's names plus latency histograms."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: distinct ``host`` label values of the upstream counter; later hosts are counted as "other"
#: (image references, so registry hosts, are chosen by whoever writes a Pod)
MAX_HOST_LABELS = 100
OTHER_HOST = "other"


class TallyCounter(Collector):
    """A counter kept in plain ints and turned into samples only when scraped.

    Exposes exactly what ``prometheus_client.Counter`` does (``_total`` and ``_created``; an
    unlabelled counter from the start, a labelled series from its first increment), for a
    fifth of the cost per increment. Not thread-safe: only the event-loop thread counts.
    """

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name, self._documentation, self._labelnames = name, documentation, tuple(labelnames)
        self._counts: dict[tuple[str, ...], int] = {}
        self._created: dict[tuple[str, ...], float] = {}
        if not labelnames:
            self._counts[()], self._created[()] = 0, time.time()
        registry.register(self)

    def inc(self, *labels: str) -> None:
        count = self._counts.get(labels)
        if count is None:
            self._created[labels] = time.time()
            count = 0
        self._counts[labels] = count + 1

    def counts(self) -> list[tuple[tuple[str, ...], int]]:
        """A snapshot of every label set and its count."""
        return list(self._counts.items())

    def collect(self) -> Iterator[Metric]:
        counter = Metric(self._name, self._documentation, "counter")
        for labels, count in self.counts():
            named = dict(zip(self._labelnames, labels, strict=True))
            counter.add_sample(self._name + "_total", named, float(count))
            counter.add_sample(self._name + "_created", named, self._created[labels])
        yield counter


class TallyHistogram(Collector):
    """A latency histogram kept in plain numbers; exposition as ``prometheus_client.Histogram``.

    Not thread-safe: only the event-loop thread observes.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._documentation, self._labelnames = name, documentation, tuple(labelnames)
        self._bounds = (*(float(b) for b in buckets), float("inf"))
        self._le = tuple(floatToGoString(b) for b in self._bounds)  # type: ignore[no-untyped-call]
        #: labels → [per-bucket counts (not cumulative), sum, created]
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        registry.register(self)

    def observe(self, seconds: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * len(self._bounds), [0.0, time.time()])
        series[0][bisect_left(self._bounds, seconds)] += 1  # le: the first bound >= value
        series[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        name = self._name
        histogram = Metric(name, self._documentation, "histogram")
        for labels, (counts, (total, since)) in list(self._series.items()):
            named = dict(zip(self._labelnames, labels, strict=True))
            cumulative = 0
            for le, count in zip(self._le, counts, strict=True):
                cumulative += count
                histogram.add_sample(name + "_bucket", {**named, "le": le}, float(cumulative))
            histogram.add_sample(name + "_count", named, float(cumulative))
            histogram.add_sample(name + "_sum", named, total)
            histogram.add_sample(name + "_created", named, since)
        yield histogram


class ConnaisseurValidationTotals(Collector):
    """Connaisseur v3's per-validator counters, derived at scrape time from our tally.

    ``connaisseur_validations_{successful,failed,timeouted}_total{type,validator_name}`` keep
    existing dashboards working at no cost on the hot path.
    """

    _DOCS: ClassVar[dict[str, str]] = {
        "successful": "Per-image results without error.",
        "failed": "Per-image results with an error.",
        "timeouted": "Images not validated before the deadline.",
    }

    def __init__(self, validations: TallyCounter, registry: CollectorRegistry) -> None:
        self._validations = validations
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, dict[tuple[str, str], int]] = {what: {} for what in self._DOCS}
        for (vtype, validator, result, category), count in self._validations.counts():
            kinds = ["successful" if result == "success" else "failed"]
            if category == "timeout":
                kinds.append("timeouted")
            for what in kinds:
                series = totals[what]
                series[(vtype, validator)] = series.get((vtype, validator), 0) + count
        for what, series in totals.items():
            name = f"connaisseur_validations_{what}"
            metric = Metric(name, self._DOCS[what], "counter")
            for (vtype, validator), count in series.items():
                labels = {"type": vtype, "validator_name": validator}
                metric.add_sample(name + "_total", labels, float(count))
            yield metric


class PrometheusMetrics:
    """Implements ``application.ports.Metrics`` on a registry of its own.

    What moves on every admission (requests, decisions, per-image validations) is tallied in
    plain numbers and rendered at scrape time; ``prometheus_client`` locks, validates and
    resolves labels on every call, which cost ~10 µs per admission. The other metrics keep
    ``prometheus_client`` objects, their labelled children looked up once per label set.
    Label values come from the configuration and fixed enums, so the series stay few — except
    upstream hosts, which come from image references: the first ``MAX_HOST_LABELS`` keep their
    name (the configured Notary, Rekor and registries are met early), later ones count as
    ``other``.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = TallyCounter("connaisseur_requests", "Calls of /mutate.", (), r)
        self.admitted = TallyCounter(
            "connaisseur_requests_admitted", "Admission requests admitted.", (), r
        )
        self.denied = TallyCounter(
            "connaisseur_requests_denied", "Admission requests denied.", ("timeout",), r
        )
        self.admission_seconds = TallyHistogram(
            "connaisseur_admission_duration_seconds",
            "Time to decide an admission request.",
            ("decision",),
            _LATENCY_BUCKETS,
            r,
        )
        self.validations = TallyCounter(
            "connaisseur_validations",
            "Per-image validation results.",
            ("type", "validator_name", "result", "category"),
            r,
        )
        ConnaisseurValidationTotals(self.validations, r)
        self.validation_seconds = TallyHistogram(
            "connaisseur_validation_duration_seconds",
            "Time to validate one image.",
            ("type", "validator_name"),
            _LATENCY_BUCKETS,
            r,
        )
        self.skips = Counter(
            "connaisseur_validations_skipped",
            "Per-image results decided without running the validator.",
            ["type", "validator_name", "reason"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "connaisseur_cache_lookups",
            "Verification cache lookups by result.",
            ["result"],
            registry=r,
        )
        self.upstream = Counter(
            "connaisseur_upstream_requests",
            "Outbound requests by host and status class.",
            ["host", "status_class"],
            registry=r,
        )
        self._children: dict[tuple[object, ...], Any] = {}
        self._hosts: set[str] = set()

    def _child(self, metric: Counter, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request_received(self) -> None:
        self.requests.inc()

    def admission(self, allowed: bool, timed_out: bool, seconds: float) -> None:
        if allowed:
            self.admitted.inc()
        else:
            self.denied.inc("true" if timed_out else "false")
        self.admission_seconds.observe(seconds, "admit" if allowed else "deny")

    def validation(
        self, validator_type: str, validator: str, category: str, seconds: float
    ) -> None:
        result = "success" if category == "success" else "error"
        self.validations.inc(validator_type, validator, result, category)
        self.validation_seconds.observe(seconds, validator_type, validator)

    def skipped(self, validator_type: str, validator: str, reason: str) -> None:
        self.skips.labels(validator_type, validator, reason).inc()

    def cache_lookup(self, hit: bool) -> None:
        self.cache_lookups.labels("hit" if hit else "miss").inc()

    def upstream_response(self, host: str, status_class: str) -> None:
        self._child(self.upstream, self._host_label(host), status_class).inc()

    def _host_label(self, host: str) -> str:
        if host in self._hosts:
            return host
        if len(self._hosts) >= MAX_HOST_LABELS:
            return OTHER_HOST
        self._hosts.add(host)
        return host

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
