"""E2E: the webhook over real HTTPS, started as ``connaisseur serve`` (static validators only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.webhook_process import Webhook

DIGEST = "sha256:" + "ab" * 32


def review(
    *images: str, api_version: str = "admission.k8s.io/v1", uid: str = "uid-1"
) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "default",
            "object": {"metadata": {"name": "p"}, "spec": {"containers": containers}},
            "someFieldFromTheFuture": {"ignored": True},  # D8: unknown fields are ignored
        },
    }


@pytest.mark.parametrize("api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])
def test_allow_echoes_uid_and_api_version(webhook: Webhook, api_version: str) -> None:
    answer = webhook.review(
        review(
            "my.reg/allowed:1",
            f"registry.k8s.io/pause@{DIGEST}",
            api_version=api_version,
            uid="abc-123",
        )
    )
    assert answer["apiVersion"] == api_version
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == "abc-123"
    assert response["allowed"] is True
    assert "patch" not in response  # a static allow keeps the reference as written


def test_deny_names_every_failing_image(webhook: Webhook) -> None:
    """D7: every failing image, the rule, the validator, the category and the reason."""
    response = webhook.review(review("nginx:1", "my.reg/allowed:1", "quay.io/x/y:2"))["response"]
    assert response["allowed"] is False
    status = response["status"]
    assert status["code"] == 403
    assert status["reason"] == "static_deny"
    message = status["message"]
    assert message.startswith("2 of 3 images denied: ")
    assert "image 'nginx:1' (rule '*:*', validator 'deny') denied [static_deny]" in message
    assert "image 'quay.io/x/y:2' (rule '*:*', validator 'deny') denied [static_deny]" in message
    assert "my.reg/allowed" not in message


def test_invalid_workload_is_a_denial_not_an_error(webhook: Webhook) -> None:
    document = review("nginx")
    document["request"]["kind"]["kind"] = "Role"
    response = webhook.review(document)["response"]
    assert response["allowed"] is False
    assert response["status"]["reason"] == "unknown_workload_kind"


def test_content_type_with_charset_is_accepted(webhook: Webhook) -> None:
    """D8."""
    body = json.dumps(review("my.reg/allowed:1")).encode()
    status, raw, _ = webhook.request("POST", "/mutate", body, "application/json; charset=utf-8")
    assert status == 200
    assert json.loads(raw)["response"]["allowed"] is True


def _nested(depth: int) -> bytes:
    """A JSON document of ``depth`` nested objects."""
    return ('{"a":' * depth + "1" + "}" * depth).encode()


BAD_INPUT = [
    ("not-json", "POST", b"{", "application/json", 400, "received invalid json"),
    ("empty-body", "POST", b"", "application/json", 400, "received invalid json"),
    ("json-null", "POST", b"null", "application/json", 400, "received empty admission request"),
    ("json-array", "POST", b"[]", "application/json", 400, "received empty admission request"),
    (
        "no-request",
        "POST",
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}',
        "application/json",
        400,
        "received empty admission request",
    ),
    (
        "request-not-object",
        "POST",
        b'{"request":"x"}',
        "application/json",
        400,
        "received empty admission request",
    ),
    (
        "wrong-api-version",
        "POST",
        b'{"apiVersion":"v1","request":{"uid":"u"}}',
        "application/json",
        400,
        "unsupported AdmissionReview apiVersion",
    ),
    ("no-uid", "POST", b'{"request":{"operation":"CREATE"}}', "application/json", 400, "no uid"),
    ("too-deep", "POST", _nested(101), "application/json", 400, "nested deeper than 100"),
    ("wrong-content-type", "POST", b"{}", "text/plain", 400, "wrong content type"),
    ("no-content-type", "POST", None, None, 400, "wrong content type"),
    ("get", "GET", None, None, 405, "Method not allowed.: GET"),
    ("put", "PUT", b"{}", "application/json", 405, "Method not allowed.: PUT"),
    ("delete", "DELETE", None, None, 405, "Method not allowed.: DELETE"),
]


@pytest.mark.parametrize(
    ("method", "body", "content_type", "status", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in BAD_INPUT],
)
def test_bad_input_gets_a_4xx_with_a_one_line_reason(
    webhook: Webhook,
    method: str,
    body: bytes | None,
    content_type: str | None,
    status: int,
    reason: str,
) -> None:
    got, raw, _ = webhook.request(method, "/mutate", body, content_type)
    assert got == status
    text = raw.decode()
    assert reason in text
    assert text.endswith("\n")
    assert text.count("\n") == 1


def test_depth_of_exactly_100_is_fine(webhook: Webhook) -> None:
    status, raw, _ = webhook.request("POST", "/mutate", _nested(100))
    assert status == 400
    assert "nested deeper" not in raw.decode()  # refused for having no request, not for depth


def test_body_over_3_mib_is_refused(webhook: Webhook) -> None:
    document = review("my.reg/allowed:1")
    document["padding"] = "x" * (3 * 1024 * 1024)
    try:
        status, raw, _ = webhook.request("POST", "/mutate", json.dumps(document).encode())
    except (ConnectionError, OSError):
        pytest.fail("the server must answer, not drop the connection")
    assert status in (400, 413)
    text = raw.decode()
    assert "exceeds" in text
    assert text.count("\n") == 1


def test_a_body_just_under_the_limit_is_accepted(webhook: Webhook) -> None:
    document = review("my.reg/allowed:1")
    document["padding"] = "x" * (3 * 1024 * 1024 - 1024)
    assert webhook.review(document)["response"]["allowed"] is True


def test_timeout_query_parameter_sets_the_budget(webhook: Webhook) -> None:
    """D6: the API server's ?timeout= minus the 1 s margin; nothing left → timeout denial."""
    document = review("my.reg/allowed:1")
    assert webhook.review(document, "/mutate?timeout=10s")["response"]["allowed"] is True
    response = webhook.review(document, "/mutate?timeout=1s")["response"]
    assert response["allowed"] is False
    assert response["status"]["reason"] == "timeout"
    assert "my.reg/allowed:1" in response["status"]["message"]


def test_health_ready_and_metrics(webhook: Webhook) -> None:
    for path in ("/health", "/ready"):
        assert webhook.request("GET", path)[0] == 200
        assert webhook.request("POST", path, b"")[0] == 405
    status, raw, headers = webhook.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    text = raw.decode()
    assert "connaisseur_requests_total" in text
    assert "connaisseur_requests_denied_total" in text


def test_the_server_keeps_serving_after_bad_input(webhook: Webhook) -> None:
    for _, method, body, content_type, _, _ in BAD_INPUT:
        webhook.request(method, "/mutate", body, content_type)
    assert webhook.request("GET", "/health")[0] == 200
    assert webhook.review(review("my.reg/allowed:1"))["response"]["allowed"] is True
    log = webhook.log.read_text()
    assert "Traceback" not in log
