"""Conformance: admission (area ``admission``): the webhook and its features.

Cases that need the cache, alerting or a Kubernetes API are skipped here and run by
``tests/conformance/test_admission_features.py``.

Deliberate differences asserted here: D7 (a denial names every failing image with rule, validator,
category and reason), D6 (``deadline: already_expired`` is a zero budget: over HTTP the API
server's ``?timeout=1s`` minus the 1 s margin), and an AdmissionReview without ``uid`` is a 400
at the HTTP layer (the component cases 037/038 then run on the same request with a uid).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from connaisseur.application.deadline import Deadline
from connaisseur.application.review import ReviewCommand
from connaisseur.application.validators import StaticValidator
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.loader import build_settings
from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import ImageVerdict, RequestVerdict, SkipReason
from connaisseur.domain.workload import ContainerSlot, Workload
from connaisseur.entrypoints.admission import BadRequestError, parse_review, render_review
from tests.support.conformance import (
    SKIP_FEATURES,
    budget_seconds,
    case_by_id,
    case_container,
    case_env,
    case_settings,
    cases,
    data_path,
    expected_of,
    extra_validators,
    load_validator_file,
    object_from,
    params,
    read_json,
    running_container,
)
from tests.support.fakes import FakeClock
from tests.support.feature_doubles import MockValidator
from tests.support.webhook import webhook_client

FEATURE_OPS = {"child_approval", "parent_images", "skip_decision", "validation_metrics"}


def needs_features(case: dict[str, Any]) -> str | None:
    """Skip reason for cases that need the cache, alerting or a Kubernetes API."""
    inputs = case["inputs"]
    if case["op"] in FEATURE_OPS:
        return SKIP_FEATURES
    if inputs.get("cache_before") or inputs.get("cache_read_fails_for"):
        return SKIP_FEATURES
    if inputs.get("server") in ("webhook", "kube_api") or "kube_objects" in inputs:
        return SKIP_FEATURES
    alerting = inputs.get("alerting")
    if alerting and (
        not data_path(alerting).is_file() or data_path(alerting).read_text().strip() != "{}"
    ):
        return SKIP_FEATURES
    return None


def admission_params(*ops: str) -> list[Any]:
    return params("admission", ops, skip=needs_features)


# --- shared assertions ----------------------------------------------------------------------


def _decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "patch" not in response:
        return None
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


def _key(op: dict[str, Any]) -> str:
    return json.dumps(op, sort_keys=True)


def assert_response(expected: dict[str, Any], response: dict[str, Any]) -> None:
    """Compare an AdmissionReview ``response`` with a case's expected fields."""
    if "allowed" in expected:
        assert response["allowed"] is expected["allowed"]
    if "patch" in expected:
        assert _decoded_patch(response) == expected["patch"]
    if "patch_unordered" in expected:
        got = sorted(map(_key, _decoded_patch(response) or []))
        assert got == sorted(map(_key, expected["patch_unordered"]))
    if "patch_bytes" in expected:
        assert base64.b64decode(response["patch"]).decode() == expected["patch_bytes"]
    if "patch_type" in expected:
        assert response["patchType"] == expected["patch_type"]
    status = response.get("status") or {}
    if "deny_category" in expected:
        assert status["reason"] == expected["deny_category"]
    if "message_contains" in expected:
        assert expected["message_contains"] in status["message"]
    if "result_message" in expected and expected["result_message"] is None:
        assert "message" not in status
    warnings = response.get("warnings") or []
    for text in expected.get("warnings_contain", ()):
        assert any(text in w for w in warnings), warnings
    for text in expected.get("warnings_not_contain", ()):
        assert not any(text in w for w in warnings), warnings


def assert_clear_denial(verdict: RequestVerdict) -> None:
    """D7: the message names every failing image with its rule, validator and category."""
    assert verdict.message is not None
    for image in verdict.images:
        if image.allowed:
            continue
        assert repr(image.image) in verdict.message
        assert f"[{image.category}]" in verdict.message
        if image.rule is not None:
            assert repr(image.rule) in verdict.message
        if image.validator is not None:
            assert repr(image.validator) in verdict.message


