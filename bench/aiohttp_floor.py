"""The aiohttp floor for the benchmark (``bench/webhook.py --floor``): the least an aiohttp
handler can do for ``/mutate`` — read the body, orjson-decode it, answer a fixed allowed
AdmissionReview with the uid — on uvloop over TLS, access log off, served by aiohttp's
low-level ``web.Server`` as ``connaisseur serve`` serves the webhook. What lies between this
and ``connaisseur serve`` is our own per-request work.

    python -m bench.aiohttp_floor --listen 127.0.0.1:8443 --tls-cert tls.crt --tls-key tls.key
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import orjson
import uvloop
from aiohttp import web

from bench.bare_server import listen_arguments


async def mutate(request: web.BaseRequest) -> web.Response:
    review = orjson.loads(await request.read())
    answer = {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": True},
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


async def serve(host: str, port: int, context: ssl.SSLContext) -> None:
    runner = web.ServerRunner(web.Server(mutate, access_log=None), handle_signals=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        uvloop.run(serve(*listen_arguments(__doc__.splitlines()[0])))


if __name__ == "__main__":
    main()
