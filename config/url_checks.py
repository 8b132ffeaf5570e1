"""The one URL rule of the configuration: Notary hosts, Rekor hosts, mirror endpoints and alert
receivers.

Every URL the configuration names is checked here, once, when the configuration loads; the
code that later uses the URL takes it as given.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from connaisseur.domain.errors import ConfigError
from connaisseur.domain.urls import SafeUrl

# A DNS name or IP literal with an optional port: nothing that would need escaping.
_AUTHORITY = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$"
)


def url_problem(url: str, *, base: bool) -> str | None:
    """Why ``url`` cannot be used, or ``None`` when it can. The answer never quotes the URL
    (receiver URLs carry tokens).

    Every URL must parse (valid port), use ``http`` or ``https`` and name a host. A ``base``
    URL (an upstream's address that paths are appended to) must moreover be plain: a DNS name or
    IP literal with an optional port, no user info, query, fragment, white space or control
    characters.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "it cannot be parsed (bad host or port)"
    if parts.scheme not in ("http", "https"):
        return f"the scheme must be http or https, not {parts.scheme!r}"
    if not parts.hostname:
        return "it names no host"
    if not base:
        return None
    if not _AUTHORITY.match(parts.netloc):
        return "it names no valid host"
    if any(c.isspace() or not c.isprintable() for c in url) or parts.query or parts.fragment:
        return "it is not a plain base URL"
    return None


def base_url(value: str, path: str) -> str:
    """``value`` as a base URL: ``https://`` added when no scheme is given, no trailing ``/``.
    A problem shows the URL without credentials (docs/decisions/0027-urls-without-credentials.md).

    Raises:
        ConfigError: the URL is unusable; the message names ``path`` and the reason.
    """
    return checked_base_url(value, path).rstrip("/")


def checked_base_url(value: str, path: str) -> str:
    """``value`` as a base URL, ``https://`` added when no scheme is given, its path as given.

    Raises:
        ConfigError: the URL is unusable (:func:`invalid_url`).
    """
    url = value if "://" in value else "https://" + value
    problem = url_problem(url, base=True)
    if problem is not None:
        raise invalid_url(path, url, problem)
    return url


def invalid_url(path: str, url: str, problem: str) -> ConfigError:
    """The error for a configured URL at ``path`` that cannot be used, and why; the URL shown
    without credentials (docs/decisions/0027-urls-without-credentials.md)."""
    return ConfigError(f"{path}: invalid URL {str(SafeUrl.of(url))!r}: {problem}")
