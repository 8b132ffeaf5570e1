"""The ``notaryv1`` validator on the validator pipeline (``application/pipeline.py``): its
fetch is a GUN's trust data through the Notary port, its check ``domain.notaryv1``, which
yields the trusted digest to pin (D4, docs/decisions/0004-notary-v1-strictness.md).

The settings come from the configuration loader, which checked them (host URL, trust roots
with PEM keys, ``cert``, credentials keyed to the host): they are used as given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import SignatureValidator, Verification
from connaisseur.application.ports import Clock, Notary
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.errors import Rejection
from connaisseur.domain.image import ImageReference
from connaisseur.domain.notaryv1 import PinnedKey, pinned_key, roles_to_fetch, verify_notary_image
from connaisseur.domain.signers import Judgement, Vouch

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


@dataclass(frozen=True, slots=True, kw_only=True)
class NotaryTrustData:
    """The role files served for an image's GUN, and the versions seen before for it."""

    host: str
    image: ImageReference
    files: Mapping[str, bytes | None] = field(repr=False)
    known_versions: Mapping[str, int]


class NotaryV1Validator(SignatureValidator[NotaryTrustData]):
    """Validates images against Docker Content Trust data on a Notary v1 server."""

    type = "notaryv1"

    def __init__(self, settings: ValidatorSettings, notary: Notary, clock: Clock) -> None:
        super().__init__(settings, clock)
        self._host = settings.host
        self._pinned: dict[str, PinnedKey] = {}
        for root in settings.trust_roots:  # the first root of a name wins, as in selection
            self._pinned.setdefault(root.name, pinned_key(root))
        self._notary = notary
        self._versions = VersionMemory()

    async def candidates(
        self, verification: Verification, deadline: Deadline
    ) -> AsyncGenerator[NotaryTrustData | Rejection, None]:
        """Every role the verification may read, in one concurrent round trip.

        Raises:
            VerificationError: fetch_failed, timeout, unauthorized, rate_limited, unavailable,
                malformed_trust_data (the Notary port's errors).
        """
        image, delegations = verification.image, verification.options.delegations
        gun = image.notary_reference
        files = await self._notary.fetch_roles(
            self._host, gun, roles_to_fetch(delegations), self._endpoint, deadline
        )
        known = self._versions.get(self._host, gun)
        yield NotaryTrustData(host=self._host, image=image, files=files, known_versions=known)

    def check(
        self, candidate: NotaryTrustData, verification: Verification, now: datetime
    ) -> Judgement:
        """The digest the trust data signs for the image, vouched for by every pinned key;
        the versions verified are remembered, so an older copy is refused later (rollback).

        Raises:
            VerificationError: every category of :func:`domain.notaryv1.verify_notary_image`.
        """
        pinned = tuple(self._pinned[root.name] for root in verification.roots)
        evidence = verify_notary_image(
            candidate.files,
            pinned,
            now,
            tag=candidate.image.tag,
            digest=candidate.image.digest,
            delegations=verification.options.delegations,
            known_versions=candidate.known_versions,
        )
        gun = candidate.image.notary_reference
        self._versions.remember(candidate.host, gun, evidence.versions)
        vouches = tuple(Vouch(key.name, key.key_id.encode()) for key in pinned)
        return Judgement(digest=evidence.digest, vouches=vouches)

    def describe(self, candidate: NotaryTrustData) -> Mapping[str, str]:
        """The Notary server and repository the trust data came from and the roles it holds
        (docs/decisions/0043-explain-every-signature.md)."""
        roles = [role for role, body in candidate.files.items() if body is not None]
        return {
            "where": f"{candidate.host}/{candidate.image.notary_reference}",
            "format": "tuf",
            "kind": "trust data",
            "signer": "roles " + ", ".join(roles),
        }
