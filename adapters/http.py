"""The one place outbound HTTP is done: shared session, size caps, deadline timeouts, errors.

Every adapter that talks HTTP goes through :class:`HttpClient`, so that response size caps
(D8), timeouts drawn from the request budget (D6) and the translation of aiohttp failures into
the domain error family (D9) are written once.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urljoin

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from connaisseur.application.deadline import Deadline
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.urls import SafeUrl, onward_problem

#: Called after every response with (host, status class such as "2xx", or "error"); the host
#: is ``host[:port]`` as :class:`SafeUrl` renders it (never userinfo).
ResponseHook = Callable[[str, str], None]
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Request headers that belong to one origin and are dropped when a redirect leaves it.
_ORIGIN_BOUND = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A fully read, size-capped response; ``headers`` look-ups ignore case."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


class TlsTrustError(VerificationError):
    """The server speaks TLS but its certificate is not trusted by the roots in use
    (``fetch_failed``): a configuration problem, so callers must not retry over plain HTTP."""

    category = Category.FETCH_FAILED


class BodyTooLargeError(VerificationError):
    """The server answered ``status`` with a body longer than the cap (``fetch_failed``): the
    server does answer, and a caller that knows how long a successful body must be may call
    it malformed."""

    category = Category.FETCH_FAILED

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


#: How much of an answer that is not a success is read whatever the caller's cap (a cap sized
#: for one small blob must not cut off the registry's 401 or 404 answer).
ERROR_BODY_BYTES = 64 * 1024


@lru_cache(maxsize=64)
def ssl_context(ca_pem: str | None) -> ssl.SSLContext:
    """System roots, or ``ca_pem`` as the *only* roots (a validator's ``cert``); TLS ≥ 1.2."""
    # With cadata given, create_default_context loads no system roots: the CA is the only root.
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _resolve(base: str, location: str) -> str:
    try:
        return urljoin(base, location.strip())
    except ValueError:
        return location


def status_error(status: int, what: str) -> VerificationError | None:
    """The error for a non-2xx status that callers do not handle themselves (D9), else None."""
    if status < 400:
        return None
    if status in (401, 403):
        return VerificationError(
            f"{what}: access denied (HTTP {status})", category=Category.UNAUTHORIZED
        )
    if status == 429:
        return VerificationError(f"{what}: rate limited (HTTP 429)", category=Category.RATE_LIMITED)
    if status >= 500:
        return VerificationError(
            f"{what}: server unavailable (HTTP {status})", category=Category.UNAVAILABLE
        )
    return VerificationError(f"{what}: unexpected HTTP {status}", category=Category.FETCH_FAILED)


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """The wait a 429/503 asks for (``Retry-After``: seconds or an HTTP date), else None."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class HttpClient:
    """Sends requests over one pooled session and returns bounded, fully read responses."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        max_body_bytes: int = 4 * 1024 * 1024,
        request_cap_seconds: float = 10.0,
        on_response: ResponseHook | None = None,
    ) -> None:
        self._session = session
        self._max_body_bytes = max_body_bytes
        self._cap = request_cap_seconds
        self._on_response = on_response

    async def request(
        self,
        method: str,
        url: str,
        deadline: Deadline,
        *,
        headers: Mapping[str, str] | None = None,
        ca_pem: str | None = None,
        data: bytes | None = None,
        max_bytes: int | None = None,
        cap_seconds: float | None = None,
    ) -> HttpResponse:
        """Send one request; the timeout of each hop is what is left of ``deadline`` (at most
        the cap, or ``cap_seconds`` when given).

        Redirects of GET and HEAD are followed (at most ``MAX_REDIRECTS``) under
        :func:`domain.urls.onward_problem`; ``Authorization`` and ``Cookie`` never cross to
        another origin. Other methods get the redirect answer itself.

        Raises:
            VerificationError: ``timeout`` when the budget is spent, ``fetch_failed`` when the
                server cannot be reached, the body exceeds the cap or a redirect is refused.
        """
        sent = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            resp = await self._once(
                method, url, deadline, sent, ca_pem, data, max_bytes, cap_seconds
            )
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECTS or method not in ("GET", "HEAD") or not location:
                return resp
            target = _resolve(url, location)
            problem = onward_problem(url, target)
            if problem is not None:
                raise VerificationError(
                    f"{SafeUrl.of(url).host} redirects to {SafeUrl.of(target).origin}, which is "
                    f"refused: {problem}",
                    category=Category.FETCH_FAILED,
                )
            if SafeUrl.of(target).origin != SafeUrl.of(url).origin:
                sent = {k: v for k, v in sent.items() if k.lower() not in _ORIGIN_BOUND}
            url = target
        raise VerificationError(
            f"{SafeUrl.of(url).host} redirects more than {MAX_REDIRECTS} times",
            category=Category.FETCH_FAILED,
        )

    async def _once(
        self,
        method: str,
        url: str,
        deadline: Deadline,
        headers: Mapping[str, str],
        ca_pem: str | None,
        data: bytes | None,
        max_bytes: int | None,
        cap_seconds: float | None,
    ) -> HttpResponse:
        host = SafeUrl.of(url).host
        timeout = deadline.timeout(self._cap if cap_seconds is None else cap_seconds)
        if timeout <= 0:
            raise VerificationError(f"no time left to contact {host}", category=Category.TIMEOUT)
        limit = max_bytes or self._max_body_bytes
        try:
            async with self._session.request(
                method,
                url,
                headers=dict(headers),
                data=data,
                ssl=ssl_context(ca_pem) if url.startswith("https:") else False,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as resp:
                body = await _read_capped(resp, limit, host)
                self._report(host, f"{resp.status // 100}xx")
                answer = CIMultiDictProxy(CIMultiDict(resp.headers))
                return HttpResponse(url, resp.status, answer, body)
        except TimeoutError as e:
            self._report(host, "error")
            raise VerificationError(
                f"{host} did not answer within {timeout:.1f}s", category=Category.TIMEOUT
            ) from e
        except aiohttp.ClientConnectorCertificateError as e:
            self._report(host, "error")
            raise TlsTrustError(
                f"the TLS certificate of {host} is not trusted by the configured roots "
                "(system roots, or the validator's cert)"
            ) from e
        except aiohttp.ClientError as e:
            self._report(host, "error")
            raise VerificationError(
                f"cannot reach {host}: {type(e).__name__}", category=Category.FETCH_FAILED
            ) from e
        except (ValueError, UnicodeError) as e:
            # yarl refuses some malformed URLs before aiohttp sees them.
            raise VerificationError(
                f"cannot build a request URL for {host!r}", category=Category.FETCH_FAILED
            ) from e

    def _report(self, host: str, status_class: str) -> None:
        if self._on_response is not None:
            self._on_response(host, status_class)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int, host: str) -> bytes:
    if not 200 <= resp.status < 300:
        limit = max(limit, ERROR_BODY_BYTES)
    if resp.content_length is not None and resp.content_length > limit:
        raise BodyTooLargeError(f"response from {host} exceeds {limit} bytes", resp.status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"response from {host} exceeds {limit} bytes", resp.status)
        chunks.append(chunk)
    return b"".join(chunks)
