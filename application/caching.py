"""The honest cache: what is cached, under which key, and how it is replayed.

D5, docs/decisions/0005-honest-cache.md.

* Key: the raw image string plus a hash of the effective rule (pattern, options) and the
  validator's configuration — a configuration change never reuses an old verdict.
* Only definitive results: a trusted digest, or a permanent denial (when ``cacheErrors``).
  Transient failures (``domain.errors.TRANSIENT_CATEGORIES``) are never stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from enum import Enum
from typing import Any

from connaisseur.application.ports import CachedResult
from connaisseur.domain.errors import TRANSIENT_CATEGORIES, Category
from connaisseur.domain.policy import Rule
from connaisseur.domain.verdict import ImageVerdict


def stable(value: Any) -> Any:
    """A JSON-able form of settings values (dataclasses, enums, tuples).

    Every field that takes part in equality is included; fields left out of it
    (``compare=False``) hold parsed forms of another field, e.g. a key parsed from its PEM, whose
    ``repr`` would differ between processes.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: stable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare
        }
    if isinstance(value, tuple | list):
        return [stable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def fingerprint_hash(*parts: Any) -> str:
    """A short, stable hash of ``parts`` (configuration fingerprints)."""
    text = json.dumps(stable(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def rule_fingerprint(rule: Rule, validator_fingerprint: str) -> str:
    """What identifies the effective configuration an image was judged under."""
    return fingerprint_hash(
        rule.pattern, rule.validator, rule.options.fingerprint(), validator_fingerprint
    )


def cache_key(raw_image: str, configuration: str) -> str:
    """``<raw image>|<configuration hash>``: the image as written, under this configuration."""
    return f"{raw_image}|{configuration}"


def definitive(verdict: ImageVerdict, cache_errors: bool) -> CachedResult | None:
    """What to store for ``verdict``, or ``None`` when it must not be cached."""
    if verdict.allowed:
        return CachedResult(digest=verdict.digest) if verdict.digest else None
    if not cache_errors or verdict.category is None or verdict.category in TRANSIENT_CATEGORIES:
        return None
    return CachedResult(category=str(verdict.category), message=verdict.message or "")


def cached_category(result: CachedResult) -> Category:
    """The category of a cached denial; unknown names replay as ``validation_failed``."""
    try:
        category = Category(result.category or "")
    except ValueError:
        return Category.VALIDATION_FAILED
    return Category.VALIDATION_FAILED if category in TRANSIENT_CATEGORIES else category