# --- http_mutate ----------------------------------------------------------------------------


def _metric(container: Any, spec: str) -> float:
    name, _, labels = spec.partition("{")
    pairs = dict(p.split("=") for p in labels.rstrip("}").split(",") if p)
    value = container.metrics().registry.get_sample_value(name, pairs)
    return value or 0.0


@pytest.mark.parametrize("case", admission_params("http_mutate"))
async def test_http_mutate(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], expected_of(case)
    container = case_container(case_settings(case), extra_validators(case), FakeClock(frozen=True))
    request = inputs["request"]
    body = request.get("body")
    if "body_file" in request:
        body = data_path(request["body_file"]).read_bytes()
    headers = {"Content-Type": request["content_type"]} if request.get("content_type") else {}
    # D6: a zero budget is what the API server's minimum timeout (1 s) leaves after the margin.
    query = {"timeout": "1s"} if budget_seconds(case) == 0 else {}
    async with webhook_client(container) as client:
        resp = await client.request(
            request["method"], "/mutate", data=body, headers=headers, params=query
        )
        text = await resp.text()
    if case["id"] == "admission-002":
        # Not a D-number: aiohttp's HTTP parser (llhttp) refuses a method it does not know
        # ('YOLO') on the request line with 400, before any handler runs. Still a 4xx.
        assert resp.status == 400
        return
    assert resp.status == expected["http_status"]
    if not expected["ok"]:
        assert text.endswith("\n")
        assert text.count("\n") == 1  # one line
        if "body" in expected:
            assert text == expected["body"]
    else:
        assert_response(expected, json.loads(text)["response"])
    for spec, value in (case.get("metrics_optional") or {}).items():
        assert _metric(container, spec) == value, spec


# --- review ---------------------------------------------------------------------------------


async def _review(case: dict[str, Any]) -> tuple[RequestVerdict, dict[str, Any]]:
    document = read_json(case["inputs"]["admission_review"])
    command, api_version = parse_review(document, budget_seconds(case))
    async with running_container(case_settings(case), extra_validators(case)) as container:
        verdict = await container.review_admission().execute(command)
    return verdict, render_review(verdict, api_version)


@pytest.mark.parametrize("case", admission_params("review"))
async def test_review(case: dict[str, Any]) -> None:
    expected = expected_of(case)
    # cache_after is asserted by the cache tests; we have no cache in this build.
    verdict, answer = await _review(case)
    assert (
        answer["response"]["uid"] == read_json(case["inputs"]["admission_review"])["request"]["uid"]
    )
    assert_response(expected, answer["response"])
    if "notification_result" in expected:
        assert verdict.outcome == expected["notification_result"]
    if not verdict.allowed and verdict.images:
        assert_clear_denial(verdict)


async def test_not_called_doubles_stay_uncalled() -> None:
    """admission-121 with a double that records calls: unchanged approval skips validation."""
    case = case_by_id("admission-121")
    doubles = extra_validators(case)
    document = read_json(case["inputs"]["admission_review"])
    command, _ = parse_review(document, 29.0)
    async with running_container(case_settings(case), doubles) as container:
        verdict = await container.review_admission().execute(command)
    assert verdict.allowed
    assert [d.calls for d in doubles] == [[]]


# --- per-image pipeline and workloads -------------------------------------------------------


async def _verify(case: dict[str, Any]) -> ImageVerdict:
    inputs = case["inputs"]
    settings = case_settings(case)
    previous = frozenset(inputs.get("previous_images") or ())
    approved = previous if settings.features.automatic_unchanged_approval else frozenset()
    command = VerifyImageCommand(
        image=inputs["image"], approved_images=approved, approval_reason=SkipReason.UNCHANGED
    )
    async with running_container(settings, extra_validators(case)) as container:
        deadline = Deadline.after(container.clock(), budget_seconds(case))
        return await container.verify_image().execute(command, deadline)


