"""Authentication to registries and Notary servers, written once for both adapters.

* the ``WWW-Authenticate`` parser (RFC 7235: several challenges, quoted strings, any case);
* the credential policy: credentials — Basic, or sent to a token service — travel over HTTPS,
  or over plain HTTP only between loopback hosts; a token realm is an absolute ``https`` URL
  without userinfo (``http`` only when both the realm and the server that named it are
  loopback), on any host, as the Docker token flow needs (Docker Hub's realm is
  ``auth.docker.io``);
* Basic, and the Bearer token flow (``service``, our ``scope``, ``account``);
* one token cache keyed by (server, scope, credential identity), so one validator's credentials
  never serve another, with concurrent requests for the same token sharing one fetch.

See docs/decisions/0026-upstream-credentials-and-redirects.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from connaisseur.adapters.http import HttpClient, status_error
from connaisseur.application.deadline import Deadline
from connaisseur.application.settings import Credentials
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.urls import is_loopback, onward_problem

DEFAULT_TOKEN_SECONDS = 60.0
#: A token is kept at most this long whatever its ``expires_in`` says (``Infinity`` is JSON too).
MAX_TOKEN_SECONDS = 3600.0
_TOKEN_MARGIN_SECONDS = 5.0
_MAX_CACHED_TOKENS = 4096
_MAX_TOKEN_BYTES = 64 * 1024
_MAX_CHALLENGE_PARAMS = 16

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_ESCAPED = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lower case) and parameters (names lower case)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (RFC 7235 §4.1), in order.

    Tolerant: a malformed tail ends the parse, keeping the challenges read so far.
    """
    challenges: list[Challenge] = []
    scheme: str | None = None
    params: dict[str, str] = {}
    pos, end = 0, len(header)
    while pos < end:
        pos = _skip(header, pos, " \t,")
        word = _TOKEN.match(header, pos)
        if word is None:
            break
        after = _skip(header, word.end(), " \t")
        if scheme is not None and after < end and header[after] == "=":
            value, pos = _param_value(header, _skip(header, after + 1, " \t"))
            if value is None:
                break
            if len(params) < _MAX_CHALLENGE_PARAMS:
                params.setdefault(word.group().lower(), value)
            continue
        if scheme is not None:
            challenges.append(Challenge(scheme, params))
        scheme, params, pos = word.group().lower(), {}, after
        blob = _TOKEN68.match(header, pos)
        if blob and _skip(header, blob.end(), " \t") in (end, _comma(header, blob.end())):
            pos = blob.end()  # token68 (not used by registries): skipped
    if scheme is not None:
        challenges.append(Challenge(scheme, params))
    return challenges


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _comma(text: str, pos: int) -> int:
    pos = _skip(text, pos, " \t")
    return pos if pos < len(text) and text[pos] == "," else -1


def _param_value(text: str, pos: int) -> tuple[str | None, int]:
    quoted = _QUOTED.match(text, pos)
    if quoted:
        return _ESCAPED.sub(r"\1", quoted.group(1)), quoted.end()
    token = _TOKEN.match(text, pos)
    if token:
        return token.group(), token.end()
    return None, pos


def parse_challenge(header: str) -> Challenge | None:
    """The challenge to answer: Bearer (with a realm) before Basic; ``None`` when neither."""
    usable = [
        c
        for c in parse_challenges(header)
        if c.scheme == "basic" or (c.scheme == "bearer" and c.params.get("realm"))
    ]
    usable.sort(key=lambda c: c.scheme != "bearer")
    return usable[0] if usable else None


# --- the credential policy ---------------------------------------------------------------------


