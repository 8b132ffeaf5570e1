"""The Sigstore public-good trust material, read from the ``sigstore`` package (no network).

sigstore-python ships the TUF-distributed ``trusted_root.json`` of the public-good instance. We
validate it with sigstore's own :class:`sigstore.models.TrustedRoot` and turn its Rekor keys, CT
log keys, Fulcio certificates and timestamp authorities into the domain's
:class:`TransparencyMaterial`. Keys are never
pasted into our code; upgrading the ``sigstore`` package refreshes them.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connaisseur.domain.errors import ConfigError
from connaisseur.domain.sigstore import (
    FulcioAuthority,
    TimestampAuthority,
    TransparencyMaterial,
    Validity,
    log_id,
)
from connaisseur.domain.trust import PublicKey

_PUBLIC_GOOD = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"


@lru_cache(maxsize=1)
def public_good_material() -> TransparencyMaterial:
    """Rekor keys, CT log keys, Fulcio roots and intermediates of the public-good instance.

    Raises:
        ConfigError: the sigstore package's trusted root is missing or unreadable.
    """
    try:
        from sigstore.models import TrustedRoot

        path = resources.files("sigstore") / "_store" / _PUBLIC_GOOD / "trusted_root.json"
        raw = path.read_bytes()
        TrustedRoot.from_file(str(path))  # sigstore's own validation of the document
        return material_from_trusted_root(json.loads(raw))
    except (OSError, ValueError, KeyError, TypeError, ImportError) as e:
        raise ConfigError(f"cannot read the Sigstore public-good trusted root: {e}") from e


def material_from_trusted_root(doc: dict[str, Any]) -> TransparencyMaterial:
    """Convert a Sigstore ``trusted_root.json`` document (already parsed), keeping every key's
    and certificate authority's ``validFor`` window.

    Raises:
        ValueError, KeyError, TypeError: the document is malformed.
    """
    authorities = [
        FulcioAuthority(
            roots=tuple(c for c in chain if c.issuer == c.subject),
            intermediates=tuple(c for c in chain if c.issuer != c.subject),
            validity=_validity(authority.get("validFor")),
        )
        for authority in doc.get("certificateAuthorities", [])
        for chain in [_certificates(authority["certChain"]["certificates"])]
    ]
    rekor, rekor_validity = _keys(doc.get("tlogs", []))
    ct, ct_validity = _keys(doc.get("ctlogs", []))
    # RFC 3161 timestamps in Sigstore bundles (docs/decisions/0041-sigstore-bundles.md)
    stamping = tuple(
        TimestampAuthority(
            certificates=tuple(_certificates(authority["certChain"]["certificates"])),
            validity=_validity(authority.get("validFor")),
        )
        for authority in doc.get("timestampAuthorities", [])
    )
    return TransparencyMaterial(
        rekor_keys=rekor,
        ct_keys=ct,
        fulcio=tuple(authorities),
        rekor_validity=rekor_validity,
        ct_validity=ct_validity,
        timestamp_authorities=stamping,
    )


def _certificates(entries: list[dict[str, Any]]) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(base64.b64decode(e["rawBytes"])) for e in entries]


def _keys(
    logs: list[dict[str, Any]],
) -> tuple[tuple[tuple[str, PublicKey], ...], dict[str, Validity]]:
    keys: list[tuple[str, PublicKey]] = []
    windows: dict[str, Validity] = {}
    for log in logs:
        public = log.get("publicKey", {})
        raw = public.get("rawBytes")
        if not raw:
            continue
        key = serialization.load_der_public_key(base64.b64decode(raw))
        ident = log_id(key)  # type: ignore[arg-type]
        keys.append((ident, key))  # type: ignore[arg-type]
        windows[ident] = _validity(public.get("validFor"))
    return tuple(keys), windows


def _validity(window: dict[str, Any] | None) -> Validity:
    """A ``validFor`` TimeRange (RFC 3339 ``start``, optional ``end``)."""
    if not window:
        return Validity()
    return Validity(start=_time(window.get("start")), end=_time(window.get("end")))


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"validFor time without offset: {value!r}")
    return moment.astimezone(UTC)
