"""Automatic child approval, earned (docs/decisions/0010-child-approval-is-earned.md).

A child (a Pod of a ReplicaSet, a ReplicaSet of a Deployment, a Job of a CronJob, ...) is
admitted without verifying its images again only if an owner named in its ``ownerReferences``

1. is a built-in controller of that child's kind, at its API group and version
   (``domain.workload.CONTROLLERS``: a Pod owns no Pod, a custom resource named like a built-in
   kind never passed this webhook),
2. exists in the child's namespace with the UID the reference records,
3. is not being deleted (an object carrying ``deletionTimestamp`` is on its way out and must
   not vouch for new objects),
4. has every image pinned to a digest — this webhook pins what it verifies, so a tag in the
   owner means it was not admitted through verification (detection mode, before the webhook),
5. and has pod-template images equal, as a set, to the child's images.

Anything else (owner missing, replaced, a sidecar injected into the child, an API error) means
the child is verified like any other object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import KubernetesApi
from connaisseur.domain.errors import ConnaisseurError, InvalidReferenceError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.workload import (
    CONTROLLERS,
    SUPPORTED_KINDS,
    OwnerReference,
    Workload,
)

log = logging.getLogger(__name__)

#: Kubernetes objects have one controller; bound the fan-out of lookups all the same.
_MAX_OWNERS = 8


class ChildApproval:
    """Finds the images a child may skip because a verified owner already carries them."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    async def approved_images(self, child: Workload, deadline: Deadline) -> frozenset[str]:
        """The child's images when an owner earns the approval (D10), else the empty set."""
        wanted = frozenset(child.images)
        controllers = CONTROLLERS.get(child.kind, frozenset())
        owners = [o for o in child.owners if (o.api_version, o.kind) in controllers]
        for owner, obj in await self._owner_objects(owners, child, deadline):
            if _lends_approval(owner, obj, child, wanted):
                return wanted
        return frozenset()

    async def parent_images(self, child: Workload, deadline: Deadline) -> list[str]:
        """Images of every owner that exists with the recorded UID, concatenated in owner
        order (Connaisseur's lookup; approval applies the stricter rules above)."""
        owners = [o for o in child.owners if o.kind in SUPPORTED_KINDS]
        found = await self._owner_objects(owners, child, deadline)
        return [slot.image for _, workload in found for slot in workload.slots]

    async def _owner_objects(
        self, owners: Sequence[OwnerReference], child: Workload, deadline: Deadline
    ) -> list[tuple[OwnerReference, Workload]]:
        owners = owners[:_MAX_OWNERS]
        found = await asyncio.gather(*(self._owner_object(o, child, deadline) for o in owners))
        return [(o, obj) for o, obj in zip(owners, found, strict=True) if obj is not None]

    async def _owner_object(
        self, owner: OwnerReference, child: Workload, deadline: Deadline
    ) -> Workload | None:
        try:
            workload = await self._api.owner(owner, child.namespace, deadline)
        except ConnaisseurError as e:
            # No answer, no approval: the child is verified like any other object.
            log.info("owner lookup %s %s/%s failed: %s", owner.kind, child.namespace, owner.name, e)
            return None
        if workload is None:
            return None
        if workload.uid != owner.uid or not owner.uid:
            log.warning(
                "owner %s %s/%s: non matching UIDs", owner.kind, child.namespace, owner.name
            )
            return None
        return workload


def _lends_approval(
    owner: OwnerReference, workload: Workload, child: Workload, wanted: frozenset[str]
) -> bool:
    where = f"{owner.kind} {child.namespace}/{owner.name}"
    if workload.deleted:
        log.info("owner %s is being deleted: it approves no children", where)
        return False
    images = workload.images
    if not all(_pinned(image) for image in images):
        log.info("owner %s has images not pinned to a digest: it approves no children", where)
        return False
    return frozenset(images) == wanted


def _pinned(image: str) -> bool:
    try:
        return bool(ImageReference.parse(image).digest)
    except InvalidReferenceError:
        return False
