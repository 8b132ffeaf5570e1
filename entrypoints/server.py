"""``connaisseur serve``: logging, uvloop, TLS and the aiohttp runner.

Runs the low-level server as ``web.run_app`` runs an application: SIGINT/SIGTERM end it, open
connections get ``shutdown_timeout`` seconds to finish, then the outbound session closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.web_runner import GracefulExit

from connaisseur.application.settings import Settings
from connaisseur.config.container import Container, running
from connaisseur.entrypoints.logs import configure_logging
from connaisseur.entrypoints.tls import server_context, throwaway_certificate
from connaisseur.entrypoints.webhook import webhook_server

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
    context = server_context(cert_file, key_file)
    # the webhook must be reachable by the API server
    bind = host or "0.0.0.0"  # noqa: S104
    with contextlib.suppress(GracefulExit, KeyboardInterrupt):
        asyncio.run(_run(container, bind, int(port), context))
    return 0


async def _run(container: Container, host: str, port: int, context: ssl.SSLContext) -> None:
    async with running(container):
        server = webhook_server(container)
        runner = web.ServerRunner(server, handle_signals=True, shutdown_timeout=5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=context)
            await site.start()
            log.info("serving on %s", site.name)
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()


def _install_uvloop() -> None:
    if sys.platform == "win32":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
