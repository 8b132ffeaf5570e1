"""Notary v1 server client: ping, token flow, and concurrent fetches of TUF role files.

Implements :class:`application.ports.Notary` over the shared :class:`adapters.http.HttpClient`
(size caps, deadline timeouts, error translation). The flow is the Docker client's:
``GET /v2/``; on 401 the ``WWW-Authenticate`` challenge decides between a Bearer token (pull scope
of the GUN, Basic credentials when configured) and plain Basic auth, answered by the shared
:class:`adapters.upstream_auth.UpstreamAuth` (the same parser, credential and realm policy and
token cache as the registry client). Challenges and tokens are remembered so that a warm
verification costs one concurrent round of role fetches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlsplit

from connaisseur.adapters.http import HttpClient, status_error
from connaisseur.adapters.upstream_auth import Challenge, UpstreamAuth, parse_challenge
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint, Notary
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.urls import SafeUrl

_PING_CAP_SECONDS = 5.0
_CHALLENGE_TTL_SECONDS = 300.0
_MAX_REMEMBERED_SERVERS = 1024


class NotaryV1HttpClient(Notary):
    """Fetches a GUN's role files concurrently over one pooled session."""

    def __init__(self, http: HttpClient, auth: UpstreamAuth | None = None) -> None:
        self._http = http
        self._auth = auth or UpstreamAuth(http)
        self._challenges: dict[str, tuple[Challenge | None, float]] = {}

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        """The served bytes of each role, ``None`` for a 404; all roles in one concurrent round.

        Raises:
            VerificationError: ``fetch_failed`` (unreachable, unusable URL, truncated body,
                over-size), ``timeout``, ``unauthorized``, ``rate_limited``, ``unavailable``.
        """
        base = host.rstrip("/")  # checked by the configuration loader; HttpClient refuses junk
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
        server = urlsplit(base).netloc
        scope = f"repository:{gun}:pull"
        creds = endpoint.auth.lookup(server)  # longest-prefix lookup, keyed to the Notary host
        cached = self._auth.cached(server, scope, creds, deadline)
        if cached:
            return cached
        challenge = await self._challenge(base, endpoint, deadline)
        answer = await self._auth.answer(
            challenge,
            url=f"{base}/v2/",
            server=server,
            scope=scope,
            creds=creds,
            ca_pem=endpoint.ca_pem,
            deadline=deadline,
        )
        return answer or {}

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
                f"the Notary server {SafeUrl.of(base).host} is unreachable: {e.message}",
                category=e.category,
            ) from e
        header = resp.headers.get("WWW-Authenticate", "") if resp.status == 401 else ""
        challenge = parse_challenge(header) if header else None
        if len(self._challenges) >= _MAX_REMEMBERED_SERVERS:
            self._challenges.clear()  # bounded; forgetting only costs a ping
        self._challenges[base] = (challenge, now + _CHALLENGE_TTL_SECONDS)
        return challenge
