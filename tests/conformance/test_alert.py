"""Conformance: every ``alert`` case (loading, validation, rendering, sending, evaluation).

Differences from Connaisseur, on purpose (named in the assertions):
* templates are parsed when the configuration is loaded, so a missing or broken template, an
  unknown placeholder, a header without ``:`` or a URL that is not http(s) stop start-up
  (``config_invalid`` / ``template_error`` at load) instead of failing each request;
* ``go_internal`` cases (Go-template rewriting) are informative: we check the observable part —
  that the same templates render (or fail) as the rewritten Go template would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from marshmallow import ValidationError

from connaisseur.adapters.alerts import AiohttpAlertSink
from connaisseur.adapters.http import HttpClient
from connaisseur.application.alerting import AlertContext, AlertingSettings, Notifier, Receiver
from connaisseur.application.deadline import Deadline
from connaisseur.config.alerting import build_alerting, load_template, parse_headers, template_dirs
from connaisseur.config.schema import AlertingSchema
from connaisseur.domain.alert_template import AlertTemplate, payload_body
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.verdict import Outcome
from tests.support.fakes import FakeClock
from tests.support.feature_doubles import Received, receiver_app
from tests.support.servers import serving

DATA = Path(__file__).parent / "data"
CASES = [
    c for c in yaml.safe_load((DATA / "cases.yaml").read_text())["cases"] if c["area"] == "alert"
]


def cases(*ops: str) -> list[Any]:
    return [pytest.param(c, id=c["id"]) for c in CASES if c["op"] in ops]


def _dirs(inputs: dict[str, Any]) -> tuple[Path, ...]:
    return template_dirs(DATA / inputs.get("templates_dir", inputs.get("alerting_dir", "alerts")))


def _refused_as_expected(case: dict[str, Any]) -> bool:
    """True when the case expects its template refused, after checking that it is (with the
    expected category)."""
    inputs, expected = case["inputs"], case["expected"]
    if expected["ok"]:
        return False
    with pytest.raises(ConnaisseurError) as info:
        load_template(inputs["template"], _dirs(inputs))
    assert info.value.category == expected["error"]
    return True


def _load_file(inputs: dict[str, Any]) -> AlertingSettings | None:
    """Read an alerting file inside ``alerting_dir`` (paths leaving it refused), as at start-up."""
    root = (DATA / inputs["alerting_dir"]).resolve()
    path = (root / inputs["file"]).resolve()
    if not path.is_relative_to(root):
        raise ConnaisseurError(
            "alerting file outside the alerting directory", category=Category.CONFIG_INVALID
        )
    try:
        raw = yaml.safe_load(path.read_text())
        data = AlertingSchema().load(raw)
    except (OSError, ValidationError) as e:
        raise ConnaisseurError(str(e), category="config_invalid") from e  # type: ignore[arg-type]
    return build_alerting(data, _dirs(inputs))


@pytest.mark.parametrize("case", cases("load_alerting"))
def test_load_alerting(case: dict[str, Any]) -> None:
    expected = case["expected"]
    if not expected["ok"]:
        with pytest.raises(ConnaisseurError) as info:
            _load_file(case["inputs"])
        assert info.value.category == expected["error"]
        return
    settings = _load_file(case["inputs"])
    assert settings is not None
    assert settings.cluster == expected["cluster_identifier"]
    assert [r.name for r in settings.admit] == expected["admit_receivers"]
    assert [r.name for r in settings.reject] == expected["reject_receivers"]


@pytest.mark.parametrize("case", cases("validate_alerting"))
def test_validate_alerting(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AlertingSchema().load(case["inputs"]["alerting_inline"])
    assert case["expected"]["error"] == "config_invalid"


@pytest.mark.parametrize("case", cases("transform_template"))
def test_transform_template(case: dict[str, Any]) -> None:
    """go_internal: the Go rewrite either parses (we render it) or not (we refuse it)."""
    if _refused_as_expected(case):
        return
    inputs, expected = case["inputs"], case["expected"]
    go_parses = "{{{" not in expected["text"]
    if go_parses:
        load_template(inputs["template"], _dirs(inputs))
    else:
        with pytest.raises(ConnaisseurError, match=r'unexpected "\{"'):
            load_template(inputs["template"], _dirs(inputs))


@pytest.mark.parametrize("case", cases("merge_payload_fields"))
def test_merge_payload_fields(case: dict[str, Any]) -> None:
    inputs = case["inputs"]
    text = (DATA / inputs["templates_dir"] / f"{inputs['template']}.json").read_text()
    body = payload_body(inputs["template"], text, inputs["payload_fields"])
    # The Go-internal form keeps "{{ .CamelName }}"; rendering the raw text keeps
    # "{{ snake_name }}" — compare after mapping placeholders back.
    expected = json.loads(case["expected"]["json"])
    got = json.loads(body or b"{}")
    assert sorted(got) == sorted(expected)
    assert [got[k] for k in ("responders", "tags", "visibleTo")] == [
        expected[k] for k in ("responders", "tags", "visibleTo")
    ]
    assert (body or b"").decode() == json.dumps(got, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("case", cases("render_notification"))
def test_render_notification(case: dict[str, Any]) -> None:
    if _refused_as_expected(case):
        return
    inputs, expected = case["inputs"], case["expected"]
    template = load_template(inputs["template"], _dirs(inputs))
    body = template.payload(inputs["values"], inputs["payload_fields"])
    assert (body or b"").decode() == expected["body"]


def _receiver(channel: dict[str, Any], url: str, inputs: dict[str, Any]) -> Receiver:
    target = channel["receiverUrl"].replace("<webhook URL>", url)
    return Receiver(
        name=f"{channel['template']}-0",
        template=load_template(channel["template"], _dirs(inputs)),
        url=target,
        priority=channel.get("priority", 3),
        headers=parse_headers(channel.get("customHeaders") or ()),
        fail_if_sending_fails=channel["failIfAlertSendingFails"],
    )


@pytest.mark.parametrize("case", cases("send_notification"))
async def test_send_notification(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], case["expected"]
    received: list[Received] = []
    async with serving(receiver_app(received)) as url, aiohttp.ClientSession() as session:
        load_error = _load_error(lambda: _checked_receiver(inputs, url))
        if load_error is not None:
            # Difference: caught at load (config_invalid / template_error), never sent.
            assert not expected["ok"]
            assert load_error.category in (expected["error"], "config_invalid")
            assert received == []
            return
        receiver = _receiver(inputs["channel"], url, inputs)
        settings = AlertingSettings(
            admit=(receiver,), pod_name=inputs["values"].get("connaisseur_pod_id", "")
        )
        notifier = Notifier(settings, AiohttpAlertSink(HttpClient(session)), FakeClock())
        context = AlertContext(
            uid="u", namespace="n", outcome=Outcome.SUCCESS, message="m", images=""
        )
        deadline = Deadline.after(FakeClock(), 5)
        if expected["ok"]:
            await notifier.notify(context, deadline)
        else:
            with pytest.raises(ConnaisseurError) as info:
                await notifier.notify(context, deadline)
            assert info.value.category == expected["error"]
            # The receiver that failed is named (the upstream quirk named the loop position).
            assert receiver.name in info.value.message
    if "webhook_calls" in expected:
        assert len(received) == expected["webhook_calls"]
    if expected.get("webhook_body"):
        assert received[-1].body.decode() == expected["webhook_body"]
    for name, value in (expected.get("webhook_headers") or {}).items():
        assert received[-1].headers.get(name) == value


@pytest.mark.parametrize("case", cases("eval_and_send"))
async def test_eval_and_send(case: dict[str, Any]) -> None:
    inputs, expected = case["inputs"], case["expected"]
    received: list[Received] = []
    async with serving(receiver_app(received)) as url, aiohttp.ClientSession() as session:
        load_error = _load_error(lambda: _load_file(inputs))
        if load_error is not None:
            # Difference: a missing template is found at start-up, not per request.
            assert load_error.category == "config_invalid"
            assert expected["error"] == "template_error"
            problems = " ".join(getattr(load_error, "problems", [load_error.message]))
            assert "unable to get template file" in problems
            return
        loaded = _load_file(inputs)
        assert loaded is not None
        settings = AlertingSettings(
            cluster=loaded.cluster,
            admit=tuple(_retarget(r, url) for r in loaded.admit),
            reject=tuple(_retarget(r, url) for r in loaded.reject),
        )
        notifier = Notifier(settings, AiohttpAlertSink(HttpClient(session)), FakeClock())
        values = inputs["values"]
        outcome = Outcome(values["result"])
        message = (
            "CONNAISSEUR admitted a request"
            if outcome in (Outcome.SUCCESS, Outcome.SKIP)
            else f"CONNAISSEUR rejected a request: {values.get('error', '')}"
        )
        context = AlertContext(uid="u", namespace="n", outcome=outcome, message=message, images="")
        budget = 0.0 if inputs.get("deadline") == "already_expired" else 5.0
        deadline = Deadline.after(FakeClock(), budget)
        if not expected["ok"]:
            with pytest.raises(ConnaisseurError) as info:
                await notifier.notify(context, deadline)
            assert info.value.category == expected["error"]
            return
        await notifier.notify(context, deadline)
    assert len(received) == expected["webhook_calls"]
    bodies = [r.body.decode() for r in received]
    if "webhook_body" in expected:
        assert bodies[-1] == expected["webhook_body"]
    if "webhook_bodies_unordered" in expected:
        assert sorted(bodies) == sorted(expected["webhook_bodies_unordered"])


def _load_error(load: Any) -> ConnaisseurError | None:
    try:
        load()
    except ConnaisseurError as e:
        return e
    return None


def _checked_receiver(inputs: dict[str, Any], url: str) -> None:
    receiver = _receiver(inputs["channel"], url, inputs)
    channel = {**inputs["channel"], "receiverUrl": receiver.url}
    build_alerting({"admitRequest": {"receivers": [channel]}}, _dirs(inputs))


def _retarget(receiver: Receiver, url: str) -> Receiver:
    from dataclasses import replace

    return replace(receiver, url=url)


def test_every_alert_case_is_run() -> None:
    ops = {c["op"] for c in CASES}
    assert ops == {
        "load_alerting",
        "validate_alerting",
        "transform_template",
        "merge_payload_fields",
        "render_notification",
        "send_notification",
        "eval_and_send",
    }


def test_template_values_cannot_break_out_of_json_strings() -> None:
    template = AlertTemplate.parse("t", '{"m": "{{ alert_message }}", "p": {{ priority }}}')
    body = template.payload({"alert_message": 'x", "injected": "1', "priority": 2})
    assert json.loads(body or b"") == {"m": 'x", "injected": "1', "p": 2}
