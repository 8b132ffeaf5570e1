"""Notary v1 server client: ping, token flow, and concurrent fetches of TUF role files.

Implements :class:`application.ports.Notary` over the shared :class:`adapters.http.HttpClient`
(size caps, deadline timeouts, error translation). The flow is the Docker client's:
``GET /v2/``; on 401 the ``WWW-Authenticate`` challenge decides between a Bearer token (pull scope
of the GUN, Basic credentials when configured) and plain Basic auth. Challenges and tokens are
remembered so that a warm verification costs one concurrent round of role fetches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from connaisseur.adapters.http import HttpClient, status_error
from connaisseur.application.deadline import Deadline
from connaisseur.application.notaryv1 import host_problem
from connaisseur.application.ports import Endpoint, Notary
from connaisseur.application.settings import Credentials
from connaisseur.domain.errors import Category, VerificationError

_PING_CAP_SECONDS = 5.0
_CHALLENGE_TTL_SECONDS = 300.0
_DEFAULT_TOKEN_SECONDS = 60.0
_TOKEN_MARGIN_SECONDS = 5.0
_MAX_CACHED_TOKENS = 1024
_CHALLENGE = re.compile(r"(?i)\b(bearer|basic)\b\s*((?:[a-z_]+=\"[^\"]*\"\s*,?\s*)*)")
_PARAM = re.compile(r"(?i)([a-z_]+)=\"([^\"]*)\"")


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` challenge: ``bearer`` or ``basic`` plus its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first Bearer or Basic challenge in ``header`` (Bearer preferred), else ``None``."""
    found = [
        Challenge(m.group(1).lower(), {k.lower(): v for k, v in _PARAM.findall(m.group(2))})
        for m in _CHALLENGE.finditer(header)
    ]
    found.sort(key=lambda c: c.scheme != "bearer")
    return found[0] if found else None


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


class NotaryV1HttpClient(Notary):
    """Fetches a GUN's role files concurrently over one pooled session."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http
        self._challenges: dict[str, tuple[Challenge | None, float]] = {}
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        """The served bytes of each role, ``None`` for a 404; all roles in one concurrent round.

        Raises:
            VerificationError: ``fetch_failed`` (unreachable, unusable URL, truncated body,
                over-size), ``timeout``, ``unauthorized``, ``rate_limited``, ``unavailable``.
        """
        base = host.rstrip("/")
        problem = host_problem(base)
        if problem is not None:
            raise VerificationError(
                f"invalid url for notary host {host!r}: {problem}", category=Category.FETCH_FAILED
            )
        headers = await self._authorization(base, gun, endpoint, deadline)
        results = await asyncio.gather(
            *(self._fetch_role(base, gun, role, headers, endpoint, deadline) for role in roles),
            return_exceptions=True,
        )
        fetched: dict[str, bytes | None] = {}
        for role, result in zip(roles, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            fetched[role] = result
        return fetched

    async def _fetch_role(
        self,
        base: str,
        gun: str,
        role: str,
        headers: Mapping[str, str],
        endpoint: Endpoint,
        deadline: Deadline,
    ) -> bytes | None:
        url = f"{base}/v2/{quote(gun, safe='/:')}/_trust/tuf/{quote(role, safe='/')}.json"
        resp = await self._http.request(
            "GET", url, deadline, headers=headers, ca_pem=endpoint.ca_pem
        )
        if resp.status == 404:
            return None
        error = status_error(resp.status, f"Notary trust data {role} of {gun}")
        if error is not None:
            raise error
        if resp.status != 200:
            raise VerificationError(
                f"Notary trust data {role} of {gun}: unexpected HTTP {resp.status}",
                category=Category.FETCH_FAILED,
            )
        return resp.body

    async def _authorization(
        self, base: str, gun: str, endpoint: Endpoint, deadline: Deadline
    ) -> dict[str, str]:
        challenge = await self._challenge(base, endpoint, deadline)
        if challenge is None:
            return {}
        creds = _credentials(endpoint, urlsplit(base).netloc)
        if challenge.scheme == "basic":
            return {"Authorization": _basic(creds)} if creds else {}
        token = await self._token(base, challenge, gun, creds, endpoint, deadline)
        return {"Authorization": f"Bearer {token}"}

    async def _challenge(
        self, base: str, endpoint: Endpoint, deadline: Deadline
    ) -> Challenge | None:
        now = deadline.clock.monotonic()
        cached = self._challenges.get(base)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            resp = await self._http.request(
                "GET",
                f"{base}/v2/",
                deadline,
                ca_pem=endpoint.ca_pem,
                cap_seconds=_PING_CAP_SECONDS,
            )
        except VerificationError as e:
            raise VerificationError(
                f"the Notary server {urlsplit(base).netloc or base} is unreachable: {e.message}",
                category=e.category,
            ) from e
        header = resp.headers.get("WWW-Authenticate", "") if resp.status == 401 else ""
        challenge = parse_challenge(header) if header else None
        self._challenges[base] = (challenge, now + _CHALLENGE_TTL_SECONDS)
        return challenge

    async def _token(
        self,
        base: str,
        challenge: Challenge,
        gun: str,
        creds: Credentials | None,
        endpoint: Endpoint,
        deadline: Deadline,
    ) -> str:
        key = (base, gun, creds.username if creds else "")
        now = deadline.clock.monotonic()
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        realm = challenge.params.get("realm", "")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise VerificationError(
                "the Notary server sent an unusable token realm", category=Category.FETCH_FAILED
            )
        query: dict[str, str] = {"scope": f"repository:{gun}:pull"}
        if "service" in challenge.params:
            query["service"] = challenge.params["service"]
        headers: dict[str, str] = {}
        if creds and creds.username and creds.password:
            query["account"] = creds.username
            headers["Authorization"] = _basic(creds)
        resp = await self._http.request(
            "GET", f"{realm}?{urlencode(query)}", deadline, headers=headers, ca_pem=endpoint.ca_pem
        )
        error = status_error(resp.status, f"the Notary token service for {gun}")
        if error is not None:
            raise error
        token, lifetime = _parse_token(resp.body)
        if len(self._tokens) >= _MAX_CACHED_TOKENS:
            self._tokens.clear()
        self._tokens[key] = (token, now + max(0.0, lifetime - _TOKEN_MARGIN_SECONDS))
        return token


def _credentials(endpoint: Endpoint, host: str) -> Credentials | None:
    """Credentials for the Notary host (longest-prefix lookup)."""
    return endpoint.auth.lookup(host)


def _parse_token(body: bytes) -> tuple[str, float]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise VerificationError(
            "the Notary token service answered with invalid JSON", category=Category.FETCH_FAILED
        ) from e
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise VerificationError(
            "the Notary token service answered without a token", category=Category.FETCH_FAILED
        )
    expires_in = doc.get("expires_in")
    lifetime = (
        float(expires_in)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else _DEFAULT_TOKEN_SECONDS
    )
    return token, lifetime
