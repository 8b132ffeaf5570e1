"""How upstream URLs are shown, and which hosts are loopback.

Every message, log line, metric label and ``check-config`` problem that names a receiver,
registry, Notary or Rekor URL renders it through :class:`SafeUrl`: ``scheme://host[:port]``
plus, where it helps, the path — never userinfo (``user:token@``), query or fragment, which
carry credentials (docs/decisions/0027-urls-without-credentials.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Shown for a URL that cannot be taken apart (so nothing of it can be shown safely).
UNPARSABLE = "(unparsable URL)"
_MAX_SHOWN = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class SafeUrl:
    """The parts of a URL that may be shown."""

    scheme: str
    host: str  # host[:port], IPv6 in brackets; "" when the URL names none
    path: str

    @classmethod
    def of(cls, url: str) -> SafeUrl:
        """Split ``url`` (a bare ``host[:port][/path]`` counts as a host); never raises."""
        try:
            parts = urlsplit(url if "://" in url else "//" + url)
            name = parts.hostname or ""
            port = parts.port
        except ValueError:
            return cls(scheme="", host="", path=UNPARSABLE)
        if ":" in name:
            name = f"[{name}]"
        host = f"{name}:{port}" if port is not None else name
        return cls(scheme=parts.scheme.lower(), host=_bounded(host), path=_bounded(parts.path))

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` (just the host when the URL has no scheme)."""
        return f"{self.scheme}://{self.host}" if self.scheme else self.host

    def __str__(self) -> str:
        """``scheme://host[:port]/path``."""
        return self.origin + self.path


def _bounded(text: str) -> str:
    printable = "".join(c if c.isprintable() and not c.isspace() else "?" for c in text)
    return printable if len(printable) <= _MAX_SHOWN else printable[:_MAX_SHOWN] + "..."


def is_loopback(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 and ``::1`` (``host`` may carry a port or be
    a URL). Names are not resolved: a DNS name pointing at 127.0.0.1 is not loopback here."""
    try:
        name = urlsplit(host if "://" in host else "//" + host).hostname or ""
    except ValueError:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def onward_problem(source: str, target: str) -> str | None:
    """Why a URL that ``source`` (a URL or host[:port]) points us to — a redirect's
    ``Location``, a token realm — may not be followed, or ``None``.

    Allowed: any path or host over HTTPS. Refused: anything but an absolute http(s) URL,
    userinfo, whitespace, and plain HTTP unless both ends are loopback hosts (no downgrade and
    no cleartext to the network; docs/decisions/0026-upstream-credentials-and-redirects.md).
    """
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "it is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "it is not an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "it carries userinfo"
    if any(c.isspace() for c in target):
        return "it is not a plain URL"
    if parts.scheme == "http" and not (is_loopback(source) and is_loopback(target)):
        return "plain HTTP is allowed only between loopback hosts"
    return None
