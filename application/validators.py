"""The validator abstraction, the registry of configured validators, and the static validator."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from connaisseur.application.deadline import Deadline
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.errors import Category, ConfigError, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.verdict import TrustedDigest


class Validator(Protocol):
    """Establishes trust in one image under one rule's options."""

    name: str
    type: str

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        """Evidence of trust: the digest to pin (``None`` = keep the reference as it is).

        Raises:
            ConnaisseurError: any subclass; its category says why trust was not established.
        """
        ...


#: Builds a validator of one ``type`` from its settings; composed in ``config/container.py``.
ValidatorFactory = Callable[[ValidatorSettings], Validator]


class StaticValidator:
    """Approves or denies every image without looking at it (``type: static``)."""

    type = "static"

    def __init__(self, settings: ValidatorSettings) -> None:
        self.name = settings.name
        self.approve = settings.approve

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        """Approve without pinning anything, or deny with ``static_deny``.

        Raises:
            VerificationError: ``static_deny`` when configured with ``approve: false``.
        """
        return self.decide(image)

    def decide(self, image: ImageReference) -> TrustedDigest:
        """The synchronous decision, so the hot path needs no task for static rules.

        Raises:
            VerificationError: ``static_deny`` when configured with ``approve: false``.
        """
        if not self.approve:
            raise VerificationError("static deny", category=Category.STATIC_DENY)
        return TrustedDigest(digest=None)  # nothing was verified, so nothing is pinned


def build_validators(
    settings: tuple[ValidatorSettings, ...], factories: Mapping[str, ValidatorFactory]
) -> dict[str, Validator]:
    """Instantiate every configured validator by type; the first of a duplicate name wins.

    The settings were checked when the configuration loaded; a validator takes them as given.

    Raises:
        ConfigError: a validator type has no factory (a build without that validator).
    """
    validators: dict[str, Validator] = {}
    for i, spec in enumerate(settings):
        factory = factories.get(spec.type)
        if factory is None:
            raise ConfigError(f"validators[{i}]: type {spec.type!r} is not supported")
        validators.setdefault(spec.name, factory(spec))
    return validators
