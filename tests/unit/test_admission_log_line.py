"""The admission line is the same whether it is written directly or through a LogRecord."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from connaisseur.application.review import ReviewCommand
from connaisseur.domain.errors import Category
from connaisseur.domain.verdict import ImageVerdict, Outcome, RequestVerdict, SkipReason
from connaisseur.entrypoints.logs import configure_logging, log_admission

COMMAND = ReviewCommand(
    uid="0b6b5d1e", kind="Deployment", operation="CREATE", namespace="shop", object={}
)
VERDICT = RequestVerdict(
    uid="0b6b5d1e",
    allowed=False,
    outcome=Outcome.ERROR,
    message="1 of 2 images denied",
    category=Category.STATIC_DENY,
    warnings=("detection mode active",),
    images=(
        ImageVerdict(image="evil.example.org/app:1", reference=None, allowed=False,
                     rule="*:*", category=Category.STATIC_DENY),
        ImageVerdict(image="registry.example.com/app:1", reference=None, allowed=True,
                     rule="registry.example.com/*:*", skipped=SkipReason.UNCHANGED),
    ),
)  # fmt: skip


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("info", "json", out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_direct_and_record_paths_write_the_same_line(stream: io.StringIO) -> None:
    log_admission(COMMAND, VERDICT, 0.0012345)
    extra = logging.NullHandler()  # any other handler forces the LogRecord path
    logging.getLogger().addHandler(extra)
    try:
        log_admission(COMMAND, VERDICT, 0.0012345)
    finally:
        logging.getLogger().removeHandler(extra)
    direct, recorded = lines(stream)
    for line in (direct, recorded):
        assert datetime.fromisoformat(str(line.pop("time"))).tzinfo is not None
    assert direct == recorded
    assert direct["msg"] == "admission deny"
    assert direct["level"] == "info"
    assert direct["images"] == [
        {"image": "evil.example.org/app:1", "category": "static_deny", "rule": "*:*",
         "skipped": None},
        {"image": "registry.example.com/app:1", "category": "success",
         "rule": "registry.example.com/*:*", "skipped": "unchanged image reference"},
    ]  # fmt: skip
    assert direct["duration_ms"] == 1.234


def test_records_still_reach_other_handlers(stream: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger("connaisseur").addHandler(keep := Keep())
    try:
        log_admission(COMMAND, VERDICT, 0.001)
    finally:
        logging.getLogger("connaisseur").removeHandler(keep)
    assert [r.getMessage() for r in seen] == ["admission deny"]
    assert getattr(seen[0], "fields")["uid"] == "0b6b5d1e"  # noqa: B009
    assert len(lines(stream)) == 1


def test_no_line_below_the_configured_level(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    log_admission(COMMAND, VERDICT, 0.001)
    assert stream.getvalue() == ""
