"""One error family for everything that can make an image or a request fail.

Every error carries a :class:`Category` from the public error vocabulary (CLI output, log fields
and metric labels use it) and a one-sentence message safe to show to API clients: no upstream
bodies, no stack traces, no credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Self, TypeVar


class Category(StrEnum):
    """The public error vocabulary (conformance ``error_categories`` plus our additions)."""

    INVALID_REFERENCE = "invalid_reference"
    NO_MATCHING_RULE = "no_matching_rule"
    VALIDATOR_NOT_FOUND = "validator_not_found"
    CONFIG_INVALID = "config_invalid"
    TRUST_ROOT_NOT_FOUND = "trust_root_not_found"
    INVALID_KEY = "invalid_key"
    FETCH_FAILED = "fetch_failed"
    NO_TRUST_DATA = "no_trust_data"
    IMAGE_NOT_FOUND = "image_not_found"
    MALFORMED_TRUST_DATA = "malformed_trust_data"
    SIGNATURE_INVALID = "signature_invalid"
    EXPIRED = "expired"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    NO_DELEGATIONS = "no_delegations"
    DELEGATION_NOT_FOUND = "delegation_not_found"
    REFERENCE_NOT_FOUND = "reference_not_found"
    DIGEST_MISMATCH = "digest_mismatch"
    AMBIGUOUS_DIGEST = "ambiguous_digest"
    THRESHOLD_NOT_MET = "threshold_not_met"
    REQUIRED_SIGNER_MISSING = "required_signer_missing"
    IDENTITY_MISMATCH = "identity_mismatch"
    STATIC_DENY = "static_deny"
    VALIDATION_FAILED = "validation_failed"
    TIMEOUT = "timeout"
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_WORKLOAD_KIND = "unknown_workload_kind"
    NO_CONTAINERS = "no_containers"
    TEMPLATE_ERROR = "template_error"
    SEND_FAILED = "send_failed"
    # Additions (D9, docs/decisions/0009-transient-vs-permanent.md): transient upstream trouble
    # the operator must tell apart.
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    UNAVAILABLE = "unavailable"
    # Addition (docs/decisions/0016-notary-rollback-in-process.md): signed metadata older than a
    # version already seen for the same repository.
    ROLLBACK = "rollback"
    # Addition (docs/decisions/0042-attestation-conditions.md): an attestation the rule requires
    # is signed and about the image, but its predicate fails a condition.
    PREDICATE_MISMATCH = "predicate_mismatch"


#: Categories that describe the state of an upstream, not of the image: never cached (D5).
TRANSIENT_CATEGORIES = frozenset(
    {Category.FETCH_FAILED, Category.TIMEOUT, Category.RATE_LIMITED, Category.UNAVAILABLE}
)


class ConnaisseurError(Exception):
    """Base of the family: a category and a one-sentence, client-safe message."""

    category: Category = Category.VALIDATION_FAILED

    def __init__(self, message: str, *, category: Category | None = None) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def transient(self) -> bool:
        """True when retrying later may succeed (network, 5xx, 429, timeout): never cached."""
        return self.category in TRANSIENT_CATEGORIES

    def reworded(self, message: str) -> Self:
        """This error — its class, category and every detail — saying ``message`` instead.

        Built without calling ``__init__``, whose signature differs between subclasses.
        """
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.args = (message,)
        return clone


class InvalidReferenceError(ConnaisseurError):
    """An image reference, registry or repository string cannot be parsed."""

    category = Category.INVALID_REFERENCE


class PolicyError(ConnaisseurError):
    """The policy cannot decide: no rule matches, or a pattern is invalid."""

    category = Category.NO_MATCHING_RULE


class ConfigError(ConnaisseurError):
    """A configuration document is unreadable or invalid; ``problems`` has path-qualified lines."""

    category = Category.CONFIG_INVALID

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class TrustRootError(ConnaisseurError):
    """A trust root is missing or its key material is unusable."""

    category = Category.TRUST_ROOT_NOT_FOUND


class VerificationError(ConnaisseurError):
    """A validator could not establish trust in an image; the category says why."""

    category = Category.SIGNATURE_INVALID


def malformed_trust_data(reason: str) -> VerificationError:
    """Trust data (an envelope, a bundle, a referrer manifest) that does not parse as its format
    says: not the signer's fault, and no signature to check."""
    return VerificationError(reason, category=Category.MALFORMED_TRUST_DATA)


class Rejection(VerificationError):
    """One candidate — a signature, a repository's trust data — does not establish trust.

    ``stage`` says how far the candidate got through its validator's procedure before it
    failed (each validator numbers its own steps, see ``domain.sigstore.Stage`` and
    ``domain.notation.Step``): the further, the closer to trust (:func:`closest_to_trust`).
    """

    def __init__(self, message: str, *, category: Category | None = None, stage: int = 0) -> None:
        super().__init__(message, category=category)
        self.stage = stage


R = TypeVar("R", bound=Rejection)


def closest_to_trust(rejections: Iterable[R]) -> R | None:
    """The rule that explains a denial: of the rejected candidates, the one that got furthest
    (highest ``stage``) — the first of equals; ``None`` when there is none."""
    return max(rejections, key=lambda r: r.stage, default=None)


class WorkloadError(ConnaisseurError):
    """The admitted object cannot be read as a workload we validate."""

    category = Category.UNKNOWN_WORKLOAD_KIND
