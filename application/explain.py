"""Use cases: explain how the policy applies to an image, without any network access
(``explain``); and list every signature and attestation its validator finds, judged
(``verify --explain``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from connaisseur.application.deadline import Deadline
from connaisseur.application.pipeline import Inspection, SignatureValidator
from connaisseur.application.settings import Settings, ValidatorSettings
from connaisseur.application.validators import Validator
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import Rule, Specificity
from connaisseur.domain.trust import select_trust_roots


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Every matching rule with its specificity, the winner, its validator and trust roots."""

    image: str
    reference: str | None = None
    matches: tuple[tuple[Rule, Specificity], ...] = ()
    rule: Rule | None = None
    validator: ValidatorSettings | None = None
    trust_roots: tuple[str, ...] = ()
    error: ConnaisseurError | None = None


class ExplainImage:
    """Applies the policy to an image as ``VerifyImage`` would, and reports why."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def execute(self, raw: str) -> Explanation:
        """The explanation for ``raw``; problems are reported in ``error``, never raised."""
        try:
            image = ImageReference.parse(raw)
        except ConnaisseurError as e:
            return Explanation(image=raw, error=e)
        policy = self._settings.policy
        found = Explanation(
            image=raw, reference=image.name, matches=tuple(policy.matching(image.name))
        )
        try:
            rule = policy.match(image.name)
        except ConnaisseurError as e:
            return replace(found, error=e)
        validator = self._settings.validator(rule.validator)
        if validator is None:
            missing = ConnaisseurError(
                f'validator "{rule.validator}" not found', category=Category.VALIDATOR_NOT_FOUND
            )
            return replace(found, rule=rule, error=missing)
        roots, error = _trust_roots(validator, rule)
        uncovered = rule.uncovered_digest(raw, image.digest) if validator.approve else None
        if uncovered is not None and validator.type == "static":
            error = ConnaisseurError(uncovered, category=Category.STATIC_DENY)
        return replace(found, rule=rule, validator=validator, trust_roots=roots, error=error)


def _trust_roots(
    validator: ValidatorSettings, rule: Rule
) -> tuple[tuple[str, ...], ConnaisseurError | None]:
    """The trust roots the rule selects; static validators have none."""
    if validator.type == "static":
        return (), None
    try:
        roots = select_trust_roots(validator.trust_roots, [rule.options.trust_root])
    except ConnaisseurError as e:
        return (), e
    return tuple(r.name for r in roots), None


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What ``verify --explain`` shows for one image: the rule and validator the policy picks
    and every signature and attestation that validator found, judged
    (docs/decisions/0043-explain-every-signature.md)."""

    image: str
    rule: Rule | None = None
    validator: str | None = None
    inspection: Inspection | None = None
    error: ConnaisseurError | None = None


class InspectImage:
    """Runs the image's validator once more without stopping at the first verdict, so every
    candidate it finds is judged and listed. Never cached; the verdict is ``VerifyImage``'s."""

    def __init__(self, settings: Settings, validators: Mapping[str, Validator]) -> None:
        self._settings = settings
        self._validators = validators

    async def execute(self, raw: str, deadline: Deadline) -> Evidence:
        """The evidence for ``raw``; problems are reported in ``error``, never raised."""
        try:
            image = ImageReference.parse(raw)
            rule = self._settings.policy.match(image.name)
        except ConnaisseurError as e:
            return Evidence(image=raw, error=e)
        validator = self._validators.get(rule.validator or "default")
        if not isinstance(validator, SignatureValidator):
            return Evidence(image=raw, rule=rule, validator=rule.validator)
        inspection = await validator.inspect(image, rule.options, deadline)
        return Evidence(image=raw, rule=rule, validator=rule.validator, inspection=inspection)
