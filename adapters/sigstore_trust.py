"""The Sigstore public-good trust material, read from the ``sigstore`` package (no network).

sigstore-python ships the TUF-distributed ``trusted_root.json`` of the public-good instance. We
validate it with sigstore's own :class:`sigstore.models.TrustedRoot` and turn its Rekor keys, CT
log keys, Fulcio certificates and timestamp authorities into the domain's
:class:`TransparencyMaterial` (``domain/trusted_root.py``). Keys are never pasted into our
code; upgrading the ``sigstore`` package refreshes them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from connaisseur.domain.errors import ConfigError
from connaisseur.domain.sigstore import TransparencyMaterial
from connaisseur.domain.trusted_root import material_from_trusted_root

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
