"""``connaisseur serve``: logging, uvloop, TLS and the aiohttp runner."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from aiohttp import web

from application.settings import Settings
from config.container import Container
from entrypoints.logs import configure_logging
from entrypoints.tls import server_context, throwaway_certificate
from entrypoints.webhook import create_app

log = logging.getLogger("connaisseur")


def serve(
    settings: Settings,
    container: Container,
    listen: str,
    cert_file: Path | None,
    key_file: Path | None,
) -> int:
    """Run the webhook until interrupted; returns the exit code."""
    configure_logging(settings.log_level, settings.log_format)
    if cert_file is None or key_file is None:
        cert_file, key_file = throwaway_certificate()
        log.warning(
            "no --tls-cert given: serving a throw-away self-signed certificate %s", cert_file
        )
    host, _, port = listen.rpartition(":")
    _install_uvloop()
    web.run_app(
        create_app(container),
        host=host or "0.0.0.0",  # noqa: S104 - the webhook must be reachable by the API server
        port=int(port),
        ssl_context=server_context(cert_file, key_file),
        access_log=None,
        print=lambda msg: log.info(msg),
        shutdown_timeout=5,
    )
    return 0


def _install_uvloop() -> None:
    if sys.platform == "win32":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
