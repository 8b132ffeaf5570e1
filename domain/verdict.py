"""Verdicts: what was decided for each image and for the whole admission request."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Mode


class SkipReason(StrEnum):
    """Why an image was admitted without running its validator."""

    UNCHANGED = "unchanged image reference"
    CHILD = "automatic approval of child image reference"
    CACHE_HIT = "cache hit"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedDigest:
    """Evidence returned by a validator: the digest it established trust in, and who signed."""

    digest: str | None
    signers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageVerdict:
    """The decision for one distinct raw image string of a request."""

    image: str
    reference: str | None
    allowed: bool
    new_image: str | None = None
    digest: str | None = None
    rule: str | None = None
    validator: str | None = None
    validator_type: str | None = None
    mode: Mode = Mode.MUTATE
    category: Category | None = None
    message: str | None = None
    skipped: SkipReason | None = None

    @property
    def patches(self) -> bool:
        """True when admitting this image means rewriting it in the workload."""
        return (
            self.allowed
            and self.mode is Mode.MUTATE
            and self.new_image is not None
            and self.new_image != self.reference
        )

    def describe_denial(self) -> str:
        """One sentence naming the image, rule, validator, category and reason (D7)."""
        where = []
        if self.rule is not None:
            where.append(f"rule {self.rule!r}")
        if self.validator is not None:
            where.append(f"validator {self.validator!r}")
        context = f" ({', '.join(where)})" if where else ""
        return f"image {self.image!r}{context} denied [{self.category}]: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PatchOperation:
    """A JSON Patch ``replace`` of one container's image."""

    path: str
    value: str


class Outcome(StrEnum):
    """Request-level outcome, as alerting and logs name it."""

    SUCCESS = "success"
    SKIP = "skip"
    ERROR = "error"
    TIMEOUT = "timeout"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVerdict:
    """The decision for a whole admission request."""

    uid: str
    allowed: bool
    outcome: Outcome
    message: str | None = None
    category: Category | None = None
    patch: tuple[PatchOperation, ...] = ()
    warnings: tuple[str, ...] = ()
    images: tuple[ImageVerdict, ...] = field(default_factory=tuple)
