"""Use case: explain how the policy applies to an image, without any network access."""

from __future__ import annotations

from dataclasses import dataclass, replace

from connaisseur.application.settings import Settings, ValidatorSettings
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
