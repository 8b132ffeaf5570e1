"""End to end through the HTTPS webhook: each operational feature, one AdmissionReview at a time.

The real aiohttp server is served with TLS in-process (``webhook_server`` + ``TCPSite``) and
composed by ``build_container`` from a configuration file and environment variables, as
``connaisseur serve`` does; only the non-static validators are test doubles. The Kubernetes API
and the alert receiver are local HTTP(S) servers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, Unpack

import aiohttp
import pytest
from aiohttp import web
from dependency_injector import providers

from connaisseur.application.validators import StaticValidator, build_validators
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import load_settings
from connaisseur.entrypoints.webhook import webhook_server
from tests.support.feature_doubles import (
    MockValidator,
    Received,
    kube_api_app,
    receiver_app,
)
from tests.support.servers import free_port, serving
from tests.support.tls import TlsFiles, make_tls, server_context

DATA = Path(__file__).parents[1] / "conformance" / "data"
CONFIG = """
validators:
  - {name: allow, type: static, approve: true}
  - {name: deny, type: static, approve: false}
policy:
  - {pattern: "*:*", validator: signed}
  - {pattern: "my.reg/deny-me", validator: deny}
  - {pattern: "my.reg/allow-me", validator: allow}
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


class InfraOverrides(TypedDict, total=False):
    """The ``Infrastructure`` fields a test may set (files the webhook reads at start-up)."""

    kube_token_file: str
    kube_ca_file: str


class Webhook:
    def __init__(self, url: str, session: aiohttp.ClientSession, container: Any) -> None:
        self.url = url
        self.session = session
        self.container = container

    async def review(self, name: str, mutate: Any = None) -> dict[str, Any]:
        document = json.loads((DATA / "admission_requests" / name).read_text())
        if mutate is not None:
            mutate(document["request"])
        async with self.session.post(f"{self.url}/mutate?timeout=10s", json=document) as resp:
            assert resp.status == 200
            body: dict[str, Any] = (await resp.json())["response"]
            return body

    async def metrics(self) -> str:
        async with self.session.get(f"{self.url}/metrics") as resp:
            return await resp.text()


@pytest.fixture
async def start(tls: TlsFiles, tmp_path: Path) -> AsyncIterator[Any]:
    """``await start(env=..., alerting=...)`` → a running :class:`Webhook` and its double."""
    runners: list[web.ServerRunner] = []
    sessions: list[aiohttp.ClientSession] = []
    stack = contextlib.AsyncExitStack()

    async def run(
        env: Mapping[str, str] | None = None,
        behaviour: str = "signed",
        alerting: dict[str, Any] | None = None,
        **infra: Unpack[InfraOverrides],
    ) -> tuple[Webhook, MockValidator]:
        config = tmp_path / "config.yaml"
        config.write_text(CONFIG)
        settings = load_settings(config, env=dict(env or {}))
        settings = replace(settings, alerting=alerting, infra=replace(settings.infra, **infra))
        container = build_container(settings)
        signed = MockValidator("signed", "cosign", behaviour)
        validators = build_validators(settings.validators, {"static": StaticValidator})
        validators["signed"] = signed
        container.validators.override(providers.Object(validators))
        await stack.enter_async_context(running(container))
        runner = web.ServerRunner(webhook_server(container))
        await runner.setup()
        runners.append(runner)
        port = free_port()
        server_ctx = server_context(tls.cert_file, tls.key_file)
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ctx).start()
        client_ctx = ssl.create_default_context(cadata=tls.ca_pem)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx))
        sessions.append(session)
        return Webhook(f"https://127.0.0.1:{port}", session, container), signed

    yield run
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()
    await stack.aclose()  # the webhooks' outbound sessions, after their servers


