"""``--alerting-config FILE`` / ``ALERTING_CONFIG`` through the real CLI (subprocesses).

``check-config`` validates the separate alerting file; ``review`` sends its alerts to a local
HTTP receiver (127.0.0.1) configured only in that file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import Result, cli
from tests.support.feature_doubles import Received, receiver_app
from tests.support.servers import serving

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "conformance" / "data"
CONFIG = DATA / "config" / "10_mutate_test.yaml"  # static allow/deny validators, no alerting
DENY_ME = DATA / "admission_requests" / "17_deny_me_pod.json"


async def check_config(config: Path, alerts: Path) -> Result:
    """``connaisseur check-config`` (JSON) with ``--alerting-config``."""
    args = ("--format", "json", "--config", str(config), "--alerting-config", str(alerts))
    return await cli("check-config", *args)


def alerting(url: str, **receiver: Any) -> dict[str, Any]:
    return {
        "clusterIdentifier": "e2e-cluster",
        "rejectRequest": {
            "receivers": [
                {
                    "template": "slack",
                    "receiverUrl": url,
                    "customHeaders": ["Authorization: Bearer from-the-secret"],
                    "failIfAlertSendingFails": True,
                    **receiver,
                }
            ]
        },
    }


def write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


async def test_check_config_accepts_a_valid_alerting_file(tmp_path: Path) -> None:
    alerts = write(tmp_path / "alerts.yaml", alerting("https://hooks.example/x"))
    out = await check_config(CONFIG, alerts)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True


async def test_check_config_lists_the_alerting_files_problems_with_paths(tmp_path: Path) -> None:
    document = alerting("not a url", unknown=1)
    alerts = write(tmp_path / "alerts.yaml", document)
    out = await check_config(CONFIG, alerts)
    assert out.returncode == 2
    report = json.loads(out.stdout)
    assert report["ok"] is False
    assert report["problems"] == ["alerting.rejectRequest.receivers[0].unknown: Unknown field."]
    del document["rejectRequest"]["receivers"][0]["unknown"]
    write(alerts, document)
    out = await check_config(CONFIG, alerts)
    assert out.returncode == 2
    (problem,) = json.loads(out.stdout)["problems"]
    assert problem.startswith("alerting.rejectRequest.receivers[0]: invalid receiverUrl")


async def test_check_config_refuses_alerting_in_both_places_and_a_missing_file(
    tmp_path: Path,
) -> None:
    both = write(
        tmp_path / "config.yaml",
        {**yaml.safe_load(CONFIG.read_text()), "alerting": alerting("https://a.example/")},
    )
    alerts = write(tmp_path / "alerts.yaml", alerting("https://b.example/"))
    out = await check_config(both, alerts)
    assert out.returncode == 2
    (problem,) = json.loads(out.stdout)["problems"]
    assert str(both) in problem
    assert str(alerts) in problem
    missing = tmp_path / "missing.yaml"
    out = await cli(
        "check-config",
        "--format",
        "json",
        "--config",
        str(CONFIG),
        env={"ALERTING_CONFIG": str(missing)},
    )
    assert out.returncode == 2
    assert f"cannot read alerting configuration {missing}" in out.stdout


@pytest.mark.parametrize("named_by", ["flag", "environment"])
async def test_review_sends_alerts_configured_in_the_alerting_file(
    tmp_path: Path, named_by: str
) -> None:
    """The alerting file is named by ``--alerting-config`` or by ``ALERTING_CONFIG``."""
    received: list[Received] = []
    async with serving(receiver_app(received)) as url:
        alerts = write(tmp_path / "alerts.yaml", alerting(url + "/hook"))
        flag = ["--alerting-config", str(alerts)] if named_by == "flag" else []
        env = {"ALERTING_CONFIG": str(alerts)} if named_by == "environment" else None
        args = ("--format", "json", "--config", str(CONFIG), *flag, str(DENY_ME))
        out = await cli("review", *args, env=env)
    assert out.returncode == 1, out.stderr  # denied by the static validator
    assert json.loads(out.stdout)["response"]["allowed"] is False
    (alert,) = received
    assert alert.headers["Authorization"] == "Bearer from-the-secret"
    body = json.loads(alert.body)
    text = json.dumps(body)
    assert "CONNAISSEUR rejected a request" in text
    assert "e2e-cluster" in text
    assert "from-the-secret" not in out.stderr  # credentials never logged
