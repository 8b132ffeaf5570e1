"""The loaded configuration: the application's :class:`Settings` plus what only the composition
root reads — where the adapters get trust data from (offline bundles) and how they reach
upstreams (registry mirrors).

The use cases receive a :class:`Configuration` as the ``Settings`` it is and never see the rest;
``config/container.py`` reads it to choose and configure adapters
(docs/decisions/0054-wiring-settings-stay-in-config.md,
docs/decisions/0056-adapter-choice-is-configuration.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from connaisseur.application.settings import Settings
from connaisseur.config.mirrors import RegistryMirrors


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustDataSources:
    """Which validators read an offline bundle instead of their upstreams
    (docs/decisions/0055-offline-bundles.md): validator name → bundle directory."""

    bundles: tuple[tuple[str, Path], ...] = ()

    def bundle_for(self, validator: str) -> Path | None:
        """The bundle ``validator`` reads, or ``None`` when it fetches from its upstreams."""
        return next((path for name, path in self.bundles if name == validator), None)

    def fingerprint(self, validator: str) -> str:
        """What a cached verdict of ``validator`` was made from (D5 cache keys)."""
        path = self.bundle_for(validator)
        return f"bundle:{path}" if path is not None else "upstream"


@dataclass(frozen=True, slots=True, kw_only=True)
class Configuration(Settings):
    """:class:`Settings` with the adapters' own configuration."""

    sources: TrustDataSources = field(default_factory=TrustDataSources)
    mirrors: RegistryMirrors = field(default_factory=RegistryMirrors)


def trust_data_sources(settings: Settings) -> TrustDataSources:
    """The sources of a loaded configuration (upstreams for settings built another way)."""
    return settings.sources if isinstance(settings, Configuration) else TrustDataSources()


def registry_mirrors(settings: Settings) -> RegistryMirrors:
    """The mirrors of a loaded configuration (none for settings built another way)."""
    return settings.mirrors if isinstance(settings, Configuration) else RegistryMirrors()
