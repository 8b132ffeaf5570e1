"""Registry mirrors as configured (``mirrors``, global and per validator) → typed settings.

The shape and its meaning are docs/decisions/0050-registry-mirrors.md: a ``source`` (a registry,
optionally with a repository prefix) is reached through an ordered list of ``endpoints``, each
with its own ``cert`` and ``auth`` and the ``capabilities`` containerd's ``hosts.toml`` gives a
host (``pull``: content by digest; ``resolve``: tags and other mutable names); the source itself
is tried last unless ``fallbackToSource: false``.

Everything is checked once, when the configuration loads, each part by the one rule the whole
configuration has for it (docs/decisions/0013-strict-configuration.md): URLs by
``config.url_checks``, certificates by ``config.validators.parse_certificates``, ``auth`` by
``config.auth``; here only what is a mirror's own: sources, repository prefixes, capabilities
and credentials never sent over plain HTTP to the network
(docs/decisions/0026-upstream-credentials-and-redirects.md). Only the composition root reads the
result; the application never sees a mirror.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from connaisseur.application.settings import AuthSettings
from connaisseur.config import schema
from connaisseur.config.auth import keyed_to, load_auth
from connaisseur.config.url_checks import checked_base_url, invalid_url
from connaisseur.config.validators import parse_certificates
from connaisseur.domain.errors import ConfigError
from connaisseur.domain.image import DOCKER_HUB, DOCKER_HUB_ALIASES, is_valid_registry
from connaisseur.domain.trust import Certificates
from connaisseur.domain.urls import is_loopback

#: A repository prefix: path components as the reference grammar allows them.
_PREFIX = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorEndpoint:
    """One place a source's content can be read from, in the order it is tried."""

    scheme: str  # "https" or "http"
    registry: str  # host[:port]
    prefix: str  # repository path on the mirror that stands for the source ("" for none)
    cert: Certificates | None = None
    auth: AuthSettings = field(default_factory=AuthSettings)
    resolve: bool = True  # may answer for tags and other mutable names, not only digests

    @property
    def location(self) -> str:
        """``registry[/prefix]``, as messages and keys name the endpoint."""
        return f"{self.registry}/{self.prefix}" if self.prefix else self.registry


