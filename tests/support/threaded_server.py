"""Run an aiohttp application on 127.0.0.1 in a background thread with its own event loop.

Lets a session- or module-scoped fixture serve HTTP(S) to tests that each run in their own
event loop (pytest-asyncio's default function loop scope), and to subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator

from aiohttp import web

from tests.support.servers import free_port


@contextlib.contextmanager
def serve_in_thread(
    make_app: Callable[[], web.Application],
    *,
    ssl_context: ssl.SSLContext | None = None,
    port: int | None = None,
    timeout: float = 10.0,
) -> Iterator[int]:
    """Serve ``make_app()`` on ``port`` (default: a free one) until the block ends; yields
    the port."""
    port = port or free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner: list[web.AppRunner] = []
    failure: list[BaseException] = []

    async def start() -> None:
        app_runner = web.AppRunner(make_app(), access_log=None)
        await app_runner.setup()
        await web.TCPSite(app_runner, "127.0.0.1", port, ssl_context=ssl_context).start()
        runner.append(app_runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as e:  # reported to the fixture below
            failure.append(e)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name=f"aiohttp-{port}", daemon=True)
    thread.start()
    if not started.wait(timeout) or failure:
        raise RuntimeError(f"test server on 127.0.0.1:{port} did not start") from (
            failure[0] if failure else None
        )
    try:
        yield port
    finally:
        if runner:
            asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()
