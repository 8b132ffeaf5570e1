"""AdmissionReview in, command out; verdict in, AdmissionReview out (shared by webhook and CLI).

The envelope is checked by hand rather than by a marshmallow schema: it is six fields on the hot
path, and a schema load per request would cost more than the rest of a static decision.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import jsonpatch
import orjson

from application.review import ReviewCommand
from domain.verdict import RequestVerdict

API_VERSIONS = frozenset({"admission.k8s.io/v1", "admission.k8s.io/v1beta1"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")


class BadRequestError(Exception):
    """The HTTP request is not a usable AdmissionReview; the text is the one-line reason."""


def decode_json(body: bytes, max_depth: int) -> Any:
    """Decode ``body``, refusing documents nested deeper than ``max_depth``.

    Raises:
        BadRequestError: not JSON, or nested too deeply.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequestError(f"received invalid json: {e}") from e
    if _depth_exceeds(document, max_depth):
        raise BadRequestError(f"received invalid json: nested deeper than {max_depth} levels")
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


def parse_review(document: Any, budget_seconds: float) -> tuple[ReviewCommand, str]:
    """The command for a decoded AdmissionReview, and the apiVersion to answer with.

    Raises:
        BadRequestError: not an AdmissionReview or no ``request``.
    """
    if not isinstance(document, Mapping):
        raise BadRequestError("received empty admission request")
    request = document.get("request")
    if not isinstance(request, Mapping):
        raise BadRequestError("received empty admission request")
    api_version = document.get("apiVersion") or "admission.k8s.io/v1"
    if api_version not in API_VERSIONS:
        raise BadRequestError(f"unsupported AdmissionReview apiVersion {api_version!r}")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadRequestError("admission request has no uid")
    kind = request.get("kind")
    command = ReviewCommand(
        uid=uid,
        kind=str(kind.get("kind", "")) if isinstance(kind, Mapping) else "",
        operation=str(request.get("operation") or ""),
        namespace=str(request.get("namespace") or ""),
        object=request.get("object"),
        old_object=request.get("oldObject"),
        budget_seconds=budget_seconds,
    )
    return command, api_version


def parse_timeout(value: str | None) -> float | None:
    """The ``timeout`` query parameter the API server sends (Go duration such as ``10s``)."""
    if not value:
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def render_review(verdict: RequestVerdict, api_version: str) -> dict[str, Any]:
    """The AdmissionReview response for ``verdict`` (connaisseur-v3.md §2.6)."""
    response: dict[str, Any] = {"uid": verdict.uid, "allowed": verdict.allowed}
    if verdict.message is not None:
        response["status"] = {"metadata": {}, "message": verdict.message}
        if not verdict.allowed:
            response["status"]["code"] = 403
            response["status"]["reason"] = str(verdict.category or "denied")
    if verdict.patch:
        response["patch"] = base64.b64encode(patch_bytes(verdict)).decode()
        response["patchType"] = "JSONPatch"
    if verdict.warnings:
        response["warnings"] = list(verdict.warnings)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}


def patch_bytes(verdict: RequestVerdict) -> bytes:
    """The JSON Patch of ``verdict`` as compact bytes."""
    ops = [{"op": "replace", "path": p.path, "value": p.value} for p in verdict.patch]
    return orjson.dumps(jsonpatch.JsonPatch(ops).patch)


def error_review(uid: str, message: str, api_version: str) -> dict[str, Any]:
    """A generic denial for an unexpected failure (fail closed, no internals leaked)."""
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": False,
            "status": {"metadata": {}, "message": message, "code": 500},
        },
    }
