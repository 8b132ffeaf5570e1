"""Alert payload templates: ``{{ placeholder }}`` substitution with JSON-safe escaping.

A template is parsed once (at start-up) into literal text and placeholders, so an unknown
placeholder or a stray ``{{{`` is a start-up error rather than a failed alert at 3 a.m. Values
are inserted JSON-string-escaped, so a template may put any placeholder inside a JSON string
literal without a value being able to break out of it. The rendered text must be a JSON object;
``payloadFields`` overwrite its top-level keys; the result is re-serialised compactly with sorted
keys and ``<``, ``>``, ``&`` escaped (what Connaisseur's receivers have always received).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connaisseur.domain.errors import Category, ConnaisseurError

#: Every placeholder a template may use: Connaisseur v3's set, so its templates keep working.
PLACEHOLDERS = frozenset(
    {
        "alert_message",
        "priority",
        "connaisseur_pod_id",
        "namespace",
        "cluster",
        "timestamp",
        "request_id",
        "images",
    }
)

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_MAX_TEMPLATE_BYTES = 64 * 1024


class TemplateError(ConnaisseurError):
    """A template cannot be parsed or rendered."""

    category = Category.TEMPLATE_ERROR


@dataclass(frozen=True, slots=True)
class AlertTemplate:
    """A parsed template: alternating literal text and placeholder names."""

    name: str
    parts: tuple[tuple[bool, str], ...]  # (is_placeholder, text or name)

    @classmethod
    def parse(cls, name: str, text: str) -> AlertTemplate:
        """Split ``text`` into literals and ``{{ name }}`` placeholders.

        Raises:
            TemplateError: ``{{{``, an unterminated ``{{``, braces inside a placeholder, an
                unknown placeholder, or a template above 64 KiB.
        """
        if len(text.encode()) > _MAX_TEMPLATE_BYTES:
            raise TemplateError(f"template {name} exceeds {_MAX_TEMPLATE_BYTES} bytes")
        parts: list[tuple[bool, str]] = []
        rest = text
        while (start := rest.find("{{")) != -1:
            parts.append((False, rest[:start]))
            rest = rest[start + 2 :]
            end = rest.find("}}")
            inner = rest[:end] if end != -1 else rest
            if end == -1 or "{" in inner or "}" in inner:
                raise TemplateError(f'failed to parse template {name}: unexpected "{{" in command')
            key = inner.strip()
            if key not in PLACEHOLDERS:
                raise TemplateError(
                    f"failed to render template {name}: unknown placeholder {key!r} "
                    f"(one of {', '.join(sorted(PLACEHOLDERS))})"
                )
            parts.append((True, key))
            rest = rest[end + 2 :]
        parts.append((False, rest))
        return cls(name, tuple(p for p in parts if p[1] or p[0]))

    def render(self, values: Mapping[str, str | int]) -> str:
        """The template text with every placeholder replaced by its JSON-escaped value."""
        return "".join(
            _escape(values.get(text, "")) if is_key else text for is_key, text in self.parts
        )

    def payload(
        self, values: Mapping[str, str | int], payload_fields: Mapping[str, Any] | None = None
    ) -> bytes | None:
        """The body to send, or ``None`` when the rendering is empty or ``{}`` (nothing to send).

        Raises:
            TemplateError: the rendering is not a JSON object.
        """
        return payload_body(self.name, self.render(values), payload_fields)


def payload_body(
    name: str, rendered: str, payload_fields: Mapping[str, Any] | None = None
) -> bytes | None:
    """Merge ``payload_fields`` into the rendered JSON object and serialise it like Go does.

    Raises:
        TemplateError: ``rendered`` is not a JSON object.
    """
    if rendered.strip() in ("", "{}"):
        return None
    try:
        document = json.loads(rendered)
    except ValueError as e:
        raise TemplateError(f"failed to unmarshal rendered template {name}: {e}") from e
    if not isinstance(document, dict):
        raise TemplateError(f"rendered template {name} is not a JSON object")
    document.update(payload_fields or {})
    return go_json(document).encode()


def go_json(document: Any) -> str:
    """Compact JSON with sorted keys and ``<``, ``>``, ``&`` escaped (Go's ``json.Marshal``)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in _HTML_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _escape(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    # JSON string escaping without HTML escaping: the value can sit inside a string literal.
    return json.dumps(value, ensure_ascii=False)[1:-1]