@dataclass(frozen=True, slots=True, kw_only=True)
class Mirror:
    """A source (``registry`` or ``registry/repository-prefix``, normalised) and its mirrors."""

    source: str
    endpoints: tuple[MirrorEndpoint, ...]
    fallback_to_source: bool = True

    def fingerprint(self) -> tuple[Any, ...]:
        """What identifies where this source is read from (cache keys); secrets excluded."""
        return (
            self.source,
            self.fallback_to_source,
            tuple(
                (e.scheme, e.location, e.cert, e.auth.secret_name, e.resolve)
                for e in self.endpoints
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryMirrors:
    """The global ``mirrors`` and each validator's own (validator name → its entries)."""

    shared: tuple[Mirror, ...] = ()
    by_validator: tuple[tuple[str, tuple[Mirror, ...]], ...] = ()

    def for_validator(self, name: str) -> tuple[Mirror, ...]:
        """The validator's entries, then the global ones for sources it does not name itself."""
        own = dict(self.by_validator).get(name, ())
        named = {m.source for m in own}
        return own + tuple(m for m in self.shared if m.source not in named)

    def plain_http_registries(self) -> frozenset[str]:
        """Every endpoint configured with ``http://``: reached without TLS."""
        everything = self.shared + tuple(m for _, ms in self.by_validator for m in ms)
        return frozenset(e.registry for m in everything for e in m.endpoints if e.scheme == "http")


def load_mirrors(
    raw: Sequence[Mapping[str, Any]] | None, secrets_dir: Path | None, path: str
) -> tuple[Mirror, ...]:
    """A ``mirrors`` list the schema (``config.schema.MirrorSchema``) has let through.

    Raises:
        ConfigError: every problem, each with its path (``mirrors[0].endpoints[1].url: ...``).
    """
    problems: list[str] = []
    checked = schema.Collected(problems)

    mirrors = [
        checked(_mirror, m, secrets_dir, f"{path}[{i}]")
        for i, m in enumerate(raw or [])
        if isinstance(m, Mapping) and "source" in m  # else the schema has said what is wrong
    ]
    found = [m for m in mirrors if m is not None]
    sources = [m.source for m in found]
    twice = sorted({s for s in sources if sources.count(s) > 1})
    if twice:
        problems.append(f"{path}: sources named more than once: {', '.join(twice)}")
    if problems:
        raise ConfigError(f"{path} has {len(problems)} error(s)", tuple(problems))
    return tuple(found)


def _mirror(raw: Mapping[str, Any], secrets_dir: Path | None, path: str) -> Mirror:
    problems: list[str] = []
    source = None
    try:
        source = parse_mirror_source(str(raw["source"]), f"{path}.source")
    except ConfigError as e:
        problems.extend(e.problems)
    endpoints = []
    for j, entry in enumerate(raw.get("endpoints") or []):
        if not isinstance(entry, Mapping) or "url" not in entry:
            continue  # the schema has said what is wrong
        try:
            endpoints.append(_endpoint(entry, secrets_dir, f"{path}.endpoints[{j}]"))
        except ConfigError as e:
            problems.extend(e.problems)
    fallback = bool(raw.get("fallbackToSource", True))
    if not fallback and endpoints and not any(e.resolve for e in endpoints):
        problems.append(
            f"{path}: with fallbackToSource false, some endpoint must have the resolve "
            "capability, or no tag could be resolved"
        )
    if problems or source is None:
        raise ConfigError(problems[0], tuple(problems))
    return Mirror(source=source, endpoints=tuple(endpoints), fallback_to_source=fallback)


def parse_mirror_source(value: str, path: str) -> str:
    """``registry[/repository-prefix]``, with Docker Hub spelt ``index.docker.io`` as image
    references are (``docker.io/library`` → ``index.docker.io/library``).

    Raises:
        ConfigError: not a registry with an optional repository prefix.
    """
    registry, _, prefix = value.partition("/")
    if not is_valid_registry(registry) or (prefix and not _PREFIX.fullmatch(prefix)):
        raise ConfigError(
            f"{path}: {value[:120]!r} is not a registry with an optional repository prefix "
            "(e.g. docker.io or registry.example:5000/team)"
        )
    registry = DOCKER_HUB if registry in DOCKER_HUB_ALIASES else registry.lower()
    return f"{registry}/{prefix}" if prefix else registry


def _endpoint(raw: Mapping[str, Any], secrets_dir: Path | None, path: str) -> MirrorEndpoint:
    url = _endpoint_url(str(raw["url"]), f"{path}.url")
    capabilities = set(raw.get("capabilities") or ("pull", "resolve"))
    if "pull" not in capabilities:
        raise ConfigError(f"{path}.capabilities: without pull the endpoint would never be read")
    certificates = parse_certificates(raw.get("cert"), f"{path}.cert")
    auth = _auth(raw.get("auth"), secrets_dir, url.registry, f"{path}.auth")
    if auth.credentials and url.scheme == "http" and not is_loopback(url.registry):
        raise ConfigError(
            f"{path}.auth: credentials are never sent over plain HTTP to {url.registry}; use https"
        )
    return MirrorEndpoint(
        scheme=url.scheme,
        registry=url.registry,
        prefix=url.prefix,
        cert=certificates,
        auth=auth,
        resolve="resolve" in capabilities,
    )


class EndpointUrl(NamedTuple):
    """An endpoint URL, checked and taken apart."""

    scheme: str  # "https" (also when the URL names none) or "http"
    registry: str  # host[:port], lower case
    prefix: str  # the repository prefix its path names ("" for none)


def _endpoint_url(value: str, path: str) -> EndpointUrl:
    """An endpoint URL: a base URL whose path, if any, is a repository prefix.

    Raises:
        ConfigError: not a base URL (config.url_checks), or a path that is no repository prefix.
    """
    url = checked_base_url(value, path)
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    if prefix and not _PREFIX.fullmatch(prefix):
        raise invalid_url(path, url, "its path is not a repository prefix")
    return EndpointUrl(scheme=parts.scheme, registry=parts.netloc.lower(), prefix=prefix)


def _auth(
    raw: Mapping[str, Any] | None, secrets_dir: Path | None, registry: str, path: str
) -> AuthSettings:
    """The endpoint's ``auth``; credentials that name no registry are this endpoint's."""
    auth = load_auth(raw, secrets_dir, path)
    return replace(auth, credentials=keyed_to(auth.credentials, registry))
