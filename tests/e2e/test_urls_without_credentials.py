"""URLs with credentials (``https://user:token@host/...``) never appear in what we print.

Every surface is checked through the real code paths: a denial (the CLI's review answer), a
log line (the CLI's stderr), a ``/metrics`` label, and ``check-config`` output
(docs/decisions/0027-urls-without-credentials.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.metrics import PrometheusMetrics
from connaisseur.application.deadline import Deadline
from connaisseur.domain.errors import VerificationError
from connaisseur.domain.urls import UNPARSABLE, SafeUrl
from tests.support.cli import ROOT, cli
from tests.support.fakes import FakeClock
from tests.support.servers import free_port

SECRET = "s3cret-token"
DATA = ROOT / "tests" / "conformance" / "data"
CONFIG = DATA / "config" / "10_mutate_test.yaml"  # static allow/deny validators, no alerting
DENY_ME = DATA / "admission_requests" / "17_deny_me_pod.json"
KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def leaking(port: int, name: str) -> str:
    return f"https://alice:{SECRET}@127.0.0.1:{port}/{name}/{SECRET}-path?key={SECRET}-query"


async def test_url_credentials_stay_out_of_denials_and_log_lines(tmp_path: Path) -> None:
    # Before: "cannot reach alice:s3cret-token@127.0.0.1:…" in the denial and in the log.
    closed = free_port()
    receivers = [
        {
            "template": "slack",
            "receiverUrl": leaking(closed, "blocking"),
            "failIfAlertSendingFails": True,
        },
        {"template": "slack", "receiverUrl": leaking(closed, "logged")},
    ]
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(yaml.safe_dump({"rejectRequest": {"receivers": receivers}}))
    args = ("--format", "json", "--config", str(CONFIG), "--alerting-config", str(alerts))
    out = await cli("review", *args, str(DENY_ME), env={"LOG_LEVEL": "debug"})
    assert out.returncode == 1, out.stderr
    denial = json.loads(out.stdout)["response"]["status"]["message"]
    assert f"127.0.0.1:{closed}" in denial  # the receiver is still named
    assert f"127.0.0.1:{closed}" in out.stderr  # and so is the one only logged
    assert SECRET not in out.stdout + out.stderr
    assert "alice" not in out.stdout + out.stderr


async def test_url_credentials_stay_out_of_metric_labels_and_messages() -> None:
    # Before: the upstream counter's host label was the URL's netloc, userinfo included.
    metrics = PrometheusMetrics()
    closed = free_port()
    async with aiohttp.ClientSession() as session:
        http = HttpClient(session, on_response=metrics.upstream_response)
        url = leaking(closed, "x").replace("https:", "http:")
        with pytest.raises(VerificationError) as info:
            await http.request("GET", url, Deadline.after(FakeClock(), 5))
    exposition = metrics.exposition().decode()
    assert f'host="127.0.0.1:{closed}"' in exposition
    assert SECRET not in exposition
    assert f"127.0.0.1:{closed}" in info.value.message
    assert SECRET not in info.value.message


async def test_url_credentials_stay_out_of_check_config_output(tmp_path: Path) -> None:
    # Before: "validators[1].host.rekor: invalid URL 'https://alice:s3cret-token@bad host'".
    document = yaml.safe_load(CONFIG.read_text())
    document["validators"].append(
        {
            "name": "leaky",
            "type": "cosign",
            "host": {"rekor": f"https://alice:{SECRET}@bad host/"},
            "trustRoots": [{"name": "default", "key": KEY}],
        }
    )
    document["validators"].append(
        {
            "name": "leaky-notary",
            "type": "notaryv1",
            "host": f"https://alice:{SECRET}@notary.example",
            "trustRoots": [{"name": "default", "key": KEY}],
        }
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    out = await cli("check-config", "--format", "json", "--config", str(config))
    assert out.returncode == 2
    problems = json.loads(out.stdout)["problems"]
    assert any(".host.rekor: invalid URL 'https://bad?host/'" in p for p in problems), problems
    assert SECRET not in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("url", "shown", "origin", "host"),
    [
        (
            "https://user:tok@registry.example:5000/v2/x?y=1#z",
            "https://registry.example:5000/v2/x",
            "https://registry.example:5000",
            "registry.example:5000",
        ),
        ("HTTP://[::1]:8080", "http://[::1]:8080", "http://[::1]:8080", "[::1]:8080"),
        (
            "user:tok@registry.example/repo",
            "registry.example/repo",
            "registry.example",
            "registry.example",
        ),
        ("https://u:p@host:99999/x", UNPARSABLE, "", ""),
        ("https://[broken/x", UNPARSABLE, "", ""),
    ],
)
def test_a_url_is_shown_as_scheme_host_port_path_only(
    url: str, shown: str, origin: str, host: str
) -> None:
    safe = SafeUrl.of(url)
    assert (str(safe), safe.origin, safe.host) == (shown, origin, host)


def test_a_shown_url_is_one_bounded_printable_line() -> None:
    shown = str(SafeUrl.of("https://host/" + "a\nb" * 500))
    assert "\n" not in shown
    assert len(shown) < 300