def may_carry_credentials(url: str) -> bool:
    """Whether credentials may be sent to ``url``: HTTPS, or plain HTTP to a loopback host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback(parts.netloc)


def identity(creds: Credentials | None) -> str:
    """A short, non-reversible name for a set of credentials (``""`` for anonymous)."""
    if creds is None:
        return ""
    secret = f"{creds.username}\0{creds.password}".encode()
    return hashlib.sha256(secret).hexdigest()[:32]


def basic_authorization(creds: Credentials) -> dict[str, str]:
    raw = f"{creds.username}:{creds.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- Basic and Bearer ----------------------------------------------------------------------------

_Key = tuple[str, str, str]


class UpstreamAuth:
    """Answers challenges of registries and Notary servers and remembers what they asked for.

    ``server`` is always the host[:port] the credentials were looked up for; it keys the token
    cache together with the scope and the credential identity.
    """

    def __init__(self, http: HttpClient, *, max_tokens: int = _MAX_CACHED_TOKENS) -> None:
        self._http = http
        self._max_tokens = max_tokens
        self._tokens: dict[_Key, tuple[str, float]] = {}
        self._flights: dict[_Key, asyncio.Future[str]] = {}
        self._basic_servers: set[str] = set()

    def cached(
        self, server: str, scope: str, creds: Credentials | None, deadline: Deadline
    ) -> dict[str, str]:
        """What to send before any challenge: a live cached token, Basic for a server that
        asked for Basic before, or nothing."""
        key = (server, scope, identity(creds))
        token = self._tokens.get(key)
        if token is not None:
            if token[1] > deadline.clock.monotonic():
                return {"Authorization": f"Bearer {token[0]}"}
            del self._tokens[key]
        if creds is not None and server in self._basic_servers:
            return basic_authorization(creds)
        return {}

    async def answer(
        self,
        challenge: Challenge | None,
        *,
        url: str,
        server: str,
        scope: str,
        creds: Credentials | None,
        ca_pem: str | None,
        deadline: Deadline,
    ) -> dict[str, str] | None:
        """The ``Authorization`` header answering ``challenge`` from ``url``; ``None`` when it
        cannot be answered (no challenge, Basic without credentials, an unknown scheme).

        Raises:
            VerificationError: ``fetch_failed`` for a refused realm or a plain-HTTP server
                asking for Basic credentials, ``unauthorized`` when the token service refuses
                the credentials, and the HTTP client's errors.
        """
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if creds is None:
                return None
            if not may_carry_credentials(url):
                raise VerificationError(
                    f"{server} asks for credentials over plain HTTP; they are sent only over "
                    "HTTPS (or to a loopback host)",
                    category=Category.FETCH_FAILED,
                )
            self._basic_servers.add(server)
            return basic_authorization(creds)
        if challenge.scheme != "bearer" or not challenge.params.get("realm"):
            return None
        token = await self._token(challenge, server, scope, creds, ca_pem, deadline)
        return {"Authorization": f"Bearer {token}"}

    async def _token(
        self,
        challenge: Challenge,
        server: str,
        scope: str,
        creds: Credentials | None,
        ca_pem: str | None,
        deadline: Deadline,
    ) -> str:
        """A Bearer token for (server, scope, identity); concurrent callers share one request
        (concurrent fetches that all met the same challenge would otherwise each ask)."""
        key = (server, scope, identity(creds))
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(
                self._fetch_token(challenge, key, creds, ca_pem, deadline)
            )
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        # Shielded: one caller giving up must not fail the others sharing the request.
        return await asyncio.shield(flight)

    def _land(self, key: _Key, flight: asyncio.Future[str]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here, so an unawaited failure is not reported twice

    async def _fetch_token(
        self,
        challenge: Challenge,
        key: _Key,
        creds: Credentials | None,
        ca_pem: str | None,
        deadline: Deadline,
    ) -> str:
        server, scope, _ = key
        realm = challenge.params["realm"]
        problem = onward_problem(server, realm)
        if problem is not None:
            raise VerificationError(
                f"{server} names a token realm that is refused: {problem}",
                category=Category.FETCH_FAILED,
            )
        query = {"service": challenge.params.get("service", ""), "scope": scope}
        headers: dict[str, str] = {}
        if creds is not None:
            query["account"] = creds.username
            headers = basic_authorization(creds)
        separator = "&" if urlsplit(realm).query else "?"
        try:
            url = realm + separator + urlencode({k: v for k, v in query.items() if v})
        except UnicodeEncodeError as e:  # a challenge byte aiohttp could not decode
            raise VerificationError(
                f"{server} names a token service that no URL can carry",
                category=Category.FETCH_FAILED,
            ) from e
        resp = await self._http.request(
            "GET", url, deadline, headers=headers, ca_pem=ca_pem, max_bytes=_MAX_TOKEN_BYTES
        )
        if resp.status in (401, 403):
            raise VerificationError(
                f"the token service of {server} refused the credentials (HTTP {resp.status})",
                category=Category.UNAUTHORIZED,
            )
        error = status_error(resp.status, f"the token service of {server}")
        if error is not None:
            raise error
        token, seconds = _token_from(resp.body, server)
        self._remember(key, token, deadline.clock.monotonic() + seconds - _TOKEN_MARGIN_SECONDS)
        return token

    def _remember(self, key: _Key, token: str, expires: float) -> None:
        if len(self._tokens) >= self._max_tokens:
            self._tokens.clear()  # crude but bounded; forgetting only costs a token request
        self._tokens[key] = (token, expires)


def _token_from(body: bytes, server: str) -> tuple[str, float]:
    """(token, lifetime in seconds) of a token service's answer."""
    try:
        doc = jsondoc.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise VerificationError(
            f"the token service of {server} answered with invalid JSON",
            category=Category.FETCH_FAILED,
        ) from e
    token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise VerificationError(
            f"the token service of {server} answered without a token",
            category=Category.FETCH_FAILED,
        )
    lifetime = doc.get("expires_in")
    valid = isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0
    # min before float: an integer past a float's range would raise OverflowError
    return token, float(min(lifetime, MAX_TOKEN_SECONDS)) if valid else DEFAULT_TOKEN_SECONDS
