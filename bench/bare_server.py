"""The "Python limit" for the benchmark: a bare HTTPS AdmissionReview answerer.

An ``asyncio.Protocol`` on uvloop that does the least work any Python webhook must do per
request: split the HTTP/1.1 request (request line, headers, ``Content-Length`` body), decode the
AdmissionReview with orjson, and answer a fixed allowed AdmissionReview carrying the request's
uid, keeping the connection alive. No routing, no framework, no policy, no logging.

    python -m bench.bare_server --listen 127.0.0.1:8443 --tls-cert tls.crt --tls-key tls.key
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
from typing import NamedTuple, cast

import orjson
import uvloop

_MAX_HEAD = 64 * 1024
_MAX_BODY = 3 * 1024 * 1024
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class AdmissionProtocol(asyncio.Protocol):
    """One connection: parse each request in the buffer, answer it, keep the connection."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and self._answer_one():
            pass

    def _answer_one(self) -> bool:
        """Answer the first complete request in the buffer; False when it is not complete."""
        buffer = self._buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > _MAX_HEAD:
                self._fail()
            return False
        length = _content_length(bytes(buffer[:head_end]))
        if length is None or length > _MAX_BODY:
            self._fail()
            return False
        body_start = head_end + 4
        if len(buffer) < body_start + length:
            return False
        body = bytes(buffer[body_start : body_start + length])
        del buffer[: body_start + length]
        try:
            review = orjson.loads(body)
            uid = review["request"]["uid"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self._fail()
            return False
        self._respond(review.get("apiVersion", "admission.k8s.io/v1"), uid)
        return True

    def _respond(self, api_version: str, uid: str) -> None:
        payload = orjson.dumps(
            {
                "apiVersion": api_version,
                "kind": "AdmissionReview",
                "response": {"uid": uid, "allowed": True},
            }
        )
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(payload)
        )
        assert self._transport is not None
        self._transport.write(head + payload)

    def _fail(self) -> None:
        assert self._transport is not None
        self._transport.write(_BAD_REQUEST)
        self._transport.close()
        self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _content_length(head: bytes) -> int | None:
    """The request's ``Content-Length`` (0 when absent); None when malformed."""
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return 0


async def serve(host: str, port: int, context: ssl.SSLContext) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(AdmissionProtocol, host, port, ssl=context, backlog=1024)
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set_result, None)
    async with server:
        await stop


class Listen(NamedTuple):
    host: str
    port: int
    context: ssl.SSLContext


def listen_arguments(description: str) -> Listen:
    """``--listen HOST:PORT --tls-cert --tls-key`` from the command line, as ``webhook.py``
    passes them to each reference server."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", default="127.0.0.1:8443")
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.tls_cert, args.tls_key)
    return Listen(host, int(port), context)


def main() -> None:
    uvloop.run(serve(*listen_arguments(__doc__.splitlines()[0])))


if __name__ == "__main__":
    main()
