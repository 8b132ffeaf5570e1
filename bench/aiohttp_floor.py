"""The aiohttp floor for the benchmark (``bench/webhook.py --floor``): the least an aiohttp
handler can do for ``/mutate`` — read the body, orjson-decode it, answer a fixed allowed
AdmissionReview with the uid — on uvloop over TLS, access log off, as ``connaisseur serve``
runs aiohttp. What lies between this and ``connaisseur serve`` is our own per-request work.

    python bench/aiohttp_floor.py --listen 127.0.0.1:8443 --tls-cert tls.crt --tls-key tls.key
"""

from __future__ import annotations

import argparse
import ssl

import orjson
import uvloop
from aiohttp import web


async def mutate(request: web.Request) -> web.Response:
    review = orjson.loads(await request.read())
    answer = {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": True},
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8443")
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.tls_cert, args.tls_key)
    app = web.Application(client_max_size=3 * 1024 * 1024)
    app.router.add_post("/mutate", mutate)
    web.run_app(
        app,
        host=host,
        port=int(port),
        ssl_context=context,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
