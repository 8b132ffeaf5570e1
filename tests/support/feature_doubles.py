"""Test doubles for the operational features: validators, metrics, an upstream-format cache,
and local HTTP(S) servers standing in for the Kubernetes API and an alert receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import CachedResult
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import TrustedDigest

MOCK_DIGEST = "sha256:1234567890123456123456789012345612345678901234561234567890123456"


class MockValidator:
    """The validator doubles of cases.yaml ``test_doubles.validators`` (``mock_table``,
    ``mock_allow``, ``mock_deny``, ``not_called``), plus ``signed`` (pins the asked digest) and
    ``transient`` (registry unavailable); records every image it was asked about (``calls``).
    ``otherwise`` is the ``mock_table`` error for an image not in ``table``."""

    BEHAVIOURS = ("mock_table", "mock_allow", "mock_deny", "not_called", "signed", "transient")

    def __init__(
        self,
        name: str,
        type_: str,
        behaviour: str,
        table: list[dict[str, str]] | None = None,
        delay: float = 0.0,
        otherwise: str = "unknown image <image>",
    ) -> None:
        if behaviour not in self.BEHAVIOURS:
            raise ValueError(f"unknown validator double behaviour {behaviour!r}")
        self.name = name
        self.type = type_
        self.behaviour = behaviour
        self.table = {row["image"]: row for row in table or []}
        self.delay = delay
        self.otherwise = otherwise
        self.calls: list[str] = []

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        self.calls.append(image.original)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.behaviour == "not_called":
            raise AssertionError(f"validator {self.name} must not be called ({image.original})")
        if self.behaviour == "mock_allow":
            return TrustedDigest(digest=MOCK_DIGEST)
        if self.behaviour == "signed":  # like a real validator: a pinned digest stays pinned
            return TrustedDigest(digest=image.digest or MOCK_DIGEST)
        if self.behaviour == "mock_deny":
            raise VerificationError("mock validation failure", category=Category.VALIDATION_FAILED)
        if self.behaviour == "transient":
            raise VerificationError("registry unavailable", category=Category.UNAVAILABLE)
        row = self.table.get(image.original)
        if row is None:
            raise VerificationError(
                self.otherwise.replace("<image>", image.original),
                category=Category.VALIDATION_FAILED,
            )
        if "error" in row:
            raise VerificationError(row["error"], category=Category.VALIDATION_FAILED)
        return TrustedDigest(digest=row["digest"])


class UpstreamFormatCache:
    """A ``Cache`` seeded with Connaisseur's ``{"digest","error"}`` values (cases.yaml).

    ``key_of`` maps the raw image of a seed to our key (raw image + configuration hash, D5).
    """

    def __init__(self, key_of: Callable[[str], str]) -> None:
        self.key_of = key_of
        self.entries: dict[str, CachedResult | None] = {}
        self.stored: dict[str, CachedResult] = {}
        self.failing: set[str] = set()

    def seed(self, raw_image: str, value: str) -> None:
        try:
            data = json.loads(value)
        except ValueError:
            self.entries[self.key_of(raw_image)] = None  # unreadable → a miss
            return
        error = data.get("error") or None
        self.entries[self.key_of(raw_image)] = CachedResult(
            digest=data.get("digest") or None,
            category="validation_failed" if error else None,
            message=error,
        )

    async def get(self, key: str) -> CachedResult | None:
        if key in self.failing:
            return None  # the port never raises: a failing read is a miss
        return self.entries.get(key)

    async def put(self, key: str, value: CachedResult, ttl_seconds: int) -> None:
        self.stored[key] = value
        self.entries[key] = value


# --- Kubernetes API ------------------------------------------------------------------------


def kube_object(short: Mapping[str, Any]) -> dict[str, Any]:
    """A full API object from the short form of cases.yaml ``kube_objects``."""
    containers = {
        ctype: [{"name": f"c{i}", "image": image} for i, image in enumerate(short.get(ctype) or [])]
        for ctype in ("containers", "initContainers", "ephemeralContainers")
    }
    pod_spec = {k: v for k, v in containers.items() if v or k == "containers"}
    kind = short["kind"]
    if kind == "Pod":
        spec: dict[str, Any] = pod_spec
    elif kind == "CronJob":
        spec = {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}
    else:
        spec = {"template": {"spec": pod_spec}}
    return {
        "apiVersion": short["apiVersion"],
        "kind": kind,
        "metadata": {"namespace": short["namespace"], "name": short["name"], "uid": short["uid"]},
        "spec": spec,
    }


@dataclass
class KubeApiServer:
    """A local HTTPS server answering ``GET`` of namespaced objects like the API server."""

    url: str
    requests: list[tuple[str, str]]  # (path, Authorization header)


def kube_api_app(
    objects: list[Mapping[str, Any]], requests: list[tuple[str, str]]
) -> web.Application:
    index: dict[str, dict[str, Any]] = {}
    for short in objects:
        group_version = short["apiVersion"]
        group, _, version = group_version.rpartition("/")
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        resource = short["kind"].lower() + "s"
        path = f"{base}/namespaces/{short['namespace']}/{resource}/{short['name']}"
        index[path] = kube_object(short)

    async def handle(request: web.Request) -> web.Response:
        requests.append((request.path, request.headers.get("Authorization", "")))
        if request.headers.get("Authorization") != "Bearer test-token":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        obj = index.get(request.path)
        if obj is None:
            return web.json_response(
                {"kind": "Status", "reason": "NotFound", "code": 404}, status=404
            )
        return web.json_response(obj)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


# --- alert receiver ------------------------------------------------------------------------


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


def receiver_app(received: list[Received], delay: float = 0.0) -> web.Application:
    """cases.yaml ``mock_servers.webhook``: records; 400 on a wrong Content-Type; 500 on fail."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(Received(body, dict(request.headers)))
        if delay:
            await asyncio.sleep(delay)
        allow_no_header = body in (b"allow_no_header", b'{"allow_no_header":true}')
        content_type = request.headers.get("Content-Type", "")
        if not allow_no_header and content_type not in ("application/json", "my/weird/format"):
            return web.Response(status=400, text="bad content type")
        if body in (b"fail", b'{"fail":true}'):
            return web.Response(status=500, text="fail")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
