"""The Sigstore public-good trust material, read from the ``sigstore`` package (no network).

sigstore-python ships the TUF-distributed ``trusted_root.json`` of the public-good instance. We
validate it with sigstore's own :class:`sigstore.models.TrustedRoot` and turn its Rekor keys, CT
log keys and Fulcio certificates into the domain's :class:`TransparencyMaterial`. Keys are never
pasted into our code; upgrading the ``sigstore`` package refreshes them.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connaisseur.domain.cosign import TransparencyMaterial, log_id
from connaisseur.domain.errors import ConfigError
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
    """Convert a Sigstore ``trusted_root.json`` document (already parsed)."""
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    for authority in doc.get("certificateAuthorities", []):
        for entry in authority["certChain"]["certificates"]:
            cert = x509.load_der_x509_certificate(base64.b64decode(entry["rawBytes"]))
            (roots if cert.issuer == cert.subject else intermediates).append(cert)
    return TransparencyMaterial(
        rekor_keys=_keys(doc.get("tlogs", [])),
        ct_keys=_keys(doc.get("ctlogs", [])),
        fulcio_roots=tuple(roots),
        fulcio_intermediates=tuple(intermediates),
    )


def _keys(logs: list[dict[str, Any]]) -> tuple[tuple[str, PublicKey], ...]:
    keys: list[tuple[str, PublicKey]] = []
    for log in logs:
        raw = log.get("publicKey", {}).get("rawBytes")
        if not raw:
            continue
        key = serialization.load_der_public_key(base64.b64decode(raw))
        keys.append((log_id(key), key))  # type: ignore[arg-type]
    return tuple(keys)
