"""Attestations a rule requires (``with.attestations``) and the declarative check of their
predicate (docs/decisions/0042-attestation-conditions.md).

A requirement names an in-toto predicate type and a few conditions on fields of the predicate:
a field *equals* a value, *matches* a regular expression (the whole value), or *is one of*
several values. No policy language: the configuration loader builds these values once (the
regular expressions compiled), and the check is a walk down a path and a comparison. An
attestation fulfils a requirement when a selected trust root signed it, it is about the
admitted digest, and every condition holds; a denial names the predicate type and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connaisseur.domain.dsse import Statement
from connaisseur.domain.errors import Category, Rejection
from connaisseur.domain.sigstore import Stage

#: A JSON scalar a condition compares with.
Scalar = str | int | float | bool | None
#: Values longer than this are not compared (a regular expression over a hostile megabyte).
MAX_COMPARED_CHARACTERS = 4096
_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


def parse_field_path(text: str) -> tuple[str, ...]:
    """``runDetails.builder.id`` → its keys; ``\\.`` is a dot inside a key, and a key that is
    a number indexes a list.

    Raises:
        ValueError: an empty path or an empty key.
    """
    keys = tuple(k.replace("\\.", ".") for k in _UNESCAPED_DOT.split(text))
    if not text or any(not k for k in keys):
        raise ValueError(f"field path {text!r} has an empty key")
    return keys


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One field of the predicate and what it must be: exactly one of ``equals``, ``matches``
    and ``one_of`` is set (the loader guarantees it)."""

    field: str
    path: tuple[str, ...]
    equals: Scalar = None
    has_equals: bool = False
    matches: re.Pattern[str] | None = None
    one_of: tuple[Scalar, ...] | None = None

    def failure(self, predicate: Any) -> str | None:
        """Why the predicate does not satisfy this condition, or ``None`` when it does."""
        found, value = _walk(predicate, self.path)
        if not found:
            return f"field {self.field} is missing"
        if isinstance(value, str) and len(value) > MAX_COMPARED_CHARACTERS:
            return f"field {self.field} is longer than {MAX_COMPARED_CHARACTERS} characters"
        if self.has_equals and not same(value, self.equals):
            return f"field {self.field} is {_show(value)}, expected {_show(self.equals)}"
        if self.matches is not None and not (
            isinstance(value, str) and self.matches.fullmatch(value)
        ):
            return (
                f"field {self.field} is {_show(value)}, which does not match "
                f"{self.matches.pattern!r}"
            )
        if self.one_of is not None and not any(same(value, v) for v in self.one_of):
            shown = ", ".join(_show(v) for v in self.one_of)
            return f"field {self.field} is {_show(value)}, not one of {shown}"
        return None

    def describe(self) -> str:
        if self.has_equals:
            return f"{self.field} equals {_show(self.equals)}"
        if self.matches is not None:
            return f"{self.field} matches {self.matches.pattern!r}"
        return f"{self.field} is one of {', '.join(_show(v) for v in self.one_of or ())}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationRequirement:
    """One entry of ``with.attestations``."""

    predicate_type: str
    conditions: tuple[Condition, ...] = field(default=())

    def fingerprint(self) -> tuple[Any, ...]:
        """What identifies this requirement (part of the rule's cache key, D5)."""
        return (self.predicate_type, tuple(c.describe() for c in self.conditions))

    def check(self, statement: Statement) -> None:
        """The statement's predicate satisfies every condition.

        Raises:
            Rejection: ``predicate_mismatch`` naming the predicate type and the first failing
                field (stage ``PREDICATE``).
        """
        for condition in self.conditions:
            why = condition.failure(statement.predicate)
            if why is not None:
                raise Rejection(
                    f"attestation {self.predicate_type}: {why}",
                    category=Category.PREDICATE_MISMATCH,
                    stage=Stage.PREDICATE,
                )


def same(found: Any, wanted: Scalar) -> bool:
    """JSON equality of scalars: ``true`` is not ``1``, ``1`` is ``1.0``, ``"1"`` is not ``1``."""
    if isinstance(found, bool) or isinstance(wanted, bool):
        return isinstance(found, bool) and isinstance(wanted, bool) and found is wanted
    if isinstance(found, int | float) and isinstance(wanted, int | float):
        return found == wanted
    return type(found) is type(wanted) and found == wanted


def _walk(node: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    return True, node


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    if value is None:
        return "null"
    text = repr(value) if isinstance(value, str) else str(value).lower()
    return text if len(text) <= 120 else text[:117] + "…"
