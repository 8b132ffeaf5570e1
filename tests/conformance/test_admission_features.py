"""Conformance: admission cases of the operational features.

Covers the ``admission`` cases that exercise child approval (``child_approval``,
``parent_images``, review cases with ``kube_objects``), unchanged approval, the cache
(``skip_decision``, ``cache_before``/``cache_after``), alert notifications
(``notification_result``, ``http_mutate`` with ``alerting``), detection and pods-only modes and
the environment flags. The static/test-double admission harness lives in ``test_admission.py``.

Deliberate differences asserted here instead of the upstream behaviour:
* D5 — cache keys are the raw image *plus a hash of the effective rule and validator
  configuration*; ``cache_before`` seeds and ``cache_after`` checks use that key.
* D10 — child approval needs the owner's pod-template images to *equal* the child's images,
  all pinned to a digest.
* D11 — an UPDATE with unchanged images is admitted whatever verification says.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from dependency_injector import providers

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.kubernetes import AiohttpKubernetesApi, ServiceAccountToken
from connaisseur.application.alerting import AlertingSettings, Notifier, Receiver
from connaisseur.application.approval import ChildApproval
from connaisseur.application.caching import cache_key, fingerprint_hash, rule_fingerprint
from connaisseur.application.deadline import Deadline
from connaisseur.application.review import ReviewAdmission, ReviewCommand
from connaisseur.application.settings import Features, Settings
from connaisseur.application.validators import StaticValidator, Validator, build_validators
from connaisseur.application.verify import CachePolicy, VerifyImage, VerifyImageCommand
from connaisseur.config.container import build_container, make_child_approval
from connaisseur.config.env import apply_env
from connaisseur.config.loader import load_settings
from connaisseur.config.schema import AlertingSchema
from connaisseur.domain.alert_template import AlertTemplate
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import Policy
from connaisseur.domain.verdict import SkipReason
from connaisseur.domain.workload import OwnerReference, Workload
from tests.support.conformance import expected_of
from tests.support.fakes import FakeClock, FakeKubernetesApi, FakeMetrics, RecordingAlertSink
from tests.support.feature_doubles import (
    MockValidator,
    Received,
    UpstreamFormatCache,
    kube_api_app,
    receiver_app,
)
from tests.support.servers import serving
from tests.support.tls import make_tls, server_context
from tests.support.webhook import webhook_client

DATA = Path(__file__).parent / "data"
MANIFEST = yaml.safe_load((DATA / "cases.yaml").read_text())
CASES = MANIFEST["cases"]
MOCK_TABLE = MANIFEST["test_doubles"]["validators"]["mock_table"]["table"]


def select(op: str, predicate: Callable[[dict[str, Any]], bool] = lambda c: True) -> list[Any]:
    return [
        pytest.param(c, id=c["id"])
        for c in CASES
        if c["area"] == "admission" and c["op"] == op and predicate(c)
    ]


# --- child approval, unchanged approval ------------------------------------------------------


def _child_images(case: dict[str, Any]) -> list[str]:
    return [case["inputs"]["image"]]


@pytest.mark.parametrize("case", select("child_approval"))
async def test_child_approval(case: dict[str, Any]) -> None:
    """Child approval decision for one image, given the parents' images.

    D10: approval needs the owner's images to equal the child's, pinned to a digest;
    admission-074 (owner with three images, child with one of them) is therefore *not*
    approved here, and the upstream approvals are asserted again with pinned images.
    """
    inputs = case["inputs"]
    expected = expected_of(case)["approved"]
    if case["id"] == "admission-074":
        expected = False  # D10: the owner's images {abc, image, def} differ from the child's
    assert await _child_approved(case, inputs["parent_images"], _child_images(case)) is expected
    if case["expected"]["approved"] and case["id"] != "admission-074":
        pinned = [f"{image}@{_SOME_DIGEST}" for image in inputs["parent_images"]]
        assert await _child_approved(case, pinned, [f"{_child_images(case)[0]}@{_SOME_DIGEST}"])


_SOME_DIGEST = "sha256:" + "12" * 32


async def _child_approved(case: dict[str, Any], parent: list[str], images: list[str]) -> bool:
    features = apply_env(Features(), case["inputs"]["env"])
    review = ReviewAdmission(
        _verify_with(MockValidator("default", "mock", "mock_deny")),
        features,
        FakeClock(),
        FakeMetrics(),
        child_approval=ChildApproval(FakeKubernetesApi([_replica_set("owner", parent)])),
    )
    verdict = await review.execute(_command(_workload(images, owners=1)))
    if verdict.allowed:
        assert verdict.images[0].skipped is SkipReason.CHILD
    return verdict.allowed


@pytest.mark.parametrize("case", select("unchanged_approval"))
async def test_unchanged_approval(case: dict[str, Any]) -> None:
    inputs = case["inputs"]
    features = apply_env(Features(), inputs["env"])
    validator = MockValidator("default", "mock", "mock_deny")
    review = ReviewAdmission(_verify_with(validator), features, FakeClock(), FakeMetrics())
    new = _pod([inputs["image"]])
    old = _pod(inputs["previous_images"] or ["unrelated:image"])
    command = ReviewCommand(
        uid="u", kind="Pod", operation="UPDATE", namespace="ns", object=new, old_object=old
    )
    verdict = await review.execute(command)
    expected = expected_of(case)
    assert verdict.allowed is expected.get("allowed", expected["approved"])
    assert (validator.calls == []) is expected["approved"]


# --- parent images through the real Kubernetes API adapter ---------------------------------


@pytest.fixture(scope="module")
def kube_tls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_tls(tmp_path_factory.mktemp("kube-tls"))


async def _kube_adapter(url: str, tls: Any, tmp_path: Path, session: Any) -> AiohttpKubernetesApi:
    token = tmp_path / "token"
    token.write_text("test-token\n")
    return AiohttpKubernetesApi(HttpClient(session), url, ServiceAccountToken(token), tls.ca_pem)


@pytest.mark.parametrize("case", select("parent_images"))
async def test_parent_images(case: dict[str, Any], kube_tls: Any, tmp_path: Path) -> None:
    """Owner images as read from a local HTTPS server answering like the API server."""
    import aiohttp

    inputs = case["inputs"]
    child = Workload(
        kind=inputs["child"]["kind"],
        name="child",
        namespace=inputs["child"]["namespace"],
        slots=(),
        owners=tuple(
            OwnerReference(
                api_version=o["apiVersion"], kind=o["kind"], name=o["name"], uid=o["uid"]
            )
            for o in inputs["child"]["owners"]
        ),
    )
    deadline = Deadline.after(FakeClock(), 5)
    if "kube_objects" not in inputs:
        # No Kubernetes API: the composition root builds no ChildApproval at all.
        settings = replace(load_settings(), features=Features(automatic_child_approval=True))
        assert settings.infra.kube_host is None
        assert make_child_approval(settings, http=None) is None  # type: ignore[arg-type]
        return
    requests: list[tuple[str, str]] = []
    context = server_context(kube_tls.cert_file, kube_tls.key_file)
    async with (
        serving(kube_api_app(inputs["kube_objects"], requests), context) as url,
        aiohttp.ClientSession() as session,
    ):
        api = await _kube_adapter(url, kube_tls, tmp_path, session)
        images = await ChildApproval(api).parent_images(child, deadline)
    assert images == expected_of(case)["images"]
    assert all(auth == "Bearer test-token" for _, auth in requests)


# --- the cache: skip decisions ---------------------------------------------------------------


@pytest.mark.parametrize("case", select("skip_decision"))
async def test_skip_decision(case: dict[str, Any]) -> None:
    """Order unchanged → child → cache; cached digests pin, cached errors deny, junk misses."""
    inputs, expected = case["inputs"], expected_of(case)
    features = apply_env(Features(), inputs.get("env", {}))
    validator = MockValidator("default", "mock", "mock_allow")
    verify, cache = _verify_with_cache(validator)
    for raw, value in inputs["cache_before"].items():
        cache.seed(raw, value)
    for raw in inputs.get("cache_read_fails_for", []):
        cache.failing.add(cache.key_of(raw))
    image = inputs["image"]
    unchanged = (
        frozenset(inputs["previous_images"])
        if features.automatic_unchanged_approval
        else frozenset()
    )
    command = VerifyImageCommand(
        image=image,
        approved_images=unchanged,
        approval_reason=SkipReason.UNCHANGED if unchanged else None,
    )
    verdict = await verify.execute(command, Deadline.after(FakeClock(), 5))
    skipped = verdict.skipped is not None
    assert skipped is expected["skip"]
    assert (validator.calls == []) is expected["skip"]
    if not skipped:
        return
    assert str(verdict.skipped) == expected["reason"]
    if expected.get("cached_error"):
        assert not verdict.allowed
        assert verdict.message == expected["cached_error"]
    elif expected["digest"].startswith("sha256:"):
        assert verdict.allowed
        assert verdict.digest == expected["digest"]
    elif expected["digest"]:
        # A cached "digest" that is a whole reference fails the final format check of the patch.
        assert not verdict.allowed
        assert verdict.category == "invalid_reference"


# --- review cases: cache, approvals, notifications -------------------------------------------


@pytest.mark.parametrize("case", select("review"))
async def test_review_features(case: dict[str, Any], kube_tls: Any, tmp_path: Path) -> None:
    """Cache contents after the request, the notification sent, approvals via the API."""
    import aiohttp

    inputs, expected = case["inputs"], expected_of(case)
    env = inputs.get("env") or {}
    settings = load_settings(DATA / inputs["config"], env=env)
    doubles = _extra_validators(inputs)
    verify, cache = _verify_with_cache(*doubles, settings=settings)
    for raw, value in inputs["cache_before"].items():
        cache.seed(raw, value)
    sink = RecordingAlertSink()
    notifier = Notifier(_alerting_to_record(), sink, FakeClock())
    review_doc = json.loads((DATA / inputs["admission_review"]).read_text())
    command = _command_from(review_doc["request"], inputs.get("deadline"))
    async with aiohttp.ClientSession() as session:
        approval = None
        if "kube_objects" in inputs:
            context = server_context(kube_tls.cert_file, kube_tls.key_file)
            async with serving(kube_api_app(inputs["kube_objects"], []), context) as url:
                api = await _kube_adapter(url, kube_tls, tmp_path, session)
                approval = ChildApproval(api)
                review = ReviewAdmission(
                    verify, settings.features, FakeClock(), FakeMetrics(), approval, notifier
                )
                verdict = await review.execute(command)
        else:
            review = ReviewAdmission(
                verify, settings.features, FakeClock(), FakeMetrics(), None, notifier
            )
            verdict = await review.execute(command)

    assert verdict.allowed is expected["allowed"]
    if "deny_category" in expected:
        assert str(verdict.category) == expected["deny_category"]
    if "message_contains" in expected:
        assert expected["message_contains"] in (verdict.message or "")
    _assert_patch(verdict, expected)
    assert str(verdict.outcome) == expected["notification_result"]
    assert len(sink.messages) == 1
    assert sink.messages[0].startswith(_ALERT_TEXT[expected["notification_result"]](command.uid))
    if "cache_after" in expected:
        _assert_cache_after(verify, cache, expected["cache_after"], inputs["cache_before"])


_ALERT_TEXT: dict[str, Callable[[str], str]] = {
    "success": lambda uid: "admit:CONNAISSEUR admitted a request",
    "skip": lambda uid: "admit:CONNAISSEUR admitted a request",
    "error": lambda uid: "reject:CONNAISSEUR rejected a request",
    "timeout": lambda uid: f"reject:CONNAISSEUR validation timed out for admission request {uid}",
    "invalid": lambda uid: f"reject:CONNAISSEUR failed to parse admission request {uid}",
}


def _assert_patch(verdict: Any, expected: Mapping[str, Any]) -> None:
    ops = [{"op": "replace", "path": p.path, "value": p.value} for p in verdict.patch]
    if "patch" in expected:
        assert ops == (expected["patch"] or [])
    if "patch_unordered" in expected:
        key = json.dumps
        assert sorted(map(key, ops)) == sorted(map(key, expected["patch_unordered"]))


def _assert_cache_after(
    verify: VerifyImage,
    cache: UpstreamFormatCache,
    expected: Mapping[str, Any],
    before: Mapping[str, Any],
) -> None:
    """D5: entries live under raw image + configuration hash; only definitive results."""
    keys = {cache.key_of(raw): raw for raw in expected}
    assert set(cache.stored) == set(keys)
    for key, raw in keys.items():
        stored, want = cache.stored[key], expected[raw]
        assert (stored.digest or "") == want["digest"]
        if "error_contains" in want:
            assert want["error_contains"] in (stored.message or "")
        else:
            assert not stored.message


# --- http_mutate: modes, env flags and alerting through the webhook ---------------------------

_HTTP_FEATURE_CASES = {
    "admission-009",
    "admission-010",
    "admission-012",
    "admission-013",
    "admission-014",
    "admission-015",
    "admission-016",
    "admission-017",
    "admission-018",
}


@pytest.mark.parametrize("case", select("http_mutate", lambda c: c["id"] in _HTTP_FEATURE_CASES))
async def test_http_mutate_features(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], expected_of(case)
    received: list[Received] = []
    async with serving(receiver_app(received)) as receiver_url:
        settings = _webhook_settings(inputs, receiver_url)
        container = build_container(settings)
        container.validators.override(providers.Object(_all_validators(settings, inputs)))
        async with webhook_client(container) as client:
            request = inputs["request"]
            body = (DATA / request["body_file"]).read_bytes()
            resp = await client.post(
                "/mutate", data=body, headers={"Content-Type": request["content_type"]}
            )
            assert resp.status == expected["http_status"]
            answer = (await resp.json())["response"]
            metrics = container.metrics().exposition().decode()
    assert answer["allowed"] is expected.get("allowed", answer["allowed"])
    if "deny_category" in expected:
        assert answer["status"]["reason"] == expected["deny_category"]
    if expected.get("patch", "absent") is None:
        assert "patch" not in answer
    warnings = answer.get("warnings", [])
    for text in expected.get("warnings_contain", []):
        assert text in warnings
    for text in expected.get("warnings_not_contain", []):
        assert text not in warnings
    if "webhook_last_body" in expected:
        assert received[-1].body.decode() == expected["webhook_last_body"]
    for metric, value in (case.get("metrics_optional") or {}).items():
        name = metric.replace("{timeout=false}", '{timeout="false"}')
        if value or "{" not in name:
            assert f"{name} {float(value)}" in metrics
        else:  # a labelled counter never incremented is not exposed at all
            assert f"{name} {float(value)}" in metrics or name not in metrics


def _webhook_settings(inputs: Mapping[str, Any], receiver_url: str) -> Settings:
    settings = load_settings(DATA / inputs["config"], env=inputs.get("env") or {})
    raw = yaml.safe_load((DATA / inputs["alerting"]).read_text()) or {}
    alerting = AlertingSchema().load(raw) if raw else None
    if alerting:
        for section in ("admitRequest", "rejectRequest"):
            for receiver in (alerting.get(section) or {}).get("receivers", []):
                receiver["receiverUrl"] = receiver_url
    infra = replace(settings.infra, alert_templates_dir=str(DATA / "alerts"))
    return replace(settings, alerting=alerting, infra=infra)


def _all_validators(settings: Settings, inputs: Mapping[str, Any]) -> dict[str, Validator]:
    validators = build_validators(settings.validators, {"static": StaticValidator})
    validators.update({v.name: v for v in _extra_validators(inputs)})
    return validators


# --- validation metrics -------------------------------------------------------------------


@pytest.mark.parametrize("case", select("validation_metrics"))
async def test_validation_metrics(case: dict[str, Any]) -> None:
    """Per-validator results and skip reasons, with the cache and unchanged approval."""
    inputs = case["inputs"]
    settings = load_settings(DATA / inputs["config"], env=inputs["env"])
    metrics = FakeMetrics()
    doubles = _extra_validators(inputs)
    verify, cache = _verify_with_cache(*doubles, settings=settings, metrics=metrics)
    for raw, value in inputs["cache_before"].items():
        cache.seed(raw, value)
    review = ReviewAdmission(verify, settings.features, FakeClock(), metrics)
    new = _pod_from_types(inputs["workload_images"])
    old = _pod_from_types(inputs["old_workload_images"])
    await review.execute(
        ReviewCommand(
            uid="u", kind="Pod", operation="UPDATE", namespace="n", object=new, old_object=old
        )
    )
    for label, count in expected_of(case)["counts"].items():
        kind, _, rest = label.partition("{")
        parts = dict(p.split("=", 1) for p in rest.rstrip("}").split(","))
        if kind == "skipped":
            got = metrics.skips.count((parts["type"], parts["validator"], parts["reason"]))
        else:
            got = metrics.validation_results()[(parts["type"], parts["validator"], parts["result"])]
        assert got == count, label


# --- helpers --------------------------------------------------------------------------------


def _replica_set(name: str, images: list[str]) -> dict[str, Any]:
    """ReplicaSet ``name`` in namespace ``ns`` (UID ``uid-<name>``) whose pods run ``images``."""
    containers = [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def _alerting_to_record() -> AlertingSettings:
    def receiver(prefix: str) -> Receiver:
        template = AlertTemplate.parse(prefix, '{"m": "' + prefix + ':{{ alert_message }}"}')
        return Receiver(
            name=f"{prefix}-0", template=template, url="http://x", fail_if_sending_fails=True
        )

    return AlertingSettings(admit=(receiver("admit"),), reject=(receiver("reject"),))


def _pod(images: list[str], owners: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "ns"}
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "owner", "uid": "uid-owner"}
        ]
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(images)]},
    }


def _pod_from_types(types: Mapping[str, list[str]]) -> dict[str, Any]:
    spec = {
        ctype: [{"name": f"{ctype}{i}", "image": im} for i, im in enumerate(images)]
        for ctype, images in types.items()
    }
    return {"metadata": {"name": "p"}, "spec": spec}


def _workload(images: list[str], owners: int = 0) -> dict[str, Any]:
    return _pod(images, owners)


def _command(obj: dict[str, Any]) -> ReviewCommand:
    return ReviewCommand(uid="u", kind="Pod", operation="CREATE", namespace="ns", object=obj)


def _command_from(request: Mapping[str, Any], deadline: str | None) -> ReviewCommand:
    return ReviewCommand(
        uid=request["uid"],
        kind=request["kind"]["kind"],
        operation=request["operation"],
        namespace=request.get("namespace") or "",
        object=request.get("object"),
        old_object=request.get("oldObject"),
        budget_seconds=0.0 if deadline == "already_expired" else 5.0,
    )


def _extra_validators(inputs: Mapping[str, Any]) -> list[MockValidator]:
    return [
        MockValidator(v["name"], v["type"], v["behaviour"], MOCK_TABLE)
        for v in inputs.get("extra_validators") or []
    ]


def _verify_with(*validators: MockValidator) -> VerifyImage:
    from connaisseur.domain.policy import Rule

    policy = Policy((Rule(pattern="*", validator=validators[0].name),))
    return VerifyImage(policy, {v.name: v for v in validators}, FakeMetrics())


def _verify_with_cache(
    *doubles: MockValidator, settings: Settings | None = None, metrics: FakeMetrics | None = None
) -> tuple[VerifyImage, UpstreamFormatCache]:
    from connaisseur.domain.policy import Rule

    if settings is None:
        policy = Policy((Rule(pattern="*", validator=doubles[0].name),))
        validators: dict[str, Validator] = {v.name: v for v in doubles}
        fingerprints: dict[str, str] = {}
    else:
        policy = settings.policy
        validators = build_validators(settings.validators, {"static": StaticValidator})
        validators.update({v.name: v for v in doubles})
        fingerprints = {v.name: fingerprint_hash(v.fingerprint()) for v in settings.validators}
    cache = UpstreamFormatCache(functools.partial(_key_under, policy, fingerprints))
    caching = CachePolicy(
        cache=cache,
        ttl_seconds=30,
        cache_errors=settings.features.cache_errors if settings else True,
        validator_fingerprints=fingerprints,
    )
    verify = VerifyImage(policy, validators, metrics or FakeMetrics(), caching)
    return verify, cache


def _key_under(policy: Policy, fingerprints: Mapping[str, str], raw: str) -> str:
    """Our cache key for ``raw`` under ``policy`` and these validator configurations (D5),
    computed from the public caching functions the use case composes."""
    rule = policy.match(ImageReference.parse(raw).name)
    return cache_key(raw, rule_fingerprint(rule, fingerprints.get(rule.validator or "default", "")))
