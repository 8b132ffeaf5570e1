"""``connaisseur review --explain`` with a patch, in-process (a mutating double stands in for a
signature validator, which static-only e2e runs cannot provide)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from connaisseur.application.settings import Settings
from connaisseur.config.container import Container, build_container
from connaisseur.entrypoints import cli
from tests.support.conformance import add_extra_validators
from tests.support.feature_doubles import MOCK_DIGEST, MockValidator


@pytest.fixture
def mutating_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(settings: Settings, clock: Any = None, recorder: Any = None) -> Container:
        container = build_container(settings, clock, recorder)
        add_extra_validators(container, [MockValidator("mock", "mock", "mock_allow")])
        return container

    monkeypatch.setattr(cli, "build_container", build)


def test_review_explain_shows_the_decoded_patch(
    mutating_cli: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "validators": [{"name": "allow", "type": "static"}],
                "policy": [{"pattern": "*", "validator": "mock"}],
            }
        )
    )
    review = tmp_path / "review.json"
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "nginx"}],
            "initContainers": [{"name": "i", "image": "nginx"}],
        },
    }
    review.write_text(
        json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1beta1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u",
                    "kind": {"kind": "Pod"},
                    "operation": "CREATE",
                    "object": pod,
                },
            }
        )
    )
    code = cli.main(
        ["review", "--explain", "--format", "json", "--config", str(config), str(review)]
    )
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    pinned = f"index.docker.io/library/nginx:latest@{MOCK_DIGEST}"
    expected = [
        {"op": "replace", "path": "/spec/containers/0/image", "value": pinned},
        {"op": "replace", "path": "/spec/initContainers/0/image", "value": pinned},
    ]
    assert answer["patchDecoded"] == expected
    assert json.loads(base64.b64decode(answer["response"]["patch"])) == expected
    assert answer["response"]["patchType"] == "JSONPatch"
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
