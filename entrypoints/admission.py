"""AdmissionReview in, command out; verdict in, AdmissionReview out (shared by webhook and CLI).

The envelope is checked by hand rather than by a marshmallow schema: it is six fields on the hot
path, and a schema load per request would cost more than the rest of a static decision. Every
field read here is type-checked: a review that cannot be answered (no object, no ``request``, no
string ``uid``, no usable ``apiVersion``) is a 400; one that can be answered but has a field of
the wrong type is denied (the API server never sends such a document, so nothing is admitted).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jsonpatch
import orjson

from connaisseur.application.review import ReviewCommand
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.jsondoc import nested_deeper_than
from connaisseur.domain.verdict import Outcome, RequestVerdict

API_VERSIONS = frozenset({"admission.k8s.io/v1", "admission.k8s.io/v1beta1"})
DEFAULT_API_VERSION = "admission.k8s.io/v1"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m)?")
#: How much of an unusable client value a one-line error message quotes.
_QUOTED_CHARS = 64


class BadRequestError(ConnaisseurError):
    """The HTTP request is not a usable AdmissionReview; the message is the one-line reason."""

    category = Category.INVALID_REQUEST


class MalformedRequestError(BadRequestError):
    """A review that can be answered (its ``uid`` and ``apiVersion`` are usable) but has a field
    of the wrong type: it is denied rather than refused with a 400."""

    def __init__(self, message: str, *, uid: str, api_version: str) -> None:
        super().__init__(message)
        self.uid = uid
        self.api_version = api_version

    def verdict(self) -> RequestVerdict:
        """The denial that answers the request."""
        return RequestVerdict(
            uid=self.uid,
            allowed=False,
            outcome=Outcome.INVALID,
            message=self.message,
            category=Category.INVALID_REQUEST,
        )


def decode_json(body: bytes, max_depth: int) -> Any:
    """Decode ``body``, refusing documents nested deeper than ``max_depth``.

    Raises:
        BadRequestError: not JSON, or nested too deeply.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequestError(f"received invalid json: {e}") from e
    if nested_deeper_than(body, max_depth):
        raise BadRequestError(f"received invalid json: nested deeper than {max_depth} levels")
    return document


class ParsedReview(NamedTuple):
    """An AdmissionReview read: the command it asks, and the apiVersion to answer it with."""

    command: ReviewCommand
    api_version: str


def parse_review(document: Any, budget_seconds: float) -> ParsedReview:
    """The command for a decoded AdmissionReview, and the apiVersion to answer with.

    Raises:
        BadRequestError: not an AdmissionReview, no ``request``, no string ``uid`` or an
            unusable ``apiVersion`` (answered with a 400).
        MalformedRequestError: ``request.kind``, ``operation``, ``namespace`` or ``name`` has
            the wrong JSON type (answered with a denial).
    """
    if not isinstance(document, Mapping):
        raise BadRequestError("received empty admission request")
    request = document.get("request")
    if not isinstance(request, Mapping):
        raise BadRequestError("received empty admission request")
    api_version = _api_version(document.get("apiVersion"))
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadRequestError("admission request has no uid")

    answer = _Answerable(uid, api_version)
    kind = request.get("kind")
    if kind is None:
        kind = {}
    elif not isinstance(kind, Mapping):
        raise answer.malformed("request.kind is not an object")
    answer.string(kind.get("group"), "request.kind.group")
    answer.string(kind.get("version"), "request.kind.version")
    answer.string(request.get("name"), "request.name")
    command = ReviewCommand(
        uid=uid,
        kind=answer.string(kind.get("kind"), "request.kind.kind"),
        operation=answer.string(request.get("operation"), "request.operation"),
        namespace=answer.string(request.get("namespace"), "request.namespace"),
        object=request.get("object"),
        old_object=request.get("oldObject"),
        budget_seconds=budget_seconds,
    )
    return ParsedReview(command=command, api_version=api_version)


@dataclass(frozen=True, slots=True)
class _Answerable:
    """A review whose uid and apiVersion are known: its other faults are denials."""

    uid: str
    api_version: str

    def malformed(self, what: str) -> MalformedRequestError:
        return MalformedRequestError(
            f"malformed admission request: {what}", uid=self.uid, api_version=self.api_version
        )

    def string(self, value: Any, field: str) -> str:
        """``value`` if it is a string, ``""`` if absent or null.

        Raises:
            MalformedRequestError: any other JSON type.
        """
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.malformed(f"{field} is not a string")
        return value


def _api_version(value: Any) -> str:
    """The review's ``apiVersion`` (absent: ``v1``).

    Raises:
        BadRequestError: not a string, or not an AdmissionReview version we answer.
    """
    if value is None or value == "":
        return DEFAULT_API_VERSION
    if not isinstance(value, str):
        raise BadRequestError("AdmissionReview apiVersion is not a string")
    if value not in API_VERSIONS:
        raise BadRequestError(f"unsupported AdmissionReview apiVersion {value[:_QUOTED_CHARS]!r}")
    return value


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
    """The AdmissionReview response for ``verdict``, shaped as Connaisseur v3 answers."""
    response: dict[str, Any] = {"uid": verdict.uid, "allowed": verdict.allowed}
    if verdict.message is not None:
        response["status"] = {"metadata": {}, "message": verdict.message}
        if not verdict.allowed:
            response["status"]["code"] = (
                400 if verdict.category is Category.INVALID_REQUEST else 403
            )
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
