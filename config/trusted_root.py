"""A cosign validator's ``host.trustedRoot``: a private Sigstore's ``trusted_root.json``.

Read once at start-up (docs/decisions/0052-private-sigstore-trusted-root.md): the document is
checked against the Sigstore protobuf-specs model the ``sigstore`` package reads
(``sigstore_models``), then converted by ``domain/trusted_root.py`` with every ``validFor``
window kept. Any problem names the field it is about.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connaisseur.domain.errors import ConfigError
from connaisseur.domain.sigstore import TransparencyMaterial
from connaisseur.domain.trusted_root import material_from_trusted_root, transparency_log_url

MAX_TRUSTED_ROOT_BYTES = 1024 * 1024
_MAX_PROBLEMS = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedRoot:
    """The material of a configured trusted root, what identifies it, and its Rekor URL."""

    material: TransparencyMaterial
    digest: str
    rekor_url: str | None


def load_trusted_root(value: str | Mapping[str, Any], path: str) -> TrustedRoot:
    """``value`` — the JSON text, or the document written as YAML — as a trusted root.

    Raises:
        ConfigError: not JSON, larger than 1 MiB, not a trusted root (each wrong field named),
            or key and certificate bytes that do not parse.
    """
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text.encode()) > MAX_TRUSTED_ROOT_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_TRUSTED_ROOT_BYTES} bytes")
    _check_model(text, path)
    doc = json.loads(text)
    try:
        material = material_from_trusted_root(doc)
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: unusable key or certificate ({type(e).__name__})") from e
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return TrustedRoot(
        material=material,
        digest="sha256:" + hashlib.sha256(canonical).hexdigest(),
        rekor_url=transparency_log_url(doc),
    )


def _check_model(text: str, path: str) -> None:
    """The document against sigstore's model of a trusted root (structure and media type)."""
    from pydantic import ValidationError
    from sigstore_models.trustroot.v1 import TrustedRoot as Model

    try:
        Model.from_json(text)
    except ValidationError as e:
        problems = tuple(
            f"{_location(path, error['loc'])}: {error['msg']}"
            for error in e.errors()[:_MAX_PROBLEMS]
        )
        raise ConfigError(problems[0] if problems else f"{path}: invalid", problems) from e


def _location(path: str, loc: tuple[Any, ...]) -> str:
    """``path`` followed by a model error's location: ``.tlogs[0].baseUrl``."""
    return path + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
