"""The aiohttp webhook: ``POST /mutate``, ``/health``, ``/ready``, ``/metrics``.

The handler parses the AdmissionReview, builds a command, calls ``ReviewAdmission`` and renders
the verdict. Bad input gets a 4xx with a one-line reason; an unexpected failure becomes a
generic denial (fail closed) and a logged traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
from aiohttp import web

from application.deadline import request_budget
from application.review import ReviewCommand
from application.settings import Limits
from config.container import Container, close_resources
from entrypoints.admission import (
    BadRequestError,
    decode_json,
    error_review,
    parse_review,
    parse_timeout,
    render_review,
)
from entrypoints.logs import log_admission

CONTAINER = web.AppKey("container", Container)
_BUDGET_MEMO_SIZE = 64
log = logging.getLogger("connaisseur.admission")


def create_app(container: Container) -> web.Application:
    """The webhook application; the HTTP session lives and dies with it."""
    limits: Limits = container.settings().limits
    app = web.Application(client_max_size=limits.max_body_bytes)
    app[CONTAINER] = container
    app.cleanup_ctx.append(_client_session)
    app.router.add_route("*", "/mutate", Mutate(container).handle)
    app.router.add_route("*", "/health", _health)
    app.router.add_route("*", "/ready", _health)
    app.router.add_route("*", "/metrics", _metrics)
    return app


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    container = app[CONTAINER]
    connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=False) as session:
        container.session.override(session)
        container.validators()  # build every validator before the first request
        container.review_admission()
        yield
        await close_resources(container)
        container.session.reset_override()


class Mutate:
    """The ``/mutate`` handler with its collaborators resolved once."""

    def __init__(self, container: Container) -> None:
        self._review = container.review_admission
        self._metrics = container.metrics()
        self._limits: Limits = container.settings().limits
        # raw ``timeout`` query value → budget: a pure function of the fixed limits, and the
        # API server sends the same few values, so each is parsed once
        self._budgets: dict[str | None, float] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self._metrics.request_received()
        if request.method != "POST":
            return _text(405, f"Method not allowed.: {request.method}")
        if not _is_json(request):
            got = request.headers.get("Content-Type", "")
            return _text(400, f"wrong content type: expected json, got {got}")
        try:
            body = await request.read()
            command, api_version = parse_review(
                decode_json(body, self._limits.max_json_depth), self._budget(request)
            )
        except web.HTTPRequestEntityTooLarge:
            return _text(413, f"request body exceeds {self._limits.max_body_bytes} bytes")
        except BadRequestError as e:
            return _text(400, str(e))
        return _json(await self._answer(command, api_version))

    def _budget(self, request: web.Request) -> float:
        raw = request.query.get("timeout")
        budget = self._budgets.get(raw)
        if budget is None:
            limits = self._limits
            budget = request_budget(
                parse_timeout(raw), limits.deadline_margin_seconds, limits.deadline_cap_seconds
            )
            if len(self._budgets) >= _BUDGET_MEMO_SIZE:
                self._budgets.clear()  # bounded: the query string is the client's to choose
            self._budgets[raw] = budget
        return budget

    async def _answer(self, command: ReviewCommand, api_version: str) -> dict[str, object]:
        started = time.perf_counter()
        try:
            verdict = await self._review().execute(command)
        except Exception:
            log.exception("unexpected error reviewing admission request %s", command.uid)
            return error_review(command.uid, "internal error; request denied", api_version)
        log_admission(command, verdict, time.perf_counter() - started)
        return render_review(verdict, api_version)


async def _health(request: web.Request) -> web.Response:
    if request.method != "GET":
        return _text(405, "Method not allowed.")
    return web.Response(status=200)


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[CONTAINER].metrics()
    return web.Response(body=metrics.exposition(), headers={"Content-Type": metrics.content_type})


def _is_json(request: web.Request) -> bool:
    """Whether the body is declared JSON (media type ``application/json``, any parameters).

    The exact header the API server sends is recognised without aiohttp's full media-type
    parse (about 2.5 µs per request); any other value is parsed as before.
    """
    if request.headers.get("Content-Type") == "application/json":
        return True
    return request.content_type == "application/json"


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def _json(document: dict[str, object]) -> web.Response:
    return web.Response(body=orjson.dumps(document), content_type="application/json")
