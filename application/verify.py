"""Use case: decide one image — parse, match the policy, skip or verify, pin the digest."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from connaisseur.application.caching import cache_key, cached_category, definitive, rule_fingerprint
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Cache, CachedResult, Metrics
from connaisseur.application.settings import Limits
from connaisseur.application.validators import StaticValidator, Validator
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference, is_digest
from connaisseur.domain.policy import Mode, Policy, Rule
from connaisseur.domain.verdict import ImageVerdict, SkipReason, TrustedDigest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyImageCommand:
    """One raw image string and what may let it skip verification."""

    image: str
    approved_images: frozenset[str] = frozenset()
    approval_reason: SkipReason | None = None


_STATIC_MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """How ``VerifyImage`` uses the cache (D5); ``cache=None`` means no caching at all."""

    cache: Cache | None = None
    ttl_seconds: int = 30
    cache_errors: bool = True
    #: validator name → hash of its settings (``ValidatorSettings.fingerprint()``)
    validator_fingerprints: Mapping[str, str] = field(default_factory=dict)


class VerifyImage:
    """Applies the policy to one image and verifies it with the rule's validator.

    Non-static verifications consult the cache first, and identical verifications running
    at the same time in this process are coalesced into one. A coalesced verification runs
    under a deadline of its own, as long as any request may have (``deadline_cap_seconds``):
    each request waits for it only as long as its own deadline allows, and the last one to
    give up cancels it, so no request inherits another's shorter budget and no work outlives
    every request that wanted it.
    """

    def __init__(
        self,
        policy: Policy,
        validators: Mapping[str, Validator],
        metrics: Metrics,
        caching: CachePolicy | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._policy = policy
        self._validators = validators
        self._metrics = metrics
        self._caching = caching or CachePolicy()
        self._limits = limits or Limits()
        self._running = asyncio.Semaphore(self._limits.max_concurrent_verifications)
        self._configurations: dict[Rule, str] = {}
        self._inflight: dict[str, _Shared] = {}
        # raw image → verdict of its static rule: a pure function of the fixed configuration
        # (static rules are never skipped), so hot images skip parse, match and verdict build.
        self._static_verdicts: dict[str, ImageVerdict] = {}

    def decide_now(self, command: VerifyImageCommand) -> ImageVerdict | None:
        """The verdict when it needs no I/O (bad reference, no rule, static); else ``None``."""
        known = self._static_verdicts.get(command.image)
        if known is not None:
            return self._record(known, time.perf_counter())
        try:
            image, rule, validator = self._resolve(command.image)
        except ConnaisseurError as e:
            return _failed(command.image, None, None, None, e)
        skip = self._skip(command, image, rule, validator)
        if skip is not None:
            return self._record(skip, time.perf_counter())
        if isinstance(validator, StaticValidator):
            started = time.perf_counter()
            verdict = _static(command.image, image, rule, validator)
            if len(self._static_verdicts) >= _STATIC_MEMO_SIZE:
                self._static_verdicts.clear()
            self._static_verdicts[command.image] = verdict
            return self._record(verdict, started)
        return None

    async def execute(self, command: VerifyImageCommand, deadline: Deadline) -> ImageVerdict:
        """Decide the image within ``deadline``; every failure becomes a denial verdict."""
        now = self.decide_now(command)
        if now is not None:
            return now
        image, rule, validator = self._resolve(command.image)
        key = cache_key(command.image, self._configuration(rule))
        cache = self._caching.cache
        if cache is not None:
            started = time.perf_counter()
            hit = await cache.get(key)
            if hit is not None and (hit.digest or hit.message or hit.category):
                return self._record(_replayed(command.image, image, rule, validator, hit), started)
        shared = self._inflight.get(key)
        if shared is None or shared.abandoned:
            shared = self._start(key, command.image, deadline)
        verdict = await shared.wait(deadline)
        if verdict is None:
            late = ConnaisseurError("not verified before the deadline", category=Category.TIMEOUT)
            return self._record(_failed(command.image, image, rule, validator, late), 0.0)
        return verdict

    def _start(self, key: str, raw: str, deadline: Deadline) -> _Shared:
        """Start the verification of ``raw`` that requests with this key will share."""
        budget = max(self._limits.deadline_cap_seconds, deadline.remaining())
        own = Deadline.after(deadline.clock, budget)
        shared = self._inflight[key] = _Shared(
            asyncio.ensure_future(self._verify_and_store(key, raw, own))
        )

        def forget(_: object) -> None:
            if self._inflight.get(key) is shared:  # not a newer one started meanwhile
                del self._inflight[key]

        shared.task.add_done_callback(forget)
        return shared

    async def _verify_and_store(self, key: str, raw: str, deadline: Deadline) -> ImageVerdict:
        image, rule, validator = self._resolve(raw)
        started = time.perf_counter()
        cacheable = True
        try:
            async with self._running:
                evidence = await validator.validate(image, rule.options, deadline)
            verdict = _trusted(raw, image, rule, validator, evidence)
        except ConnaisseurError as e:
            verdict = _failed(raw, image, rule, validator, e)
        except Exception:
            log.exception("validator %s crashed on %s", validator.name, raw)
            crash = ConnaisseurError(
                "internal error during validation", category=Category.VALIDATION_FAILED
            )
            verdict = _failed(raw, image, rule, validator, crash)
            cacheable = False
        self._record(verdict, started)
        if cacheable:
            await self._store(key, verdict)
        return verdict

    async def _store(self, key: str, verdict: ImageVerdict) -> None:
        caching = self._caching
        if caching.cache is None:
            return
        result = definitive(verdict, caching.cache_errors)
        if result is not None:
            await caching.cache.put(key, result, caching.ttl_seconds)

    def _configuration(self, rule: Rule) -> str:
        known = self._configurations.get(rule)
        if known is None:
            fingerprint = self._caching.validator_fingerprints.get(rule.validator or "default", "")
            known = self._configurations[rule] = rule_fingerprint(rule, fingerprint)
        return known

    def _resolve(self, raw: str) -> _Resolved:
        image = ImageReference.parse(raw)
        rule = self._policy.match(image.name)
        validator = self._validators.get(rule.validator or "default")
        if validator is None:
            raise ConnaisseurError(
                f'validator "{rule.validator}" not found', category=Category.VALIDATOR_NOT_FOUND
            )
        return _Resolved(image, rule, validator)

    def _skip(
        self, command: VerifyImageCommand, image: ImageReference, rule: Rule, validator: Validator
    ) -> ImageVerdict | None:
        if command.approval_reason is None or command.image not in command.approved_images:
            return None
        if isinstance(validator, StaticValidator):
            return None  # static rules are cheap and never skipped, so a deny stays a deny
        return ImageVerdict(
            image=command.image,
            reference=image.name,
            allowed=True,
            new_image=image.name,
            digest=image.digest or None,
            rule=rule.pattern,
            validator=validator.name,
            validator_type=validator.type,
            mode=rule.options.mode,
            skipped=command.approval_reason,
        )

    def _record(self, verdict: ImageVerdict, started: float) -> ImageVerdict:
        if verdict.skipped is not None:
            self._metrics.skipped(
                verdict.validator_type or "unknown", verdict.validator or "", str(verdict.skipped)
            )
        self._metrics.validation(
            verdict.validator_type or "unknown",
            verdict.validator or "",
            str(verdict.category or "success"),
            time.perf_counter() - started,
        )
        return verdict


class _Resolved(NamedTuple):
    """A raw image string parsed, the rule it matches and that rule's validator."""

    image: ImageReference
    rule: Rule
    validator: Validator


