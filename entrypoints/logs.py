"""Structured JSON logs on stdout (``LOG_FORMAT``: ``json`` one line, else indented)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from application.review import ReviewCommand
from domain.verdict import RequestVerdict

admission_log = logging.getLogger("connaisseur.admission")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "msg", ...extra fields}``; tracebacks under ``error``."""

    def __init__(self, pretty: bool = False) -> None:
        super().__init__()
        self._option = orjson.OPT_INDENT_2 if pretty else 0

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, option=self._option, default=str).decode()


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Route every logger to ``stream`` (stdout) as JSON; unknown levels mean ``info``."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(pretty=fmt != "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level.lower(), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def log_admission(command: ReviewCommand, verdict: RequestVerdict, seconds: float) -> None:
    """One line per admission: uid, kind, namespace, decision, per-image category, duration.

    Only identifiers and outcomes are logged — never the object, headers or credentials.
    """
    if not admission_log.isEnabledFor(logging.INFO):
        return
    fields = {
        "uid": command.uid,
        "kind": command.kind,
        "namespace": command.namespace,
        "operation": command.operation,
        "decision": "admit" if verdict.allowed else "deny",
        "outcome": str(verdict.outcome),
        "images": [
            {
                "image": v.image,
                "category": str(v.category or "success"),
                "rule": v.rule,
                "skipped": str(v.skipped) if v.skipped else None,
            }
            for v in verdict.images
        ],
        "warnings": list(verdict.warnings),
        "duration_ms": round(seconds * 1000, 3),
    }
    admission_log.info("admission %s", fields["decision"], extra={"fields": fields})
