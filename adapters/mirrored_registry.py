"""Registry mirrors: the :class:`Registry` port read through mirror endpoints, containerd style.

:class:`MirroredRegistry` wraps another Registry (the aiohttp client) and decides, per request,
where the image's content is read (docs/decisions/0050-registry-mirrors.md):

* the most specific :class:`Route` whose source (``registry`` or ``registry/prefix``) covers the
  image applies; an image no route covers goes straight to the wrapped registry (no cost);
* its hops are tried in order, then the source itself unless the route says never; a hop
  without ``resolve`` is asked only for content addressed by digest (manifests by digest,
  blobs), never for a tag, a signature tag or a referrers listing;
* the next place is tried when one cannot answer: transport failure, timeout, 5xx, 429, 401/403,
  or 404 (the mirror may not hold everything); an answer about the content itself — a digest
  that does not match, an oversize or malformed document — is final, so a lying mirror denies;
* a hop that failed for a transient reason is passed over for :data:`HOP_REST_SECONDS` while
  another place remains, so a dead mirror costs one timeout, not one per request.

Callers pass the image under its own name and get the same answers (every manifest and blob is
still checked against its digest by the wrapped registry); only the repository a request goes
to changes. Errors name the place that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Clock, Endpoint, Manifest, Registry
from connaisseur.domain.errors import (
    TRANSIENT_CATEGORIES,
    Category,
    ConnaisseurError,
    VerificationError,
)
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.oci import Descriptor

log = logging.getLogger(__name__)

#: How long a hop that failed for a transient reason is passed over (while others remain).
HOP_REST_SECONDS = 30.0
#: Failures after which the next place is asked.
_PASS_ON = TRANSIENT_CATEGORIES | {
    Category.UNAUTHORIZED,
    Category.IMAGE_NOT_FOUND,
    Category.NO_TRUST_DATA,
}
_MISSING = frozenset({Category.IMAGE_NOT_FOUND, Category.NO_TRUST_DATA})
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    """One mirror endpoint: the registry it is, the repository path that stands for the
    route's source there, how it is reached (credentials, CA) and whether it resolves tags."""

    registry: str
    prefix: str
    endpoint: Endpoint
    resolve: bool = True

    @property
    def location(self) -> str:
        return f"{self.registry}/{self.prefix}" if self.prefix else self.registry


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A source (``registry`` or ``registry/repository-prefix``) and where it is read from."""

    source: str
    hops: tuple[Hop, ...]
    to_source: bool = True

    def covers(self, image: ImageReference) -> bool:
        return image.context == self.source or image.context.startswith(self.source + "/")


@dataclass(frozen=True, slots=True)
class _Place:
    """Where one request goes: the image as that place names it, and how to reach it."""

    image: ImageReference
    endpoint: Endpoint
    hop: Hop | None  # None: the source itself


class HopHealth:
    """Which hops failed for a transient reason lately (shared by every validator's routes)."""

    def __init__(self, clock: Clock, rest_seconds: float = HOP_REST_SECONDS) -> None:
        self._clock = clock
        self._rest = rest_seconds
        self._resting: dict[str, float] = {}

    def resting(self, hop: Hop) -> bool:
        until = self._resting.get(hop.location)
        if until is None:
            return False
        if until <= self._clock.monotonic():
            del self._resting[hop.location]
            return False
        return True

    def failed(self, hop: Hop) -> None:
        self._resting[hop.location] = self._clock.monotonic() + self._rest

    def answered(self, hop: Hop) -> None:
        self._resting.pop(hop.location, None)


class MirroredRegistry(Registry):
    """The :class:`Registry` port through mirrors (see the module docstring)."""

    def __init__(self, inner: Registry, routes: Sequence[Route], health: HopHealth) -> None:
        # Most specific source first: the first route that covers an image is the one.
        self._routes = sorted(routes, key=lambda r: len(r.source), reverse=True)
        self._inner = inner
        self._health = health

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        """See :meth:`Registry.resolve`; a tag only at places that resolve."""
        by_name = not image.digest
        return await self._first(
            image, endpoint, by_name, lambda p: self._inner.resolve(p.image, p.endpoint, deadline)
        )

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        """See :meth:`Registry.manifest`; a tag only at places that resolve."""
        return await self._first(
            image,
            endpoint,
            not is_digest(reference),
            lambda p: self._inner.manifest(p.image, reference, p.endpoint, deadline),
        )

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        """See :meth:`Registry.blob`."""
        return await self._first(
            image, endpoint, False, lambda p: self._inner.blob(p.image, ref, p.endpoint, deadline)
        )

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        """See :meth:`Registry.referrers`; a listing is a mutable name: only at places that
        resolve. An empty listing is an answer (it does not send the request on)."""
        return await self._first(
            image,
            endpoint,
            True,
            lambda p: self._inner.referrers(p.image, artifact_type, p.endpoint, deadline),
        )

    # ---------------------------------------------------------------- place choice

    async def _first(
        self,
        image: ImageReference,
        endpoint: Endpoint,
        by_name: bool,
        ask: Callable[[_Place], Awaitable[_T]],
    ) -> _T:
        """``ask`` each place in turn until one answers (see the module docstring)."""
        places = self._places(image, endpoint, by_name)
        failures: list[tuple[_Place, ConnaisseurError]] = []
        for place in places:
            try:
                answer = await ask(place)
            except ConnaisseurError as e:
                if e.category not in _PASS_ON:
                    raise
                self._note_failure(place, e)
                failures.append((place, e))
                continue
            if place.hop is not None:
                self._health.answered(place.hop)
            return answer
        raise _explained(failures)

    def _places(self, image: ImageReference, endpoint: Endpoint, by_name: bool) -> list[_Place]:
        """Where to ask, in order: resting hops last (but still asked when nothing else is)."""
        route = next((r for r in self._routes if r.covers(image)), None)
        if route is None:
            return [_Place(image, endpoint, None)]
        places = [
            _Place(moved, hop.endpoint, hop)
            for hop in route.hops
            if hop.resolve or not by_name
            if (moved := _moved(image, route.source, hop)) is not None
        ]
        if route.to_source:
            places.append(_Place(image, endpoint, None))
        fresh = [p for p in places if p.hop is None or not self._health.resting(p.hop)]
        return fresh + [p for p in places if p not in fresh]

    def _note_failure(self, place: _Place, error: ConnaisseurError) -> None:
        if place.hop is None:
            return
        log.info("registry mirror %s did not answer: %s", place.hop.location, error.message)
        if error.transient:
            self._health.failed(place.hop)


def _moved(image: ImageReference, source: str, hop: Hop) -> ImageReference | None:
    """``image`` as ``hop`` names it: the source's part of its name replaced by the hop's
    location; ``None`` when that leaves no repository."""
    rest = image.context[len(source) :].lstrip("/")
    repository = "/".join(part for part in (hop.prefix, rest) if part)
    if not repository:
        return None
    return replace(image, registry=hop.registry, repository=repository)


def _explained(failures: Sequence[tuple[_Place, ConnaisseurError]]) -> ConnaisseurError:
    """The error that says most: the first that is not "missing" (a mirror that is down must
    not turn into a cacheable "does not exist"), else the last; naming every place asked."""
    if not failures:
        return VerificationError(
            "no registry may answer this request (no endpoint resolves tags)",
            category=Category.CONFIG_INVALID,
        )
    chosen = next((e for _, e in failures if e.category not in _MISSING), failures[-1][1])
    if len(failures) == 1:
        return chosen
    asked = ", ".join(p.hop.location if p.hop else p.image.registry for p, _ in failures)
    return chosen.reworded(f"{chosen.message} (asked in turn: {asked})")
