"""FakeRegistries: the Registry port over several in-memory registries, one per host, recording
which host was asked for what and with which endpoint (credentials, CA) — for the mirror tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint, Manifest, Registry
from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.oci import Descriptor
from tests.support.fake_oci_registry import FakeRegistry


@dataclass(frozen=True)
class Asked:
    """One request: the host, what (``manifests/<ref>``, ``blobs/<digest>``, ``referrers``,
    ``resolve``) in which repository, and the endpoint it came with."""

    host: str
    repository: str
    what: str
    endpoint: Endpoint


@dataclass
class FakeRegistries(Registry):
    """``hosts`` maps a registry host to its content; ``down`` maps a host to the error every
    request to it raises."""

    hosts: dict[str, FakeRegistry] = field(default_factory=dict)
    down: dict[str, ConnaisseurError] = field(default_factory=dict)
    asked: list[Asked] = field(default_factory=list)

    def host(self, name: str) -> FakeRegistry:
        return self.hosts.setdefault(name, FakeRegistry())

    def hosts_asked(self) -> list[str]:
        return [a.host for a in self.asked]

    def _at(self, image: ImageReference, what: str, endpoint: Endpoint) -> FakeRegistry:
        self.asked.append(Asked(image.registry, image.repository, what, endpoint))
        if image.registry in self.down:
            raise self.down[image.registry]
        return self.host(image.registry)

    async def resolve(self, image: ImageReference, endpoint: Endpoint, deadline: Deadline) -> str:
        return await self._at(image, "resolve", endpoint).resolve(image, endpoint, deadline)

    async def manifest(
        self, image: ImageReference, reference: str, endpoint: Endpoint, deadline: Deadline
    ) -> Manifest:
        at = self._at(image, f"manifests/{reference}", endpoint)
        return await at.manifest(image, reference, endpoint, deadline)

    async def blob(
        self, image: ImageReference, ref: BlobRef, endpoint: Endpoint, deadline: Deadline
    ) -> bytes:
        at = self._at(image, f"blobs/{ref.digest}", endpoint)
        return await at.blob(image, ref, endpoint, deadline)

    async def referrers(
        self, image: ImageReference, artifact_type: str, endpoint: Endpoint, deadline: Deadline
    ) -> Sequence[Descriptor]:
        at = self._at(image, "referrers", endpoint)
        return await at.referrers(image, artifact_type, endpoint, deadline)
