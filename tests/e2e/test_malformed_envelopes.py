"""E2E: an AdmissionReview whose own fields have the wrong JSON type is never answered 500.

Over real HTTPS (``connaisseur serve``): each field the webhook reads, and the objects around
them, is replaced by every JSON type it must not have. A review that cannot be answered (no
object, no ``request``, no string ``uid``, unusable ``apiVersion``) gets a one-line 400; one that
can is denied (``allowed: false``, status code 400, reason ``invalid_request``) — nothing is
admitted and nothing is a 500.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.support.webhook_process import Webhook

ALLOWED_IMAGE = "my.reg/allowed:1"  # admitted by the static allow rule of the e2e config
WRONG_TYPES: list[Any] = [[{}], ["x"], {"a": 1}, 7, -1.5, True, False, "text"]
DROPPED = object()  # the field removed altogether
#: Fields whose value of this type is no fault (any string is a kind, any object a metadata).
RIGHT_TYPE: dict[tuple[str, ...], type] = {
    ("request", "uid"): str,
    ("request", "kind", "group"): str,
    ("request", "kind", "version"): str,
    ("request", "kind", "kind"): str,
    ("request", "name"): str,
    ("request", "namespace"): str,
    ("request", "operation"): str,
    ("request", "object", "metadata"): dict,
}


def valid_review() -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-8",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p",
            "namespace": "default",
            "operation": "CREATE",
            "object": {
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": ALLOWED_IMAGE}]},
            },
            "oldObject": None,
        },
    }


#: Fields whose wrong type makes the review unanswerable (no uid or apiVersion to answer with).
UNANSWERABLE = [("apiVersion",), ("request",), ("request", "uid")]
#: Fields read from an answerable review: a wrong type is a denial.
ANSWERABLE = [
    ("request", "kind"),
    ("request", "kind", "group"),
    ("request", "kind", "version"),
    ("request", "kind", "kind"),
    ("request", "name"),
    ("request", "namespace"),
    ("request", "operation"),
    ("request", "object"),
    ("request", "object", "metadata"),
    ("request", "object", "spec"),
    ("request", "object", "spec", "containers"),
]


def with_value(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    review = valid_review()
    parent = review
    for key in path[:-1]:
        parent = parent[key]
    if value is DROPPED:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(value)
    return review


def cases(paths: list[tuple[str, ...]]) -> list[Any]:
    return [
        pytest.param(path, value, id=f"{'.'.join(path)}={json.dumps(value)}")
        for path in paths
        for value in WRONG_TYPES
        if not isinstance(value, RIGHT_TYPE.get(path, type(None)))
    ]


def post(webhook: Webhook, review: Any) -> tuple[int, bytes]:
    status, body, _ = webhook.request("POST", "/mutate", json.dumps(review).encode())
    return status, body


def test_finding8_the_valid_review_used_below_is_admitted(webhook: Webhook) -> None:
    """The base of every case is admitted, so each denial below is caused by its one field."""
    status, body = post(webhook, valid_review())
    assert status == 200
    assert json.loads(body)["response"]["allowed"] is True


@pytest.mark.parametrize(("path", "value"), cases(UNANSWERABLE))
def test_finding8_malformed_envelope_gets_a_one_line_400(
    webhook: Webhook, path: tuple[str, ...], value: Any
) -> None:
    status, body = post(webhook, with_value(path, value))
    text = body.decode()
    assert status == 400, text
    assert text.endswith("\n")
    assert text.count("\n") == 1, text
    assert len(text) < 200


@pytest.mark.parametrize(("path", "value"), cases(ANSWERABLE))
def test_finding8_malformed_request_field_is_denied_not_500(
    webhook: Webhook, path: tuple[str, ...], value: Any
) -> None:
    status, body = post(webhook, with_value(path, value))
    assert status == 200, body
    answer = json.loads(body)
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert response["uid"] == "uid-8"
    assert response["allowed"] is False
    assert response["status"]["code"] in (400, 403)
    assert response["status"]["code"] != 500
    assert "internal error" not in response["status"]["message"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("request", "kind", "group"), "request.kind.group is not a string"),
        (("request", "kind"), "request.kind is not an object"),
        (("request", "operation"), "request.operation is not a string"),
    ],
)
def test_finding8_denial_names_the_malformed_field(
    webhook: Webhook, path: tuple[str, ...], message: str
) -> None:
    response = webhook.review(with_value(path, [{}]))["response"]
    assert response["allowed"] is False
    assert response["status"] == {
        "metadata": {},
        "message": f"malformed admission request: {message}",
        "code": 400,
        "reason": "invalid_request",
    }


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([{}], "AdmissionReview apiVersion is not a string"),
        ({"v": 1}, "AdmissionReview apiVersion is not a string"),
        ("x" * 100_000, "unsupported AdmissionReview apiVersion 'xxxx"),
    ],
    ids=["list", "object", "long-string"],
)
def test_finding8_api_version_reason_is_one_short_line(
    webhook: Webhook, value: Any, reason: str
) -> None:
    status, body = post(webhook, with_value(("apiVersion",), value))
    assert status == 400
    text = body.decode()
    assert text.startswith(reason)
    assert len(text) < 200  # the client's value is quoted, not echoed whole


def test_finding8_missing_optional_fields_are_still_accepted(webhook: Webhook) -> None:
    """Absent or null fields keep their defaults (D8 tolerant input): only wrong types fail."""
    review = with_value(("request", "name"), DROPPED)
    review["request"]["namespace"] = None
    del review["apiVersion"]
    status, body = post(webhook, review)
    assert status == 200
    assert json.loads(body)["response"]["allowed"] is True
