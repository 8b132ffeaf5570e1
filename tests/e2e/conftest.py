"""E2E fixtures: the ``connaisseur`` process started as a subprocess, HTTPS with a test CA
(the process and its client: tests/support/webhook_process.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.webhook_process import STATIC_CONFIG, Webhook, serve_webhook


@pytest.fixture(scope="session")
def static_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(yaml.safe_dump(STATIC_CONFIG))
    return path


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory, static_config: Path) -> Iterator[Webhook]:
    with serve_webhook(tmp_path_factory.mktemp("webhook"), static_config) as webhook:
        yield webhook
