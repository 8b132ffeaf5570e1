"""Use case: review an admission request — every image of the object, one verdict.

An UPDATE whose images are unchanged (the same multiset of image strings in every container
list of the new and the old object) is never denied for its images: nothing new runs from it,
and an operator must be able to scale, relabel or clean up a workload whose image is denied
today. Its images are verified all the same, within a short budget, and a denial or timeout
becomes a warning (docs/decisions/0011-lifecycle-updates.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from connaisseur.application.alerting import Notifier, alert_context
from connaisseur.application.approval import ChildApproval
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Clock, Metrics
from connaisseur.application.settings import Features, Limits, ResourceValidationMode
from connaisseur.application.verify import VerifyImage, VerifyImageCommand
from connaisseur.domain.errors import Category, ConnaisseurError, WorkloadError
from connaisseur.domain.verdict import (
    ImageVerdict,
    Outcome,
    PatchOperation,
    RequestVerdict,
    SkipReason,
)
from connaisseur.domain.workload import ContainerSlot, Workload, container_count

DETECTION_WARNING = "detection mode active"
PODS_ONLY_WARNING = "pod-only validation active"
UNCHANGED_WARNING = "images unchanged: admitted without enforcing verification"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewCommand:
    """An admission request reduced to what the decision needs (decoded JSON objects)."""

    uid: str
    kind: str
    operation: str
    namespace: str
    object: Any
    old_object: Any = None
    budget_seconds: float = 29.0


class ReviewAdmission:
    """Decides an admission request: verify every distinct image concurrently within budget."""

    def __init__(
        self,
        verify: VerifyImage,
        features: Features,
        clock: Clock,
        metrics: Metrics,
        child_approval: ChildApproval | None = None,
        notifier: Notifier | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._verify = verify
        self._features = features
        self._limits = limits or Limits()
        self._clock = clock
        self._metrics = metrics
        # Child approval only where every kind is enforced: in podsOnly mode the owner was
        # admitted unverified, so its images prove nothing (D10; warned once at start-up).
        enabled = (
            features.automatic_child_approval
            and features.resource_validation_mode is ResourceValidationMode.ALL
        )
        self._child_approval = child_approval if enabled else None
        self._notifier = notifier

    async def execute(self, command: ReviewCommand) -> RequestVerdict:
        """The verdict for ``command``; never raises for anything the request contains."""
        started = time.perf_counter()
        deadline = Deadline.after(self._clock, command.budget_seconds)
        verdict, unchanged = await self._decide(command, deadline)
        if self._notifier is not None:
            verdict = await self._notify(self._notifier, command, verdict, deadline)
        verdict = self._apply_modes(command, verdict, unchanged)
        self._metrics.admission(
            verdict.allowed, verdict.outcome is Outcome.TIMEOUT, time.perf_counter() - started
        )
        return verdict

    async def _decide(
        self, command: ReviewCommand, deadline: Deadline
    ) -> tuple[RequestVerdict, bool]:
        """The verdict of verification, and whether the images are unchanged by an UPDATE.

        There is no shortcut for objects being deleted: an UPDATE of such an object is
        admitted regardless only when its images are unchanged, like any other UPDATE.
        """
        crowded = self._too_many_to_read(command)
        if crowded is not None:
            return crowded, False
        try:
            old = self._old_workload(command)
            new = Workload.parse(command.kind, command.object, command.namespace)
        except WorkloadError as e:
            invalid = RequestVerdict(
                uid=command.uid,
                allowed=False,
                outcome=Outcome.INVALID,
                message=e.message,
                category=e.category,
            )
            return invalid, False
        unchanged = old is not None and new.same_images_as(old)
        too_many = self._too_many_containers(command.uid, new, old)
        if too_many is not None:
            return too_many, unchanged
        approved = self._approved_images(old)
        if unchanged:
            # Only the warning depends on this verification: never hold up a scale-down for it.
            deadline = deadline.capped(self._limits.unchanged_check_seconds)
        images = new.images  # grouped once, used by both steps
        verdicts = await self._verify_all(new, images, approved, deadline)
        return _summarise(command.uid, new, images, verdicts), unchanged

    async def _notify(
        self,
        notifier: Notifier,
        command: ReviewCommand,
        verdict: RequestVerdict,
        deadline: Deadline,
    ) -> RequestVerdict:
        context = alert_context(command.uid, command.namespace, verdict)
        try:
            await notifier.notify(context, deadline)
        except ConnaisseurError as e:
            return RequestVerdict(
                uid=verdict.uid,
                allowed=False,
                outcome=Outcome.ERROR,
                message=f"error sending notifications: {e.message}",
                category=Category.SEND_FAILED,
                images=verdict.images,
            )
        return verdict

    def _old_workload(self, command: ReviewCommand) -> Workload | None:
        if command.operation != "UPDATE":
            return None
        try:
            return Workload.parse(command.kind, command.old_object, command.namespace)
        except WorkloadError as e:
            raise WorkloadError(
                f"error decoding old workload object: {e.message}", category=e.category
            ) from e

    def _too_many_to_read(self, command: ReviewCommand) -> RequestVerdict | None:
        """A denial, before anything is read, when the new object has more containers than
        the limit and cannot be an unchanged UPDATE (its old object has another count)."""
        limit = self._limits.max_containers_per_object
        count = container_count(command.kind, command.object)
        if count <= limit:
            return None
        old_count = container_count(command.kind, command.old_object)
        if command.operation == "UPDATE" and old_count == count:
            return None  # maybe unchanged (an object older than this webhook): read both
        return _crowded(command.uid, count, limit)

    def _too_many_containers(
        self, uid: str, new: Workload, old: Workload | None
    ) -> RequestVerdict | None:
        """A denial when either object has more containers than the limit, decided before
        any per-image work (reading an object is cheap; deciding an image is not)."""
        limit = self._limits.max_containers_per_object
        count = max(len(new.slots), len(old.slots) if old is not None else 0)
        return _crowded(uid, count, limit) if count > limit else None

    def _approved_images(self, old: Workload | None) -> frozenset[str]:
        if old is None or not self._features.automatic_unchanged_approval:
            return frozenset()
        return frozenset(old.images)

    async def _verify_all(
        self,
        workload: Workload,
        images: dict[str, list[ContainerSlot]],
        approved: frozenset[str],
        deadline: Deadline,
    ) -> list[ImageVerdict]:
        reason = SkipReason.UNCHANGED if approved else None
        commands = [
            VerifyImageCommand(image=raw, approved_images=approved, approval_reason=reason)
            for raw in images
        ]
        if deadline.expired:
            # No budget at all (the API server's timeout is within the margin): nothing can be
            # decided in time, not even a static rule, so every image is a timeout (D6).
            return [self._timed_out(c.image, 0, len(commands)) for c in commands]
        verdicts: dict[str, ImageVerdict] = {}
        waiting: list[VerifyImageCommand] = []
        for cmd in commands:
            now = self._verify.decide_now(cmd)
            if now is not None:
                verdicts[cmd.image] = now
            else:
                waiting.append(cmd)
        if waiting and self._child_approval is not None and workload.owners:
            approval = self._child_approval
            waiting = await self._approve_children(approval, workload, waiting, verdicts, deadline)
        if waiting and not deadline.expired:
            await self._run(waiting, verdicts, deadline)
        return [
            verdicts.get(c.image) or self._timed_out(c.image, len(verdicts), len(commands))
            for c in commands
        ]

    async def _approve_children(
        self,
        approval: ChildApproval,
        workload: Workload,
        waiting: list[VerifyImageCommand],
        verdicts: dict[str, ImageVerdict],
        deadline: Deadline,
    ) -> list[VerifyImageCommand]:
        """Settle the images an owner earned approval for (D10); the rest still wait."""
        children = await approval.approved_images(workload, deadline)
        if not children:
            return waiting
        still: list[VerifyImageCommand] = []
        for cmd in waiting:
            child = VerifyImageCommand(
                image=cmd.image, approved_images=children, approval_reason=SkipReason.CHILD
            )
            now = self._verify.decide_now(child)
            if now is not None:
                verdicts[cmd.image] = now
            else:
                still.append(cmd)
        return still

    async def _run(
        self,
        waiting: list[VerifyImageCommand],
        verdicts: dict[str, ImageVerdict],
        deadline: Deadline,
    ) -> None:
        slots = asyncio.Semaphore(self._limits.max_concurrent_verifications_per_request)

        async def verify(cmd: VerifyImageCommand) -> ImageVerdict:
            async with slots:
                return await self._verify.execute(cmd, deadline)

        pending = {asyncio.ensure_future(verify(cmd)): cmd.image for cmd in waiting}
        done, late = await asyncio.wait(pending, timeout=deadline.remaining())
        for task in done:
            verdicts[pending[task]] = task.result()
        for task in late:
            task.cancel()

    def _timed_out(self, image: str, finished: int, total: int) -> ImageVerdict:
        self._metrics.validation("unknown", "", str(Category.TIMEOUT), 0.0)
        return _timed_out(image, finished, total)

    def _apply_modes(
        self, command: ReviewCommand, verdict: RequestVerdict, unchanged: bool
    ) -> RequestVerdict:
        features = self._features
        if (
            features.resource_validation_mode is ResourceValidationMode.PODS_ONLY
            and command.kind != "Pod"
        ):
            warnings = () if verdict.allowed else (PODS_ONLY_WARNING, verdict.message or "")
            return _admitted(verdict, warnings, keep_patch=False)
        if unchanged and not verdict.allowed:
            return _admitted(verdict, (UNCHANGED_WARNING, verdict.message or ""), keep_patch=True)
        if features.detection_mode and not verdict.allowed:
            return _admitted(verdict, (DETECTION_WARNING, verdict.message or ""), keep_patch=True)
        return verdict


def _crowded(uid: str, count: int, limit: int) -> RequestVerdict:
    return RequestVerdict(
        uid=uid,
        allowed=False,
        outcome=Outcome.INVALID,
        message=f"the object has {count} containers; at most {limit} are reviewed",
        category=Category.INVALID_REQUEST,
    )


def _timed_out(image: str, finished: int, total: int) -> ImageVerdict:
    return ImageVerdict(
        image=image,
        reference=None,
        allowed=False,
        category=Category.TIMEOUT,
        message=f"not verified before the deadline ({finished}/{total} images finished)",
    )


def _summarise(
    uid: str,
    workload: Workload,
    slots: dict[str, list[ContainerSlot]],
    verdicts: list[ImageVerdict],
) -> RequestVerdict:
    denied = [v for v in verdicts if not v.allowed]
    if denied:
        timed_out = any(v.category is Category.TIMEOUT for v in denied)
        return RequestVerdict(
            uid=uid,
            allowed=False,
            outcome=Outcome.TIMEOUT if timed_out else Outcome.ERROR,
            message=_denial_message(denied, len(verdicts)),
            category=Category.TIMEOUT if timed_out else denied[0].category,
            images=tuple(verdicts),
        )
    patch = tuple(
        PatchOperation(path=workload.patch_path(slot), value=v.new_image or "")
        for v in verdicts
        if v.patches
        for slot in slots[v.image]
    )
    skipped = all(v.skipped is not None for v in verdicts)
    return RequestVerdict(
        uid=uid,
        allowed=True,
        outcome=Outcome.SKIP if skipped else Outcome.SUCCESS,
        patch=patch,
        images=tuple(verdicts),
    )


def _denial_message(denied: list[ImageVerdict], total: int) -> str:
    head = f"{len(denied)} of {total} images denied: " if total > 1 else ""
    return head + "; ".join(v.describe_denial() for v in denied)


def _admitted(
    verdict: RequestVerdict, warnings: tuple[str, ...], *, keep_patch: bool
) -> RequestVerdict:
    return RequestVerdict(
        uid=verdict.uid,
        allowed=True,
        outcome=verdict.outcome,
        message=verdict.message,
        category=verdict.category,
        patch=verdict.patch if keep_patch else (),
        warnings=warnings,
        images=verdict.images,
    )