@pytest.mark.parametrize("case", admission_params("validate_image_pipeline"))
async def test_validate_image_pipeline(case: dict[str, Any]) -> None:
    expected = expected_of(case)
    # cache_after_has_key / cache_after_lacks_key: asserted by the cache tests.
    verdict = await _verify(case)
    if not expected["ok"]:
        assert not verdict.allowed
        assert verdict.category == expected["error"]
        if "message_contains" in expected:
            assert expected["message_contains"] in (verdict.message or "")
        return
    assert verdict.allowed
    assert verdict.new_image == expected["new_image"]
    assert (verdict.skipped is not None) is expected["skipped"]
    assert str(verdict.skipped or "") == expected["skip_reason"]


def _pod(images: dict[str, list[str]], name: str = "pod") -> dict[str, Any]:
    spec = {
        ctype: [{"name": f"c{i}", "image": image} for i, image in enumerate(list_)]
        for ctype, list_ in images.items()
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("case", admission_params("validate_workload"))
async def test_validate_workload(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], expected_of(case)
    assert not inputs["old_workload_images"]  # all cases are CREATEs
    command = ReviewCommand(
        uid="u",
        kind="Pod",
        operation="CREATE",
        namespace="ns",
        object=_pod(inputs["workload_images"]),
    )
    async with running_container(case_settings(case), extra_validators(case)) as container:
        verdict = await container.review_admission().execute(command)
    results = {v.image: v for v in verdict.images}
    assert set(results) == set(expected["results"])  # one result per distinct image
    for image, want in expected["results"].items():
        got = results[image]
        assert got.new_image == want["new_image"]
        assert got.mode == want["mode"]
        assert (got.category if not got.allowed else None) == want["error"]
    # insecureValidateOnly results are never patched.
    assert all(not v.patches for v in verdict.images if v.mode != "mutate")


@pytest.mark.parametrize("case", admission_params("static_validate"))
async def test_static_validate(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], expected_of(case)
    if "validator" in inputs:
        settings = load_validator_file(data_path(inputs["validator"])).validators[0]
    else:
        settings = build_settings(
            {
                "validators": [{"name": "s", "type": "static", "approve": inputs["approve"]}],
                "policy": [{"pattern": "*"}],
            },
            secrets_dir=data_path("auth"),
            env={},
        ).validators[0]
    validator = StaticValidator(settings)
    deadline = Deadline.after(FakeClock(frozen=True), 1.0)
    image = ImageReference.parse(inputs["image"])
    if not expected["ok"]:
        with pytest.raises(ConnaisseurError) as info:
            await validator.validate(image, RuleOptions(), deadline)
        assert info.value.category == expected["error"]
        return
    evidence = await validator.validate(image, RuleOptions(), deadline)
    assert (evidence.digest or "") == expected["digest"]


@pytest.mark.parametrize("case", admission_params("unchanged_approval"))
async def test_unchanged_approval(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], expected_of(case)
    settings = build_settings(
        {
            "validators": [{"name": "allow", "type": "static", "approve": True}],
            "policy": [{"pattern": "*", "validator": "mock"}],
        },
        secrets_dir=data_path("auth"),
        env=case_env(case),
    )
    mock = MockValidator("mock", "mock", "mock_allow")
    command = ReviewCommand(
        uid="u",
        kind="Pod",
        operation="UPDATE",
        namespace="ns",
        object=_pod({"containers": [inputs["image"]]}),
        old_object=_pod({"containers": list(inputs["previous_images"]) or ["unrelated:1"]}),
    )
    async with running_container(settings, [mock]) as container:
        verdict = await container.review_admission().execute(command)
    assert verdict.allowed
    approved = verdict.images[0].skipped is SkipReason.UNCHANGED
    assert approved is expected["approved"]
    assert (mock.calls == []) is expected["approved"]


# --- decoding -------------------------------------------------------------------------------


def _workload_view(w: Workload) -> dict[str, Any]:
    by_type: dict[str, list[str]] = {
        t: [] for t in ("containers", "initContainers", "ephemeralContainers")
    }
    for slot in w.slots:
        by_type[slot.type].append(slot.image)
    owners = [
        {"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "uid": o.uid}
        for o in w.owners
    ]
    return {
        "kind": w.kind,
        "name": w.name,
        "namespace": w.namespace,
        **by_type,
        "owners": owners,
        "deleted": w.deleted,
    }


def _expected_view(want: dict[str, Any]) -> dict[str, Any]:
    """Expected workload fields; container names are not part of our model, images are."""
    view = {
        k: v
        for k, v in want.items()
        if k not in ("containers", "initContainers", "ephemeralContainers")
    }
    for ctype in ("containers", "initContainers", "ephemeralContainers"):
        view[ctype] = [c["image"] for c in want.get(ctype, [])]
    return view


@pytest.mark.parametrize("case", admission_params("parse_workload"))
def test_parse_workload(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], expected_of(case)
    obj = object_from(inputs["object_from"])
    if not expected["ok"]:
        with pytest.raises(ConnaisseurError) as info:
            Workload.parse(inputs["kind"], obj, inputs["namespace"])
        assert info.value.category == expected["error"]
        return
    workload = Workload.parse(inputs["kind"], obj, inputs["namespace"])
    assert _workload_view(workload) == _expected_view(expected["workload"])


@pytest.mark.parametrize("case", admission_params("parse_request"))
async def test_parse_request(case: dict[str, Any]) -> None:
    expected = expected_of(case)
    document = read_json(case["inputs"]["admission_review"])
    if "uid" not in document["request"]:
        # Our envelope check: no uid is a 400 over HTTP. The component step runs with one.
        with pytest.raises(BadRequestError, match="uid"):
            parse_review(document, 29.0)
        document["request"]["uid"] = "test-uid"
    command, _ = parse_review(document, 29.0)
    if not expected["ok"]:
        async with running_container(
            case_settings({"inputs": {"config": "config/10_mutate_test.yaml"}})
        ) as c:
            verdict = await c.review_admission().execute(command)
        assert not verdict.allowed
        assert verdict.category == expected["error"]
        if command.operation == "UPDATE":  # the old object is decoded first
            assert (verdict.message or "").startswith("error decoding old workload object")
        return
    assert (command.operation, command.kind, command.namespace) == (
        expected["operation"],
        expected["kind"],
        expected["namespace"],
    )
    new = Workload.parse(command.kind, command.object, command.namespace)
    assert _workload_view(new) == _expected_view(expected["new_object"])
    old_want = expected["old_object"]
    if command.operation == "UPDATE":
        old = Workload.parse(command.kind, command.old_object, command.namespace)
        assert _workload_view(old) == _expected_view(old_want)
    else:
        assert not any(old_want[t] for t in ("containers", "initContainers", "ephemeralContainers"))


@pytest.mark.parametrize("case", admission_params("consolidate_containers", "image_set"))
def test_consolidate_containers(case: dict[str, Any]) -> None:
    expected = expected_of(case)
    workload = Workload.parse("Pod", _pod(case["inputs"]["workload_images"]))
    images = workload.images
    if case["op"] == "image_set":
        assert sorted(images) == sorted(expected["images_unordered"])
        assert len(images) == len(expected["images_unordered"])
        return
    by_image = {image: [[s.index, s.type] for s in slots] for image, slots in images.items()}
    assert by_image == expected["by_image"]


@pytest.mark.parametrize("case", admission_params("container_patch_path"))
def test_container_patch_path(case: dict[str, Any]) -> None:
    kind = case["inputs"]["kind"]
    template = case["expected"]["path_template"]
    workload = Workload(kind=kind, name="n", namespace="ns", slots=())
    for ctype in ("containers", "initContainers", "ephemeralContainers"):
        for index in (0, 3):
            path = workload.patch_path(ContainerSlot(ctype, index, "img"))
            assert path == template.format(list=ctype, index=index)


def test_every_admission_op_has_a_test() -> None:
    handled = {
        "http_mutate",
        "review",
        "validate_image_pipeline",
        "validate_workload",
        "static_validate",
        "parse_request",
        "parse_workload",
        "consolidate_containers",
        "container_patch_path",
        "image_set",
        "unchanged_approval",
    }
    assert {c["op"] for c in cases("admission")} <= handled | FEATURE_OPS
