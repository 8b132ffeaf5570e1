"""The ``notaryv1`` validator: fetch a GUN's trust data through the Notary port, judge it in
``domain.notaryv1``, and return the trusted digest to pin (D4,
docs/decisions/0004-notary-v1-strictness.md).

The settings come from the configuration loader, which checked them (host URL, trust roots
with PEM keys, ``cert``, credentials keyed to the host): they are used as given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Clock, Endpoint, Notary
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.image import ImageReference
from connaisseur.domain.notaryv1 import PinnedKey, pinned_key, roles_to_fetch, verify_notary_image
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.trust import select_trust_roots
from connaisseur.domain.verdict import TrustedDigest

_MAX_REMEMBERED_REPOSITORIES = 4096


class VersionMemory:
    """Highest metadata versions verified per (host, GUN), to refuse rollbacks (bounded LRU)."""

    def __init__(self, capacity: int = _MAX_REMEMBERED_REPOSITORIES) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str], dict[str, int]] = OrderedDict()

    def get(self, host: str, gun: str) -> Mapping[str, int]:
        return dict(self._seen.get((host, gun), {}))

    def remember(self, host: str, gun: str, versions: Mapping[str, int]) -> None:
        key = (host, gun)
        merged = self._seen.pop(key, {})
        for role, version in versions.items():
            merged[role] = max(version, merged.get(role, 0))
        self._seen[key] = merged
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


class NotaryV1Validator:
    """Validates images against Docker Content Trust data on a Notary v1 server."""

    type = "notaryv1"

    def __init__(self, settings: ValidatorSettings, notary: Notary, clock: Clock) -> None:
        self.name = settings.name
        self._host = settings.host
        self._roots = settings.trust_roots
        self._pinned: dict[str, PinnedKey] = {}
        for root in settings.trust_roots:  # the first root of a name wins, as in selection
            self._pinned.setdefault(root.name, pinned_key(root))
        cert = settings.cert.pem if settings.cert else None
        self._endpoint = Endpoint(auth=settings.auth, ca_pem=cert)
        self._notary = notary
        self._clock = clock
        self._versions = VersionMemory()

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        """The digest the image's Notary trust data signs, under the rule's options.

        Raises:
            TrustRootError: trust_root_not_found.
            VerificationError: fetch_failed, timeout, unauthorized, rate_limited, unavailable,
                and every category of :func:`domain.notaryv1.verify_notary_image`.
        """
        selected = select_trust_roots(self._roots, [options.trust_root])
        pinned = tuple(self._pinned[root.name] for root in selected)
        gun = image.notary_reference
        files = await self._notary.fetch_roles(
            self._host, gun, roles_to_fetch(options.delegations), self._endpoint, deadline
        )
        evidence = verify_notary_image(
            files,
            pinned,
            self._clock.now(),
            tag=image.tag,
            digest=image.digest,
            delegations=options.delegations,
            known_versions=self._versions.get(self._host, gun),
        )
        self._versions.remember(self._host, gun, evidence.versions)
        return TrustedDigest(digest=evidence.digest, signers=evidence.roles)