class _Shared:
    """One in-flight verification, how many requests wait for it, and whether its last
    waiter gave it up (then nobody may join it: it is being cancelled)."""

    __slots__ = ("abandoned", "task", "waiters")

    def __init__(self, task: asyncio.Future[ImageVerdict]) -> None:
        self.task = task
        self.waiters = 0
        self.abandoned = False

    async def wait(self, deadline: Deadline) -> ImageVerdict | None:
        """The shared verdict, or ``None`` when ``deadline`` passes first or the work was
        cancelled by someone else (a shutdown). A waiter giving up does not cancel the
        others' work; the last one to give up cancels it, so no orphaned requests remain.

        Raises:
            asyncio.CancelledError: only when this waiter itself is cancelled.
        """
        self.waiters += 1
        try:
            return await asyncio.wait_for(asyncio.shield(self.task), deadline.remaining())
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return None
        finally:
            self.waiters -= 1
            if self.waiters == 0 and not self.task.done():
                self.abandoned = True
                self.task.cancel()


def _static(
    raw: str, image: ImageReference, rule: Rule, validator: StaticValidator
) -> ImageVerdict:
    try:
        evidence = validator.decide(image)
    except ConnaisseurError as e:
        denial = ConnaisseurError(
            f"static deny for image {raw} using rule {rule.pattern}", category=e.category
        )
        return _failed(raw, image, rule, validator, denial)
    uncovered = rule.uncovered_digest(raw, image.digest)
    if uncovered is not None:
        denial = ConnaisseurError(uncovered, category=Category.STATIC_DENY)
        return _failed(raw, image, rule, validator, denial)
    return _trusted(raw, image, rule, validator, evidence)


def _trusted(
    raw: str, image: ImageReference, rule: Rule, validator: Validator, evidence: TrustedDigest
) -> ImageVerdict:
    digest = evidence.digest
    if digest is not None and not digest.startswith("sha256:"):
        digest = "sha256:" + digest
    if digest is not None and not is_digest(digest):
        e = ConnaisseurError(
            f"validated image reference {image.context}@{digest} has invalid format",
            category=Category.INVALID_REFERENCE,
        )
        return _failed(raw, image, rule, validator, e)
    if digest is not None and image.digest and digest != image.digest:
        # Safety net: a validator must never swap the digest the workload asked for.
        e = ConnaisseurError(
            f"image {raw} asks for {image.digest} but its trusted digest is {digest}",
            category=Category.DIGEST_MISMATCH,
        )
        return _failed(raw, image, rule, validator, e)
    pinned = image.with_digest(digest) if digest else image
    return ImageVerdict(
        image=raw,
        reference=image.name,
        allowed=True,
        new_image=pinned.name,
        digest=digest,
        rule=rule.pattern,
        validator=validator.name,
        validator_type=validator.type,
        mode=rule.options.mode,
    )


def _replayed(
    raw: str, image: ImageReference, rule: Rule, validator: Validator, hit: CachedResult
) -> ImageVerdict:
    if hit.digest:
        verdict = _trusted(raw, image, rule, validator, TrustedDigest(digest=hit.digest))
    else:
        error = ConnaisseurError(hit.message or "cached denial", category=cached_category(hit))
        verdict = _failed(raw, image, rule, validator, error)
    return replace(verdict, skipped=SkipReason.CACHE_HIT)


def _failed(
    raw: str,
    image: ImageReference | None,
    rule: Rule | None,
    validator: Validator | None,
    error: ConnaisseurError,
) -> ImageVerdict:
    return ImageVerdict(
        image=raw,
        reference=image.name if image else None,
        allowed=False,
        rule=rule.pattern if rule else None,
        validator=validator.name if validator else None,
        validator_type=validator.type if validator else None,
        mode=rule.options.mode if rule else Mode.MUTATE,
        category=error.category,
        message=error.message,
    )
