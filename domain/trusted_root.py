"""A Sigstore ``trusted_root.json`` document → :class:`TransparencyMaterial`.

The format is the one sigstore-python and sigstore-go read (``dev.sigstore.trustedroot``): Fulcio
certificate authorities, Rekor (``tlogs``) and CT log (``ctlogs``) keys and RFC 3161 timestamp
authorities (for Sigstore bundles, docs/decisions/0041-sigstore-bundles.md), each with its
``validFor`` window, which is kept with the material and honoured as for the public-good
instance (docs/decisions/0028-trust-material-has-a-lifetime.md). Pure: the document comes in
parsed; the public-good one is read by ``adapters/sigstore_trust.py``, a private Sigstore's by the
configuration loader (docs/decisions/0052-private-sigstore-trusted-root.md).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connaisseur.domain.sigstore import (
    FulcioAuthority,
    TimestampAuthority,
    TransparencyMaterial,
    Validity,
    log_id,
)
from connaisseur.domain.trust import PublicKey


def material_from_trusted_root(doc: Mapping[str, Any]) -> TransparencyMaterial:
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


def transparency_log_url(doc: Mapping[str, Any]) -> str | None:
    """The ``baseUrl`` of the first transparency log still in service (no ``validFor`` end),
    else of the first one listed; ``None`` when the document lists none."""
    logs = [log for log in doc.get("tlogs", []) if isinstance(log, Mapping)]
    serving = [log for log in logs if not _window(log).get("end")]
    for log in serving + logs:
        url = log.get("baseUrl")
        if isinstance(url, str) and url:
            return url
    return None


def _window(log: Mapping[str, Any]) -> Mapping[str, Any]:
    public = log.get("publicKey")
    window = public.get("validFor") if isinstance(public, Mapping) else None
    return window if isinstance(window, Mapping) else {}


def _certificates(entries: Sequence[Mapping[str, Any]]) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(base64.b64decode(e["rawBytes"])) for e in entries]


def _keys(
    logs: Sequence[Mapping[str, Any]],
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


def _validity(window: Mapping[str, Any] | None) -> Validity:
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
