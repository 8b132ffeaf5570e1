"""The alerting block from a file of its own (``--alerting-config`` / ``ALERTING_CONFIG``).

Connaisseur reads alerting from ``/app/alerts/config.yaml``; the
chart mounts it from a Secret so that receiver URLs and headers are not in a ConfigMap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connaisseur.config.loader import load_settings
from connaisseur.domain.errors import Category, ConfigError
from tests.support.cli import run_cli

APP: dict[str, Any] = {
    "validators": [{"name": "allow", "type": "static", "approve": True}],
    "policy": [{"pattern": "*", "validator": "allow"}],
}
ALERTING: dict[str, Any] = {
    "clusterIdentifier": "prod-eu",
    "rejectRequest": {
        "receivers": [
            {
                "template": "opsgenie",
                "receiverUrl": "https://api.eu.opsgenie.com/v2/alerts",
                "customHeaders": ["Authorization: GenieKey secret-key"],
                "failIfAlertSendingFails": True,
            }
        ]
    },
}


def write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def problems(config: Path, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(config, secrets_dir=None, **kwargs)
    assert info.value.category is Category.CONFIG_INVALID
    return info.value.problems


def test_alerting_from_its_own_file_equals_alerting_inline(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", APP)
    alerts = write(tmp_path / "alerts.yaml", ALERTING)
    from_file = load_settings(config, secrets_dir=None, alerting_config=alerts)
    inline = load_settings(write(tmp_path / "inline.yaml", {**APP, "alerting": ALERTING}))
    assert from_file.alerting == inline.alerting
    receiver = from_file.alerting["rejectRequest"]["receivers"][0]
    assert receiver["customHeaders"] == ["Authorization: GenieKey secret-key"]
    assert receiver["priority"] == 3  # the schema's defaults apply as for the inline block


def test_alerting_config_comes_from_the_environment(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", APP)
    alerts = write(tmp_path / "alerts.yaml", ALERTING)
    settings = load_settings(config, secrets_dir=None, env={"ALERTING_CONFIG": str(alerts)})
    assert settings.alerting["clusterIdentifier"] == "prod-eu"


def test_the_option_takes_precedence_over_the_environment(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", APP)
    alerts = write(tmp_path / "alerts.yaml", ALERTING)
    env = {"ALERTING_CONFIG": str(tmp_path / "missing.yaml")}
    settings = load_settings(config, secrets_dir=None, env=env, alerting_config=alerts)
    assert settings.alerting["clusterIdentifier"] == "prod-eu"


def test_without_a_file_or_inline_block_there_is_no_alerting(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", APP)
    assert load_settings(config, secrets_dir=None, env={"ALERTING_CONFIG": ""}).alerting is None
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_settings(config, secrets_dir=None, alerting_config=empty).alerting is None


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            {"alerting": ALERTING},
            ["alerting.alerting: Unknown field."],
            id="values-style-wrapper",
        ),
        pytest.param(
            {"rejectRequest": {"receivers": [{"template": "slack", "recieverUrl": "https://h"}]}},
            [
                "alerting.rejectRequest.receivers[0].receiverUrl: Missing data for required field.",
                "alerting.rejectRequest.receivers[0].recieverUrl: Unknown field.",
            ],
            id="typo-in-receiver",
        ),
        pytest.param(
            {"admitRequest": {"receivers": [{"template": "slack", "receiverUrl": "u", "x": 1}]}},
            ["alerting.admitRequest.receivers[0].x: Unknown field."],
            id="unknown-key",
        ),
        pytest.param(["not", "a", "mapping"], ["alerting: Invalid input type."], id="list"),
    ],
)
def test_invalid_alerting_file_problems_carry_their_paths(
    tmp_path: Path, document: Any, expected: list[str]
) -> None:
    config = write(tmp_path / "config.yaml", APP)
    alerts = write(tmp_path / "alerts.yaml", document)
    assert sorted(problems(config, alerting_config=alerts)) == sorted(expected)


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/services/T0KEN-SECRET", "https://hooks.example:99999/T0KEN-SECRET"]
)
def test_regression_an_invalid_receiver_url_is_not_echoed(tmp_path: Path, url: str) -> None:
    """Webhook URLs carry their token in the path: check-config must not print them."""
    receiver = {"template": "slack", "receiverUrl": url}
    alerts = write(tmp_path / "alerts.yaml", {"admitRequest": {"receivers": [receiver]}})
    proc = run_cli("check-config", "--format", "json", "--alerting-config", str(alerts))
    assert proc.returncode == 2
    assert "invalid receiverUrl" in proc.stdout
    assert "T0KEN-SECRET" not in proc.stdout + proc.stderr


def test_problems_of_both_files_are_reported_together(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", {**APP, "policy": [{"pattern": "*", "x": 1}]})
    alerts = write(tmp_path / "alerts.yaml", {"clusterIdentifier": 7})
    assert sorted(problems(config, alerting_config=alerts)) == [
        "alerting.clusterIdentifier: Not a valid string.",
        "policy[0].x: Unknown field.",
    ]


@pytest.mark.parametrize("wrapped", [False, True], ids=["application-config", "values-file"])
def test_alerting_defined_twice_is_an_error_naming_both_files(
    tmp_path: Path, wrapped: bool
) -> None:
    main = {"application": APP, "alerting": ALERTING} if wrapped else {**APP, "alerting": ALERTING}
    config = write(tmp_path / "config.yaml", main)
    alerts = write(tmp_path / "alerts.yaml", ALERTING)
    (problem,) = problems(config, alerting_config=alerts)
    assert problem.startswith("alerting: defined both in ")
    assert str(config) in problem
    assert str(alerts) in problem


def test_missing_alerting_file_is_a_config_error(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", APP)
    missing = tmp_path / "nope.yaml"
    (message,) = problems(config, alerting_config=missing)
    assert message.startswith(f"cannot read alerting configuration {missing}")
    (message,) = problems(config, env={"ALERTING_CONFIG": str(missing)})
    assert message.startswith(f"cannot read alerting configuration {missing}")


def test_alerting_file_that_is_not_yaml_is_a_config_error(tmp_path: Path) -> None:
    config = write(tmp_path / "config.yaml", APP)
    bad = tmp_path / "alerts.yaml"
    bad.write_text("rejectRequest: [\n")
    (message,) = problems(config, alerting_config=bad)
    assert message.startswith(f"alerting configuration {bad} is not valid YAML")
