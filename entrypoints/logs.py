"""Structured JSON logs on stdout (``LOG_FORMAT``: ``json`` one line, else indented)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

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


def configure_logging(level: str, fmt: str) -> None:
    """Route every logger to stdout as JSON; unknown levels mean ``info`` (like Connaisseur)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(pretty=fmt != "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level.lower(), logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