async def test_child_approval_through_the_kubernetes_api(
    start: Any, tls: TlsFiles, tmp_path: Path
) -> None:
    """D10: a Pod whose ReplicaSet (same UID) carries the same images skips verification."""
    token = tmp_path / "token"
    token.write_text("test-token")
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "charlie-deployment-76fbf58b7d",
        "namespace": "test-connaisseur",
        "uid": "090d26f8-1812-11ea-b3fc-02897404852e",
        "containers": [
            "securesystemsengineering/charlie-image@sha256:"
            "91ac9b26df583762234c1cdb2fc930364754ccc59bc752a2bfe298d2ea68f9ff"
        ],
    }
    requests: list[tuple[str, str]] = []
    kube_ctx = server_context(tls.cert_file, tls.key_file)
    async with serving(kube_api_app([owner], requests), kube_ctx) as kube_url:
        port = kube_url.rsplit(":", 1)[1]
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}
        webhook, signed = await start(
            env=env,
            behaviour="mock_deny",
            kube_token_file=str(token),
            kube_ca_file=str(tls.ca_file),
        )
        approved = await webhook.review("02_pod.json")
        assert approved["allowed"] is True
        assert "patch" not in approved
        assert signed.calls == []

        def other_uid(request: dict[str, Any]) -> None:
            request["object"]["metadata"]["ownerReferences"][0]["uid"] = "another-uid"

        refused = await webhook.review("02_pod.json", other_uid)
        assert refused["allowed"] is False  # verified normally, and the double denies
        assert len(signed.calls) == 1
    assert requests[0][0].endswith(
        "/namespaces/test-connaisseur/replicasets/charlie-deployment-76fbf58b7d"
    )
    metrics = await webhook.metrics()
    assert 'reason="automatic approval of child image reference"' in metrics


async def test_unchanged_approval(start: Any) -> None:
    webhook, signed = await start(env={"AUTOMATIC_UNCHANGED_APPROVAL": "true"})
    answer = await webhook.review("10_update.json")
    assert answer["allowed"] is True
    assert "patch" not in answer
    assert signed.calls == []
    webhook_off, signed_off = await start(env={"AUTOMATIC_UNCHANGED_APPROVAL": "false"})
    answer = await webhook_off.review("10_update.json")
    assert answer["allowed"] is True
    assert "patch" not in answer  # verified; the reference already carries its digest
    assert len(signed_off.calls) == 1


async def test_unchanged_update_of_a_denied_image_is_admitted_with_a_warning(start: Any) -> None:
    """D11 (docs/decisions/0011-lifecycle-updates.md) over HTTPS: a label change of a Pod whose
    image is denied today is admitted, and the warning says why it would be denied; adding a
    container in the same UPDATE is denied."""
    webhook, _ = await start()

    def relabel(request: dict[str, Any]) -> None:
        request["operation"] = "UPDATE"
        request["oldObject"] = copy.deepcopy(request["object"])
        request["object"]["metadata"]["labels"]["incident"] = "2026-42"

    answer = await webhook.review("17_deny_me_pod.json", relabel)
    assert answer["allowed"] is True
    assert "patch" not in answer
    assert answer["warnings"][0] == "images unchanged: admitted without enforcing verification"
    assert "static_deny" in answer["warnings"][1]

    def add_container(request: dict[str, Any]) -> None:
        relabel(request)
        containers = request["object"]["spec"]["containers"]
        containers.append({**containers[0], "name": "second"})

    answer = await webhook.review("17_deny_me_pod.json", add_container)
    assert answer["allowed"] is False
    assert "warnings" not in answer


async def test_detection_mode(start: Any) -> None:
    webhook, _ = await start(env={"DETECTION_MODE": "true"})
    answer = await webhook.review("17_deny_me_pod.json")
    assert answer["allowed"] is True
    assert answer["warnings"][0] == "detection mode active"
    assert "static deny" in answer["warnings"][1]
    assert "connaisseur_requests_admitted_total 1.0" in await webhook.metrics()


