"""Ports: what the use cases need from the outside world, as ``typing.Protocol`` classes.

Adapters in ``adapters/`` implement them; tests use fakes. Every method raises only errors of the
``domain.errors`` family (``VerificationError`` with a transient or permanent category) — never
an aiohttp, redis or OS exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from connaisseur.application.deadline import Deadline
    from connaisseur.application.settings import AuthSettings
    from connaisseur.domain.image import ImageReference
    from connaisseur.domain.oci import Descriptor
    from connaisseur.domain.rekor import RekorEntry
    from connaisseur.domain.workload import OwnerReference, Workload


class Clock(Protocol):
    """Wall-clock time for expiry checks and a monotonic clock for budgets."""

    def now(self) -> datetime:
        """The current UTC time (timezone-aware)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where and how to reach a registry or Notary server for one validator."""

    auth: AuthSettings
    ca_pem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """A manifest as served, with its verified digest."""

    digest: str
    media_type: str
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRef:
    """A blob to fetch: its digest, the size its descriptor declares (``None``: not declared)
    and how much of it the caller reads at most (``None``: the configured document cap)."""

    digest: str
    size: int | None = None
    max_bytes: int | None = None


class Registry(Protocol):
    """OCI distribution API client.

    Methods may be called concurrently (one verification overlaps independent fetches); a
    shared authentication step is then done once.

    Errors: ``VerificationError`` with ``image_not_found`` (404 on the image), ``no_trust_data``
    (404 on a signature artefact), ``unauthorized``, ``rate_limited``, ``unavailable`` /
    ``fetch_failed`` (transport, 5xx), ``timeout``, ``malformed_trust_data`` (digest mismatch,
    over-size or unparsable documents).
    """

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        """The digest the image's tag (or digest) points to now, without its body (HEAD).

        A caller that needs the manifest anyway calls :meth:`manifest` with the tag instead:
        one round trip instead of two, with the same guarantee.
        """
        ...

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        """The manifest ``reference`` (tag or digest) in the image's repository.

        ``Manifest.digest`` is the SHA-256 of the served body: equal to ``reference`` when that
        is a digest, else checked against the registry's ``Docker-Content-Digest`` when sent —
        so by tag, one call both resolves the tag and fetches what the digest covers. A 404 is
        ``image_not_found`` for an image tag, ``no_trust_data`` for a ``sha256-<hex>[.sig]``
        artefact tag.
        """
        ...

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        """The blob ``ref.digest`` in the image's repository, verified against its digest; a
        body over ``ref.max_bytes`` is ``fetch_failed`` and is not read further. A blob of
        another size than ``ref.size`` (read no further than that) is
        ``malformed_trust_data``, as is a declared size over the cap."""
        ...

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        """Descriptors of artefacts referring to the image's digest (``image`` is pinned to
        it) with ``artifact_type`` (all when
        empty): the OCI 1.1 referrers API, or the ``sha256-<hex>`` tag schema where the registry
        has no such API; ``[]`` when neither lists any. Implementations may remember which of
        the two a registry supports, or ask both at once, to save round trips — never to change
        the answer. Safe to call concurrently with the other methods.
        """
        ...


class Notary(Protocol):
    """Notary v1 server client.

    Errors: ``no_trust_data`` (404 on root), ``fetch_failed`` / ``unavailable`` / ``timeout`` /
    ``unauthorized`` / ``rate_limited`` (transport and status), ``malformed_trust_data``.
    """

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        """The served bytes of each role (``None`` when the server answers 404), concurrently."""
        ...


class TransparencyLog(Protocol):
    """Rekor client for signatures without an offline bundle."""

    async def find_entries(
        self, host: str, artifact_hash: str, deadline: Deadline
    ) -> Sequence[RekorEntry]:
        """Log entries whose body references ``artifact_hash`` (``sha256:<hex>``), parsed (they
        are checked offline, never trusted as served)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedResult:
    """A definitive verification result (D5): a trusted digest or a permanent denial."""

    digest: str | None = None
    category: str | None = None
    message: str | None = None


class Cache(Protocol):
    """Shared verification cache (D5, docs/decisions/0005-honest-cache.md).

    Never raises: an outage is a miss.

    Implementations bound their own waits (short timeouts), since a lookup only saves work.
    """

    async def get(self, key: str) -> CachedResult | None:
        """The stored result, or ``None`` (missing, expired, unreadable, failed integrity)."""
        ...

    async def put(self, key: str, value: CachedResult, ttl_seconds: int) -> None:
        """Store ``value`` for ``ttl_seconds``; failures are logged, never raised."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One notification to deliver."""

    url: str
    body: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


class AlertSink(Protocol):
    """Delivers alert notifications.

    Errors: ``ConnaisseurError`` with category ``send_failed``.
    """

    async def send(self, alert: Alert, deadline: Deadline) -> None: ...


class KubernetesApi(Protocol):
    """Read-only access to owner objects (automatic child approval) and Secrets
    (``k8s://`` cosign keys).

    Errors: ``ConnaisseurError`` when the API cannot tell, with a transient category
    (``fetch_failed``, ``timeout``, ``unavailable``, ``rate_limited``) for an outage and
    ``unauthorized`` when it refuses us: never ``None``, which would read as "deleted"."""

    async def owner(
        self, owner: OwnerReference, namespace: str, deadline: Deadline
    ) -> Workload | None:
        """The object ``owner`` names in ``namespace``, read as a workload of its kind;
        ``None`` when it does not exist or is no workload (no containers, malformed)."""
        ...

    async def secret_data(
        self, namespace: str, name: str, deadline: Deadline
    ) -> Mapping[str, bytes] | None:
        """A Secret's ``data``, each value base64-decoded; ``None`` when it does not exist."""
        ...


class Metrics(Protocol):
    """Where the use cases report what happened (Prometheus in production)."""

    def admission(self, allowed: bool, timed_out: bool, seconds: float) -> None: ...

    def validation(
        self, validator_type: str, validator: str, category: str, seconds: float
    ) -> None: ...

    def skipped(self, validator_type: str, validator: str, reason: str) -> None:
        """An image admitted or denied without running its validator (approval, cache hit)."""
        ...
