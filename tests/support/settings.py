"""Validator settings for tests, built the way production builds them: by the configuration
loader (``connaisseur.config.validators``), from the mapping a user would write under
``validators:``. Tests never assemble parsed settings by hand, so they get exactly the checks and
the parsed values a running webhook gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connaisseur.application.settings import ValidatorSettings
from connaisseur.config.validators import load_validator, parse_trust_root
from connaisseur.domain.trust import TrustRoot


def validator_settings(
    entry: Mapping[str, Any], secrets_dir: Path | None = None
) -> ValidatorSettings:
    """One ``validators`` entry → settings (``secrets_dir`` resolves ``auth.secretName``).

    Raises:
        ConfigError: as the loader does, every problem with its path under ``validators[0]``.
    """
    return load_validator(entry, secrets_dir, "validators[0]")


def trust_root(validator_type: str, name: str = "default", **fields: Any) -> TrustRoot:
    """One trust root as written under ``trustRoots`` (``key=``, ``cert=``, ``tsCert=``,
    ``keyless=``) → the parsed root a validator of ``validator_type`` receives."""
    return parse_trust_root({"name": name, **fields}, validator_type, "trustRoots[0]")
