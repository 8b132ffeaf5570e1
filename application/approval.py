"""Automatic child approval, earned (D10, docs/decisions/0010-child-approval-is-earned.md).

A child (a Pod of a ReplicaSet, a ReplicaSet of a Deployment, a Job of a CronJob, ...) is
admitted without verifying its images again only if an owner named in its ``ownerReferences``

1. exists in the child's namespace with the UID the reference records,
2. is a kind we validate (so it went through this webhook and was pinned), and
3. has pod-template images equal, as a set, to the child's images — the owner was pinned to
   ``tag@digest`` on admission, so a faithful child carries exactly those strings.

Anything else (owner missing, replaced, a custom resource, a sidecar injected into the child,
an API error) means the child is verified like any other object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import KubernetesApi
from connaisseur.domain.errors import WorkloadError
from connaisseur.domain.workload import SUPPORTED_KINDS, OwnerReference, Workload, container_slots

log = logging.getLogger(__name__)


class ChildApproval:
    """Finds the images a child may skip because a verified owner already carries them."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    async def approved_images(self, child: Workload, deadline: Deadline) -> frozenset[str]:
        """The child's images when an owner earns the approval (D10), else the empty set."""
        wanted = frozenset(child.images)
        for images in await self._owner_images(child, deadline):
            if frozenset(images) == wanted:
                return wanted
        return frozenset()

    async def parent_images(self, child: Workload, deadline: Deadline) -> list[str]:
        """Images of every valid owner, concatenated in owner order, as Connaisseur v3
        lists them."""
        return [image for images in await self._owner_images(child, deadline) for image in images]

    async def _owner_images(self, child: Workload, deadline: Deadline) -> list[list[str]]:
        owners = child.owners[:8]  # Kubernetes objects have one controller; bound the fan-out
        found = await asyncio.gather(*(self._images_of(o, child, deadline) for o in owners))
        return [images for images in found if images is not None]

    async def _images_of(
        self, owner: OwnerReference, child: Workload, deadline: Deadline
    ) -> list[str] | None:
        if owner.kind not in SUPPORTED_KINDS:
            return None
        obj = await self._api.get(
            owner.api_version, owner.kind, child.namespace, owner.name, deadline
        )
        if obj is None:
            return None
        if _uid(obj) != owner.uid or not owner.uid:
            log.warning(
                "owner %s %s/%s: non matching UIDs", owner.kind, child.namespace, owner.name
            )
            return None
        try:
            return [slot.image for slot in container_slots(owner.kind, obj)]
        except WorkloadError:
            return None


def _uid(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    uid = meta.get("uid") if isinstance(meta, Mapping) else None
    return uid if isinstance(uid, str) else None
