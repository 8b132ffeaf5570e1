"""OCI distribution API client: tags, manifests, blobs and referrers, with registry auth.

Implements :class:`application.ports.Registry` over the shared :class:`HttpClient`:

* auth: anonymous, HTTP Basic, and the Bearer token flow, by the shared
  :class:`adapters.upstream_auth.UpstreamAuth` (challenge parsing, the credential and realm
  policy, one token cache per registry, scope and credential identity); a registry that asked
  for Basic gets it up front next time;
* TLS: HTTPS first (system roots, or the validator's ``cert`` as the only roots); plain HTTP
  only as a fallback for loopback and ``localhost`` registries, as the Go client does, or for
  registries configured as ``http://`` (mirror endpoints), which are never tried over TLS;
* integrity: every manifest and blob is checked against its digest; sizes are capped (D8);
* referrers: whether a registry has the OCI 1.1 referrers API is remembered (bounded, with
  expiry), so later look-ups go straight to the API or to the ``sha256-<hex>`` tag schema; while
  unknown, both are asked concurrently. The memory only saves round trips, never changes an
  answer: a remembered route that finds nothing asks the other one before saying "none";
* errors (D9): 401/403 ``unauthorized``, 404 ``image_not_found`` (``no_trust_data`` for
  signature artefacts), 429 ``rate_limited``, 5xx ``unavailable``, transport ``fetch_failed``,
  budget ``timeout``; ``Retry-After`` is honoured once when it fits in the budget.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from connaisseur.adapters.http import (
    BodyTooLargeError,
    HttpClient,
    HttpResponse,
    TlsTrustError,
    retry_after_seconds,
    status_error,
)
from connaisseur.adapters.upstream_auth import UpstreamAuth, parse_challenge
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Clock, Endpoint, Manifest, Registry
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.oci import Descriptor, index_manifests
from connaisseur.domain.urls import is_loopback

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_ACCEPT = ", ".join(MANIFEST_TYPES)
_ARTEFACT_TAG = re.compile(r"sha256-[0-9a-f]{64}(\.[a-z]+)?")
#: How long a registry's answer to "do you have the referrers API?" is trusted, and for how
#: many registries it is kept (upgrades happen, and the memory must stay bounded).
REFERRERS_API_MEMORY_SECONDS = 600.0
_MAX_REMEMBERED_REGISTRIES = 1024


#: Descriptors found through one referrers route, or ``None`` when that route does not exist.
_Found = list[Descriptor] | None


class AiohttpRegistryClient(Registry):
    """The :class:`Registry` port over one pooled aiohttp session (via :class:`HttpClient`)."""

    def __init__(
        self,
        http: HttpClient,
        clock: Clock,
        *,
        max_manifest_bytes: int = 4 * 1024 * 1024,
        max_blob_bytes: int = 4 * 1024 * 1024,
        auth: UpstreamAuth | None = None,
        plain_http: frozenset[str] = frozenset(),
    ) -> None:
        self._http = http
        self._plain_http = plain_http
        self._clock = clock
        self._max_manifest = max_manifest_bytes
        self._max_blob = max_blob_bytes
        self._auth = auth or UpstreamAuth(http)
        self._schemes: dict[str, str] = {}
        self._referrers_api: dict[str, tuple[bool, float]] = {}

    # ---------------------------------------------------------------- Registry port

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        """The digest the image's tag (or digest) points to: HEAD, falling back to GET.

        Raises:
            VerificationError: see the port.
        """
        reference = image.digest or image.tag
        path = f"/v2/{image.repository}/manifests/{reference}"
        resp = await self._fetch("HEAD", image, path, endpoint, deadline, accept=_ACCEPT)
        if _head_unsupported(resp.status):
            return (await self.manifest(image, reference, endpoint, deadline)).digest
        self._raise_for_status(resp, image, reference)
        header = resp.headers.get("Docker-Content-Digest", "")
        if image.digest:
            return image.digest
        if is_digest(header):
            return header
        return (await self.manifest(image, reference, endpoint, deadline)).digest

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        """Fetch a manifest by tag or digest, verified against its digest.

        Raises:
            VerificationError: see the port.
        """
        path = f"/v2/{image.repository}/manifests/{reference}"
        resp = await self._fetch(
            "GET", image, path, endpoint, deadline, accept=_ACCEPT, max_bytes=self._max_manifest
        )
        self._raise_for_status(resp, image, reference)
        digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        served = resp.headers.get("Docker-Content-Digest", "")
        expected = reference if is_digest(reference) else served if is_digest(served) else digest
        if digest != expected:
            raise VerificationError(
                f"manifest {image.context}@{reference} does not match its digest",
                category=Category.MALFORMED_TRUST_DATA,
            )
        return Manifest(digest=digest, media_type=_media_type(resp), body=resp.body)

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        """Fetch a blob and check it against its digest and the size its descriptor
        declares; never read past that size.

        Raises:
            VerificationError: see the port; a 404 is ``no_trust_data``.
        """
        digest, size = ref.digest, ref.size
        limit = blob_limit(image, ref, self._max_blob)
        where = f"blob {digest} of {image.context}"
        path = f"/v2/{image.repository}/blobs/{digest}"
        read = limit if size is None else max(size, 1)
        try:
            resp = await self._fetch("GET", image, path, endpoint, deadline, max_bytes=read)
        except BodyTooLargeError as e:
            if size is None or not 200 <= e.status < 300:
                raise
            raise _size_lie(where, size, "more") from e
        if resp.status == 404:
            raise VerificationError(
                f"blob {digest} is missing in {image.context}", category=Category.NO_TRUST_DATA
            )
        self._raise_for_status(resp, image, digest)
        if size is not None and len(resp.body) != size:
            raise _size_lie(where, size, str(len(resp.body)))
        if "sha256:" + hashlib.sha256(resp.body).hexdigest() != digest:
            raise VerificationError(
                f"{where} does not match its digest", category=Category.MALFORMED_TRUST_DATA
            )
        return resp.body

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        """OCI 1.1 referrers of ``digest``; where the API is absent (404/405), the
        ``sha256-<hex>`` tag schema. One round trip when the registry is known (remembered per
        registry), one round trip with both asked concurrently when it is not.

        Raises:
            VerificationError: see the port (a missing fallback tag is an empty answer).
        """
        has_api = self._known_referrers_api(image.registry)
        if has_api is None:
            return await self._referrers_probing(image, artifact_type, endpoint, deadline)
        first, second = (
            (self._referrers_by_api, self._referrers_by_tag)
            if has_api
            else (self._referrers_by_tag, self._referrers_by_api)
        )
        found = await first(image, artifact_type, endpoint, deadline)
        if found is None:
            # The remembered route is gone (or the tag was never written): ask the other one, so
            # that the memory can cost a round trip but never hide a signature.
            found = await second(image, artifact_type, endpoint, deadline)
        return found or []

    async def _referrers_probing(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        """Ask the API and the tag schema at once; the API's answer wins when it has one."""
        answers: tuple[_Found | BaseException, _Found | BaseException] = await asyncio.gather(
            self._referrers_by_api(image, artifact_type, endpoint, deadline),
            self._referrers_by_tag(image, artifact_type, endpoint, deadline),
            return_exceptions=True,
        )
        by_api, by_tag = answers
        if isinstance(by_api, BaseException):
            raise by_api
        if by_api is not None:
            return by_api  # the tag's answer (or failure) is irrelevant then
        if isinstance(by_tag, BaseException):
            raise by_tag
        return by_tag or []

    async def _referrers_by_api(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> _Found:
        """The referrers API's descriptors, or ``None`` when the registry has no such API."""
        digest = image.digest
        query = urlencode({"artifactType": artifact_type}) if artifact_type else ""
        path = f"/v2/{image.repository}/referrers/{digest}" + (f"?{query}" if query else "")
        resp = await self._fetch(
            "GET", image, path, endpoint, deadline, accept=OCI_INDEX, max_bytes=self._max_manifest
        )
        if resp.status in (404, 405):
            self._remember_referrers_api(image.registry, present=False)
            return None
        self._raise_for_status(resp, image, digest)
        self._remember_referrers_api(image.registry, present=True)
        if resp.status != 200:
            return []
        index = json_object(resp.body, f"referrers of {image.context}@{digest}")
        return index_manifests(index, artifact_type)

    async def _referrers_by_tag(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> _Found:
        """The referrers tag schema's descriptors, or ``None`` when there is no such tag."""
        digest = image.digest
        try:
            fallback = await self.manifest(image, digest.replace(":", "-", 1), endpoint, deadline)
        except VerificationError as e:
            if e.category is Category.NO_TRUST_DATA:
                return None
            raise
        index = json_object(fallback.body, f"referrers tag of {image.context}@{digest}")
        return index_manifests(index, artifact_type)

    def _known_referrers_api(self, registry: str) -> bool | None:
        known = self._referrers_api.get(registry)
        if known is None:
            return None
        present, expires = known
        if expires <= self._clock.monotonic():
            del self._referrers_api[registry]
            return None
        return present

    def _remember_referrers_api(self, registry: str, *, present: bool) -> None:
        if registry not in self._referrers_api and (
            len(self._referrers_api) >= _MAX_REMEMBERED_REGISTRIES
        ):
            self._referrers_api.clear()  # crude but bounded; forgetting only costs round trips
        expires = self._clock.monotonic() + REFERRERS_API_MEMORY_SECONDS
        self._referrers_api[registry] = (present, expires)

    # ---------------------------------------------------------------- status handling

    @staticmethod
    def _raise_for_status(resp: HttpResponse, image: ImageReference, reference: str) -> None:
        if resp.status == 404:
            if _ARTEFACT_TAG.fullmatch(reference):
                raise VerificationError(
                    f"no signature data {reference} for {image.context}",
                    category=Category.NO_TRUST_DATA,
                )
            raise VerificationError(
                f"image {image.context}:{reference} does not exist"
                if not is_digest(reference)
                else f"image {image.context}@{reference} does not exist",
                category=Category.IMAGE_NOT_FOUND,
            )
        error = status_error(resp.status, f"registry {image.registry}")
        if error is not None:
            raise error
        if resp.status >= 300:
            raise VerificationError(
                f"registry {image.registry}: unexpected HTTP {resp.status}",
                category=Category.FETCH_FAILED,
            )

    # ---------------------------------------------------------------- transport + auth

    async def _fetch(
        self,
        method: str,
        image: ImageReference,
        path: str,
        endpoint: Endpoint,
        deadline: Deadline,
        *,
        accept: str | None = None,
        max_bytes: int | None = None,
    ) -> HttpResponse:
        """One registry request, authenticated on demand (at most one challenge round)."""
        scope = f"repository:{image.repository}:pull"
        creds = endpoint.auth.lookup(image.registry, image.repository)
        headers = {"Accept": accept} if accept else {}
        auth = self._auth.cached(image.registry, scope, creds, deadline)
        request = _Request(
            method=method,
            registry=image.registry,
            path=path,
            ca_pem=endpoint.ca_pem,
            max_bytes=max_bytes,
        )
        resp = await self._send(replace(request, headers={**headers, **auth}), deadline)
        if resp.status != 401:
            return resp
        fresh = await self._auth.answer(
            parse_challenge(resp.headers.get("WWW-Authenticate", "")),
            url=resp.url,
            server=image.registry,
            scope=scope,
            creds=creds,
            ca_pem=endpoint.ca_pem,
            deadline=deadline,
        )
        if fresh is None or fresh == auth:
            return resp
        return await self._send(replace(request, headers={**headers, **fresh}), deadline)

    async def _send(self, request: _Request, deadline: Deadline) -> HttpResponse:
        """Send over the registry's scheme (HTTPS, or HTTP after a failed HTTPS to loopback),
        waiting once for ``Retry-After`` on 429/503 when it fits in the budget."""
        send = functools.partial(self._send_with_fallback, request, deadline)
        resp = await send()
        if resp.status not in (429, 503):
            return resp
        wait = retry_after_seconds(resp.headers, self._clock.now())
        if wait is None or wait >= deadline.remaining() - 0.1:
            return resp
        await asyncio.sleep(wait)
        return await send()

    async def _send_with_fallback(self, request: _Request, deadline: Deadline) -> HttpResponse:
        registry = request.registry

        def over(scheme: str) -> Awaitable[HttpResponse]:
            return self._http.request(
                request.method,
                f"{scheme}://{registry}{request.path}",
                deadline,
                headers=request.headers,
                ca_pem=request.ca_pem,
                max_bytes=request.max_bytes,
            )

        if registry in self._plain_http:
            return await over("http")
        scheme = self._schemes.get(registry, "https")
        try:
            resp = await over(scheme)
        except VerificationError as e:
            if scheme == "http":
                # Forget the downgrade: a registry that is down may come back with HTTPS.
                self._schemes.pop(registry, None)
                raise
            if not _may_fall_back_to_http(e, registry):
                raise
            scheme = "http"
            resp = await over(scheme)
        # Remember only a scheme that answered: an HTTPS outage must not pin a registry to HTTP.
        self._schemes[registry] = scheme
        return resp


@dataclass(frozen=True, slots=True, kw_only=True)
class _Request:
    """One request to a registry, before the scheme is chosen."""

    method: str
    registry: str
    path: str
    ca_pem: str | None
    max_bytes: int | None
    headers: Mapping[str, str] = field(default_factory=dict)


def blob_limit(image: ImageReference, ref: BlobRef, max_blob_bytes: int) -> int:
    """How much of the blob ``ref`` may be read: the caller's cap within the adapter's.

    Raises:
        VerificationError: ``malformed_trust_data``: not a supported digest, or a declared
            size over that cap (the descriptor is signed content; it is wrong, not slow).
    """
    if not is_digest(ref.digest):
        raise VerificationError(
            f"unsupported blob digest {ref.digest[:80]!r}", category=Category.MALFORMED_TRUST_DATA
        )
    limit = max_blob_bytes if ref.max_bytes is None else min(ref.max_bytes, max_blob_bytes)
    if ref.size is not None and ref.size > limit:
        raise VerificationError(
            f"blob {ref.digest} of {image.context} declares {ref.size} bytes, more than {limit}",
            category=Category.MALFORMED_TRUST_DATA,
        )
    return limit


def _size_lie(where: str, declared: int, served: str) -> VerificationError:
    # The descriptor is part of a manifest verified against its digest: a blob of another size
    # is the registry's content being wrong, not an outage
    # (docs/decisions/0009-transient-vs-permanent.md).
    return VerificationError(
        f"{where} is {served} bytes, its descriptor declares {declared}",
        category=Category.MALFORMED_TRUST_DATA,
    )


def _may_fall_back_to_http(error: VerificationError, registry: str) -> bool:
    """Plain HTTP only for loopback registries that do not speak TLS; a server whose
    certificate is untrusted does speak TLS, so HTTP would only hide the real problem."""
    return (
        error.category is Category.FETCH_FAILED
        and not isinstance(error, TlsTrustError | BodyTooLargeError)
        and is_loopback(registry)
    )


def _head_unsupported(status: int) -> bool:
    """A HEAD answer that says nothing about the manifest (405, 501, other odd 4xx): ask with
    GET, as the Go clients do. 401/403/404/429 and 5xx would be the same for GET."""
    return status == 501 or (400 <= status < 500 and status not in (401, 403, 404, 429))


def _media_type(resp: HttpResponse) -> str:
    return declared_media_type(resp.body, resp.headers.get("Content-Type", ""))


def declared_media_type(body: bytes, otherwise: str) -> str:
    """The ``mediaType`` a manifest declares, else ``otherwise`` (a Content-Type, or the
    media type of the descriptor it was found by), parameters removed."""
    try:
        declared = jsondoc.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    if isinstance(declared, str) and declared:
        return declared
    return otherwise.split(";")[0].strip()


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """``body`` as a JSON object.

    Raises:
        VerificationError: ``malformed_trust_data``: not JSON, or not an object.
    """
    try:
        doc = jsondoc.loads(body)
    except ValueError as e:
        raise VerificationError(
            f"{what} is not JSON", category=Category.MALFORMED_TRUST_DATA
        ) from e
    if not isinstance(doc, dict):
        raise VerificationError(
            f"{what} is not a JSON object", category=Category.MALFORMED_TRUST_DATA
        )
    return doc
