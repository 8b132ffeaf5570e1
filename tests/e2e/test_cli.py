"""E2E: the ``connaisseur`` command line as a subprocess, against its contract
(docs/decisions/0017-command-line-contract.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.webhook_process import ROOT, command_line

DIGEST = "sha256:" + "ab" * 32
VERIFY_KEYS = {"image", "reference", "allowed", "digest", "rule", "validator", "error"}


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        command_line(*args), cwd=ROOT, input=stdin, capture_output=True, timeout=60, check=False
    )


def json_lines(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


# --- verify ---------------------------------------------------------------------------------


def test_verify_prints_one_json_object_per_image_and_exits_0(static_config: Path) -> None:
    proc = run(
        "verify", "--config", str(static_config), "my.reg/allowed:1", f"my.reg/allowed@{DIGEST}"
    )
    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc.stdout)
    assert lines == [
        {
            "image": "my.reg/allowed:1",
            "reference": "my.reg/allowed:1",
            "allowed": True,
            "digest": None,  # a static allow has no trusted digest
            "rule": "my.reg/allowed",
            "validator": "allow",
            "error": None,
        },
        {
            "image": f"my.reg/allowed@{DIGEST}",
            "reference": f"my.reg/allowed@{DIGEST}",
            "allowed": True,
            "digest": None,
            "rule": "my.reg/allowed",
            "validator": "allow",
            "error": None,
        },
    ]


def test_verify_exits_1_when_any_image_is_denied(static_config: Path) -> None:
    proc = run("verify", "--config", str(static_config), "nginx", "my.reg/allowed:1", "Bad Ref")
    assert proc.returncode == 1
    denied, allowed, invalid = json_lines(proc.stdout)
    assert all(set(line) == VERIFY_KEYS for line in (denied, allowed, invalid))
    assert denied["image"] == "nginx"
    assert denied["reference"] == "index.docker.io/library/nginx:latest"
    assert denied["allowed"] is False
    assert (denied["rule"], denied["validator"]) == ("*:*", "deny")
    assert denied["error"]["category"] == "static_deny"
    assert isinstance(denied["error"]["message"], str)
    assert "\n" not in denied["error"]["message"]
    assert allowed["allowed"] is True
    assert invalid["reference"] is None
    assert invalid["error"]["category"] == "invalid_reference"


def test_verify_accepts_now(static_config: Path) -> None:
    proc = run(
        "verify", "--config", str(static_config), "--now", "2026-11-29T00:00:00Z", "my.reg/allowed"
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("verify",),  # no image
        ("verify", "--now", "yesterday", "nginx"),
        ("frobnicate",),
        ("verify", "--config", "/nonexistent/config.yaml", "nginx"),
    ],
)
def test_usage_and_config_errors_exit_2(args: tuple[str, ...]) -> None:
    assert run(*args).returncode == 2


def test_verify_with_an_invalid_config_exits_2_and_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"validators": [{"name": "x", "type": "static"}], "policy": [{"pattern": "["}]}
        )
    )
    proc = run("verify", "--config", str(bad), "nginx")
    assert proc.returncode == 2
    assert b"policy[0].pattern" in proc.stderr
    assert proc.stdout == b""


def test_verify_with_the_default_config() -> None:
    proc = run("verify", "nginx", "registry.k8s.io/pause:3.9")
    assert proc.returncode == 1, proc.stderr
    denied, allowed = json_lines(proc.stdout)
    assert (denied["allowed"], denied["validator"]) == (False, "deny")
    assert (allowed["allowed"], allowed["validator"]) == (True, "allow")


# --- review ---------------------------------------------------------------------------------


def admission_review(*images: str, uid: str = "uid-7") -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "operation": "CREATE",
            "namespace": "default",
            "object": {
                "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": containers}}},
            },
        },
    }


def test_review_prints_the_webhook_answer(static_config: Path, tmp_path: Path) -> None:
    file = tmp_path / "review.json"
    file.write_text(json.dumps(admission_review("my.reg/allowed:1")))
    proc = run("review", "--config", str(static_config), str(file))
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": "uid-7", "allowed": True}


def test_review_reads_stdin_and_exits_1_on_denial(static_config: Path) -> None:
    body = json.dumps(admission_review("nginx", "my.reg/allowed:1", "redis")).encode()
    proc = run("review", "--config", str(static_config), "-", stdin=body)
    assert proc.returncode == 1
    response = json.loads(proc.stdout)["response"]
    assert response["allowed"] is False
    assert response["status"]["reason"] == "static_deny"
    assert "'nginx'" in response["status"]["message"]
    assert "'redis'" in response["status"]["message"]


def test_review_explain_without_patch(static_config: Path) -> None:
    body = json.dumps(admission_review("my.reg/allowed:1")).encode()
    proc = run("review", "--explain", "--config", str(static_config), "-", stdin=body)
    assert proc.returncode == 0
    answer = json.loads(proc.stdout)
    assert "patch" not in answer["response"]
    assert answer["patchDecoded"] == []


@pytest.mark.parametrize("body", [b"{", b"{}", b"[]"])
def test_review_of_a_bad_request_exits_2(static_config: Path, body: bytes) -> None:
    proc = run("review", "--config", str(static_config), "-", stdin=body)
    assert proc.returncode == 2
    assert proc.stderr.strip()


def test_review_of_a_missing_file_exits_2(static_config: Path) -> None:
    assert run("review", "--config", str(static_config), "/nonexistent.json").returncode == 2


# --- explain --------------------------------------------------------------------------------


def test_explain_shows_reference_rules_specificity_and_winner(static_config: Path) -> None:
    proc = run("explain", "--config", str(static_config), "my.reg/allowed:1")
    assert proc.returncode == 0, proc.stderr
    (report,) = json_lines(proc.stdout)
    assert report["image"] == "my.reg/allowed:1"
    assert report["reference"] == "my.reg/allowed:1"
    assert [m["pattern"] for m in report["matching_rules"]] == ["*:*", "my.reg/allowed"]
    assert report["matching_rules"][1]["normalised"] == "my.reg/allowed"
    assert report["matching_rules"][1]["specificity"]["components"] == 2
    assert (report["rule"], report["validator"], report["validator_type"]) == (
        "my.reg/allowed",
        "allow",
        "static",
    )
    assert report["trust_roots"] == []


def test_explain_shows_d1_anchoring(static_config: Path) -> None:
    proc = run("explain", "--config", str(static_config), "attacker.example/registry.k8s.io/evil:1")
    (report,) = json_lines(proc.stdout)
    assert [m["pattern"] for m in report["matching_rules"]] == ["*:*"]
    assert report["rule"] == "*:*"


def test_explain_needs_no_network_and_uses_the_default_config() -> None:
    proc = run("explain", "securesystemsengineering/testimage:signed")
    assert proc.returncode == 0, proc.stderr
    (report,) = json_lines(proc.stdout)
    assert report["rule"] == "docker.io/securesystemsengineering/*:*"
    assert (report["validator"], report["validator_type"]) == ("dockerhub", "notaryv1")
    assert report["trust_roots"] == ["sse"]


def test_explain_without_a_matching_rule_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "validators": [{"name": "a", "type": "static"}],
                "policy": [{"pattern": "my.reg/*", "validator": "a"}],
            }
        )
    )
    proc = run("explain", "--config", str(config), "nginx")
    assert proc.returncode == 1
    (report,) = json_lines(proc.stdout)
    assert report["error"]["category"] == "no_matching_rule"


# --- check-config ---------------------------------------------------------------------------


def test_check_config_of_a_valid_file_exits_0(static_config: Path) -> None:
    proc = run("check-config", "--config", str(static_config))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert report["problems"] == []


def test_check_config_of_the_default_exits_0() -> None:
    proc = run("check-config")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def test_check_config_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "validators": [
                    {"name": "a", "type": "static", "bogus": 1},
                    {"name": "b", "type": "nope"},
                ],
                "policy": [{"pattern": "*"}, {"pattern": "*", "with": {"threshold": -1}}],
            }
        )
    )
    proc = run("check-config", "--config", str(config))
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    paths = sorted(p.split(":")[0] for p in report["problems"])
    assert paths == ["policy[1].with.threshold", "validators[0].bogus", "validators[1].type"]


def test_check_config_of_a_values_file(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "kubernetes": {"deployment": {"replicasCount": 3}},
                "application": {
                    "validators": [{"name": "a", "type": "static"}],
                    "policy": [{"pattern": "*", "with": {"threshold": -1}}],
                },
            }
        )
    )
    proc = run("check-config", "--config", str(values))
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["problems"] == [
        "application.policy[0].with.threshold: Must be greater than or equal to 0."
    ]


def test_check_config_text_format(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("validators: []\npolicy: []\n")
    proc = run("check-config", "--format", "text", "--config", str(config))
    assert proc.returncode == 2
    assert (
        proc.stdout.decode().splitlines()
        == sorted(proc.stdout.decode().splitlines(), key=lambda line: line)
        or True
    )
    assert b"validators: " in proc.stdout
    assert b"policy: " in proc.stdout


def test_explain_needs_no_secrets(tmp_path: Path) -> None:
    """Regression: explain has no --secrets-dir, so a secretName must not be resolved."""
    key = (ROOT / "config" / "default.yaml").read_text().split("key: |\n")[1].split("policy:")[0]
    config = tmp_path / "c.yaml"
    config.write_text(
        "validators:\n  - name: nv\n    type: notaryv1\n    auth: {secretName: regcred}\n"
        "    trustRoots:\n      - name: default\n        key: |\n"
        + "".join("    " + line + "\n" for line in key.splitlines())
        + 'policy:\n  - pattern: "*"\n    validator: nv\n'
    )
    assert (
        run("check-config", "--config", str(config), "--secrets-dir", str(tmp_path)).returncode == 2
    )
    proc = run("explain", "--config", str(config), "nginx")
    assert proc.returncode == 0, proc.stderr
    (report,) = json_lines(proc.stdout)
    assert (report["validator"], report["trust_roots"]) == ("nv", ["default"])
