"""Prometheus metrics (``prometheus-client``), Connaisseur's names plus latency histograms."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class PrometheusMetrics:
    """Implements ``application.ports.Metrics`` on a registry of its own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("connaisseur_requests", "Calls of /mutate.", registry=r)
        self.admitted = Counter(
            "connaisseur_requests_admitted", "Admission requests admitted.", registry=r
        )
        self.denied = Counter(
            "connaisseur_requests_denied", "Admission requests denied.", ["timeout"], registry=r
        )
        self.admission_seconds = Histogram(
            "connaisseur_admission_duration_seconds",
            "Time to decide an admission request.",
            ["decision"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.validations = Counter(
            "connaisseur_validations",
            "Per-image validation results.",
            ["type", "validator_name", "result", "category"],
            registry=r,
        )
        self.validation_seconds = Histogram(
            "connaisseur_validation_duration_seconds",
            "Time to validate one image.",
            ["type", "validator_name"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
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

    def request_received(self) -> None:
        self.requests.inc()

    def admission(self, allowed: bool, timed_out: bool, seconds: float) -> None:
        if allowed:
            self.admitted.inc()
        else:
            self.denied.labels(timeout="true" if timed_out else "false").inc()
        self.admission_seconds.labels(decision="admit" if allowed else "deny").observe(seconds)

    def validation(
        self, validator_type: str, validator: str, category: str, seconds: float
    ) -> None:
        result = "success" if category == "success" else "error"
        self.validations.labels(validator_type, validator, result, category).inc()
        self.validation_seconds.labels(validator_type, validator).observe(seconds)

    def skipped(self, validator_type: str, validator: str, reason: str) -> None:
        self.skips.labels(validator_type, validator, reason).inc()

    def cache_lookup(self, hit: bool) -> None:
        self.cache_lookups.labels("hit" if hit else "miss").inc()

    def upstream_response(self, host: str, status_class: str) -> None:
        self.upstream.labels(host, status_class).inc()

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