async def test_pods_only_mode(start: Any) -> None:
    webhook, _ = await start(env={"RESOURCE_VALIDATION_MODE": "podsOnly"})
    job = await webhook.review("14_deny_me_job.json")
    assert job["allowed"] is True
    assert job["warnings"][0] == "pod-only validation active"
    pod = await webhook.review("17_deny_me_pod.json")
    assert pod["allowed"] is False


async def test_cache_serves_the_second_request(start: Any) -> None:
    webhook, signed = await start()
    first = await webhook.review("01_deployment.json")
    second = await webhook.review("01_deployment.json")
    assert first["patch"] == second["patch"]
    assert len(signed.calls) == 1
    metrics = await webhook.metrics()
    assert 'connaisseur_cache_lookups_total{result="hit"} 1.0' in metrics
    assert 'reason="cache hit"' in metrics


async def test_cache_disabled_by_expiry_zero(start: Any) -> None:
    webhook, signed = await start(env={"CACHE_EXPIRY_SECONDS": "0"})
    await webhook.review("01_deployment.json")
    await webhook.review("01_deployment.json")
    assert len(signed.calls) == 2


async def test_transient_failures_are_not_cached(start: Any) -> None:
    webhook, signed = await start(behaviour="transient")
    for _ in range(2):
        answer = await webhook.review("01_deployment.json")
        assert answer["allowed"] is False
        assert answer["status"]["reason"] == "unavailable"
    assert len(signed.calls) == 2


async def test_alerting_and_fail_if_alert_sending_fails(start: Any) -> None:
    received: list[Received] = []
    async with serving(receiver_app(received)) as url:
        alerting: dict[str, Any] = {
            "clusterIdentifier": "e2e",
            "admitRequest": {
                "receivers": [
                    {
                        "template": "opsgenie",
                        "receiverUrl": url,
                        "priority": 2,
                        "customHeaders": ["Authorization: GenieKey secret-genie-key"],
                        "failIfAlertSendingFails": True,
                    }
                ]
            },
            "rejectRequest": {
                "receivers": [{"template": "slack", "receiverUrl": url + "/x", "priority": 3}]
            },
        }
        webhook, _ = await start(alerting=alerting)
        answer = await webhook.review("01_deployment.json")
        assert answer["allowed"] is True
        body = json.loads(received[-1].body)
        assert body["priority"] == "P2"
        assert body["details"]["cluster"] == "e2e"
        assert body["message"] == "CONNAISSEUR admitted a request"
        assert "securesystemsengineering/alice-image:test" in body["alias"]
        assert received[-1].headers["Authorization"] == "GenieKey secret-genie-key"
        await webhook.review("17_deny_me_pod.json")
        await webhook.container.notifier().drain()
        assert "rejected a request" in received[-1].body.decode()

    failing = copy.deepcopy(alerting)
    failing["admitRequest"]["receivers"][0]["receiverUrl"] = "http://127.0.0.1:9/closed"
    webhook, _ = await start(alerting=failing)
    answer = await webhook.review("01_deployment.json")
    assert answer["allowed"] is False
    assert answer["status"]["reason"] == "send_failed"
    assert "opsgenie-0" in answer["status"]["message"]


async def test_one_log_line_per_admission_without_secrets(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"REDIS_PASSWORD": "redis-secret-xyz", "CACHE_HMAC_KEY": "hmac-secret-xyz"}
    webhook, _ = await start(env=env)
    with caplog.at_level(logging.DEBUG):
        await webhook.review("01_deployment.json")
    lines = [r for r in caplog.records if r.name == "connaisseur.admission"]
    assert len(lines) == 1
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert fields["uid"]
    assert fields["kind"] == "Deployment"
    assert fields["decision"] == "admit"
    assert fields["images"][0]["category"] == "success"
    assert "duration_ms" in fields
    everything = caplog.text + json.dumps([getattr(r, "fields", None) for r in caplog.records])
    assert "redis-secret-xyz" not in everything
    assert "hmac-secret-xyz" not in everything
    assert "redis-secret-xyz" not in repr(webhook.container.settings())
