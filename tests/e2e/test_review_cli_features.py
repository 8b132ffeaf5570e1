"""``connaisseur review`` honours the feature flags and logs the admission line on stderr."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.cli import run_cli

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "conformance" / "data"


def _review(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("review", "--format", "json", *args, env=env)


def test_detection_mode_from_the_environment() -> None:
    config = str(DATA / "config" / "10_mutate_test.yaml")
    request = str(DATA / "admission_requests" / "17_deny_me_pod.json")
    denied = _review({}, "--config", config, request)
    assert denied.returncode == 1
    admitted = _review({"DETECTION_MODE": "true"}, "--config", config, request)
    assert admitted.returncode == 0
    answer = json.loads(admitted.stdout)["response"]
    assert answer["warnings"][0] == "detection mode active"
    log_lines = [json.loads(line) for line in admitted.stderr.splitlines() if line.startswith("{")]
    admission = [line for line in log_lines if line.get("msg", "").startswith("admission")]
    assert len(admission) == 1
    assert admission[0]["decision"] == "admit"
    assert admission[0]["images"][0]["category"] == "static_deny"


def test_alerting_from_an_application_config_with_custom_templates(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "mine.json").write_text('{"text": "{{ alert_message }} in {{ cluster }}"}')
    config = tmp_path / "config.yaml"
    config.write_text(
        (DATA / "config" / "10_mutate_test.yaml").read_text()
        + "alerting:\n  clusterIdentifier: c1\n  rejectRequest:\n    receivers:\n"
        + "      - {template: nope, receiverUrl: 'http://127.0.0.1:9/'}\n"
    )
    request = str(DATA / "admission_requests" / "17_deny_me_pod.json")
    missing = _review({}, "--config", str(config), "--alert-templates-dir", str(templates), request)
    assert missing.returncode == 2  # a template that does not exist stops start-up
    assert "unable to get template file nope.json" in missing.stderr
