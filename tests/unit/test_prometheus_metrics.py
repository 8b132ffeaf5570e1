"""The Prometheus adapter counts per label set (its labelled children are memoised)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from connaisseur.adapters.metrics import PrometheusMetrics


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_validations_are_counted_per_label_set() -> None:
    metrics = PrometheusMetrics()
    for _ in range(3):
        metrics.validation("static", "allow", "success", 0.0001)
    metrics.validation("static", "deny", "static_deny", 0.002)
    got = samples(metrics)
    ok = {("type", "static"), ("validator_name", "allow")}
    denied = {("type", "static"), ("validator_name", "deny")}
    key = "connaisseur_validations_total"
    assert got[key, frozenset(ok | {("result", "success"), ("category", "success")})] == 3
    assert got[key, frozenset(denied | {("result", "error"), ("category", "static_deny")})] == 1
    latency = "connaisseur_validation_duration_seconds"
    assert got[latency + "_count", frozenset(ok)] == 3
    assert got[latency + "_bucket", frozenset(denied | {("le", "0.001")})] == 0
    assert got[latency + "_bucket", frozenset(denied | {("le", "0.0025")})] == 1


def test_admissions_are_split_by_decision_and_timeout() -> None:
    metrics = PrometheusMetrics()
    metrics.admission(True, False, 0.001)
    metrics.admission(True, False, 0.001)
    metrics.admission(False, True, 0.5)
    metrics.admission(False, False, 0.5)
    metrics.admission(False, False, 0.5)
    metrics.request_received()
    got = samples(metrics)
    assert got["connaisseur_requests_admitted_total", frozenset()] == 2
    assert got["connaisseur_requests_denied_total", frozenset({("timeout", "true")})] == 1
    assert got["connaisseur_requests_denied_total", frozenset({("timeout", "false")})] == 2
    decision = "connaisseur_admission_duration_seconds_count"
    assert got[decision, frozenset({("decision", "admit")})] == 2
    assert got[decision, frozenset({("decision", "deny")})] == 3
    assert got["connaisseur_requests_total", frozenset()] == 1


def test_registries_are_independent() -> None:
    first, second = PrometheusMetrics(), PrometheusMetrics()
    first.upstream_response("registry.example", "2xx")
    key = frozenset({("host", "registry.example"), ("status_class", "2xx")})
    assert samples(first)["connaisseur_upstream_requests_total", key] == 1
    assert not any(name.startswith("connaisseur_upstream") for name, _ in samples(second))


def without_created(text: str) -> list[str]:
    return [line for line in text.splitlines() if "_created" not in line]


def test_tallied_metrics_expose_exactly_what_prometheus_client_would() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from connaisseur.adapters.metrics import TallyCounter, TallyHistogram

    buckets = (0.001, 0.0025, 1, 30)
    real, tally = CollectorRegistry(), CollectorRegistry()
    plain = Counter("plain", "Unlabelled.", registry=real)
    labelled = Counter("labelled", "Labelled.", ["a", "b"], registry=real)
    latency = Histogram("latency_seconds", "Latency.", ["a"], buckets=buckets, registry=real)
    Counter("never", "Never used.", ["a"], registry=real)
    t_plain = TallyCounter("plain", "Unlabelled.", (), tally)
    t_labelled = TallyCounter("labelled", "Labelled.", ("a", "b"), tally)
    t_latency = TallyHistogram("latency_seconds", "Latency.", ("a",), buckets, tally)
    TallyCounter("never", "Never used.", ("a",), tally)
    for a, b, seconds in [("x", "1", 0.001), ("x", "1", 0.0011), ("y", "2", 45.0), ("x", "1", 1)]:
        plain.inc()
        t_plain.inc()
        labelled.labels(a, b).inc()
        t_labelled.inc(a, b)
        latency.labels(a).observe(seconds)
        t_latency.observe(seconds, a)
    expected, got = generate_latest(real).decode(), generate_latest(tally).decode()
    assert without_created(got) == without_created(expected)
    assert got.count("_created") == expected.count("_created")


def test_connaisseur_v3_per_validator_counters_are_derived_for_existing_dashboards() -> None:
    metrics = PrometheusMetrics()
    metrics.validation("cosign", "signed", "success", 0.01)
    metrics.validation("cosign", "signed", "success", 0.01)
    metrics.validation("cosign", "signed", "signature_invalid", 0.01)
    metrics.validation("unknown", "", "timeout", 0.0)
    got = samples(metrics)
    cosign = frozenset({("type", "cosign"), ("validator_name", "signed")})
    unknown = frozenset({("type", "unknown"), ("validator_name", "")})
    assert got["connaisseur_validations_successful_total", cosign] == 2
    assert got["connaisseur_validations_failed_total", cosign] == 1
    assert got["connaisseur_validations_failed_total", unknown] == 1
    assert got["connaisseur_validations_timeouted_total", unknown] == 1
    assert ("connaisseur_validations_timeouted_total", cosign) not in got
