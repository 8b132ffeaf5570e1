"""The image policy: anchored glob rules and the most-specific-rule selection
(D1, docs/decisions/0001-anchored-patterns.md).

A pattern is normalised like an image reference (``nginx`` → ``index.docker.io/library/nginx``),
then matched against the *whole* normalised image name. ``*`` crosses ``/``; ``?``, ``[a-z]``,
``[!x]``, ``{a,b}`` and ``\\`` escapes follow gobwas/glob. A pattern without a tag or digest
matches every tag and digest of its repository; a pattern with a digest but no tag also matches
``name:tag@digest``. A pattern with a tag also matches ``name:tag@digest`` (a pinned child of an
image verified under it), but a static allow under such a pattern does not admit it
(docs/decisions/0020-tag-patterns-and-digests.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from connaisseur.domain.attestations import AttestationRequirement
from connaisseur.domain.errors import PolicyError
from connaisseur.domain.glob import Glob, Seq, Star, literal, none_of, optional, parse
from connaisseur.domain.image import DOCKER_HUB, DOCKER_HUB_ALIASES

_GLOB_META = frozenset("*?[{\\")
#: Longest pattern accepted at start-up: matching costs up to the pattern's length per character
#: of a name (docs/decisions/0021-linear-time-policy-matching.md), and the longest name is
#: MAX_REFERENCE_LENGTH; a long list of alternatives still fits.
MAX_PATTERN_LENGTH = 4096
#: The implicit suffixes: a pattern without a tag matches any tag, one without a digest any
#: digest (a tag or digest never contains ``/`` or ``@``).
_ANY_TAG = optional(Seq((literal(":"), Star(none_of("/@")))))
_ANY_DIGEST = optional(Seq((literal("@"), Star(none_of("/@")))))


class Mode(StrEnum):
    """What happens to an admitted image: pinned to its digest, or only validated."""

    MUTATE = "mutate"
    VALIDATE_ONLY = "insecureValidateOnly"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleOptions:
    """The ``with`` block of a rule; ``None`` means unset."""

    trust_root: str | None = None
    threshold: int | None = None
    required: tuple[str, ...] = ()
    delegations: tuple[str, ...] = ()
    verify_in_transparency_log: bool | None = None
    verify_sct: bool | None = None
    ignore_reference: bool = False
    mode: Mode = Mode.MUTATE
    verification_level: str = "strict"
    verify_timestamp: str = "always"
    #: cosign: which signature formats count (``classic``, ``bundle`` or ``any``,
    #: docs/decisions/0040-cosign-signature-formats.md)
    signature_format: str = "any"
    #: cosign: attestations the image must have (docs/decisions/0042-attestation-conditions.md)
    attestations: tuple[AttestationRequirement, ...] = ()
    #: where the image's signatures live (``registry/repository``), instead of its own repository
    signature_repository: str | None = None

    def fingerprint(self) -> tuple[Any, ...]:
        """A stable value identifying these options (part of cache keys, D5)."""
        return (
            self.trust_root,
            self.threshold,
            self.required,
            self.delegations,
            self.verify_in_transparency_log,
            self.verify_sct,
            self.ignore_reference,
            self.mode.value,
            self.verification_level,
            self.verify_timestamp,
            self.signature_format,
            tuple(a.fingerprint() for a in self.attestations),
            self.signature_repository,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One policy rule: the pattern as written, its validator name and options."""

    pattern: str
    validator: str = "default"
    options: RuleOptions = field(default_factory=RuleOptions)
    normalised: str = field(init=False, repr=False)
    glob: Glob = field(init=False, repr=False, compare=False)
    #: the pattern restricts the tag and says nothing about the digest (``app:1``, ``app:v1.*``;
    #: not ``app``, ``*:*``, ``app:1@*``): a static allow then covers no digest-qualified
    #: reference (docs/decisions/0020-tag-patterns-and-digests.md)
    restricts_tag_only: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        normalised = normalise_pattern(self.pattern)
        object.__setattr__(self, "normalised", normalised)
        object.__setattr__(self, "restricts_tag_only", _restricts_tag_only(normalised))
        try:
            object.__setattr__(self, "glob", compile_pattern(normalised))
        except PolicyError as e:  # name the pattern as the user wrote it
            reason = e.message.rpartition(": ")[2]
            raise PolicyError(f"invalid pattern {self.pattern!r}: {reason}") from e

    def matches(self, name: str) -> bool:
        return self.glob.fullmatch(name)

    def uncovered_digest(self, raw: str, digest: str) -> str | None:
        """Why a static allow under this rule does not admit ``raw``, which names ``digest``
        (``None`` when it does): the runtime pulls the digest and ignores the tag, so allowing
        ``app:1`` must not allow ``app:1@<any digest>``
        (docs/decisions/0020-tag-patterns-and-digests.md)."""
        if not digest or not self.restricts_tag_only:
            return None
        return (
            f"static allow for tag pattern {self.pattern} does not cover the digest in {raw}: "
            "the digest is what runs, whatever the tag says (name the digest in the pattern, "
            "or allow the whole repository)"
        )


@dataclass(frozen=True, slots=True)
class Specificity:
    """How specific a pattern is for one image name (Connaisseur v3's order, see :meth:`key`)."""

    component_count: int
    prefix_lengths: tuple[int, ...]
    component_lengths: tuple[int, ...]

    @classmethod
    def of(cls, pattern: str, name: str) -> Specificity:
        pcs, ics = pattern.split("/"), name.split("/")
        prefixes = tuple(
            _common_prefix(pc, ics[k] if k < len(ics) else "") for k, pc in enumerate(pcs)
        )
        return cls(len(pcs), prefixes, tuple(len(pc) for pc in pcs))

    def key(self) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """Sort key: more components, then longer prefixes left to right, then longer parts."""
        return (self.component_count, self.prefix_lengths, self.component_lengths)


class Policy:
    """An ordered list of rules; :meth:`match` picks the most specific matching rule."""

    __slots__ = ("_memo", "rules")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._memo: dict[str, Rule | None] = {}

    def match(self, name: str) -> Rule:
        """The most specific rule matching the normalised image ``name``; ties: the last wins.

        Raises:
            PolicyError: no rule matches.
        """
        if name not in self._memo:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[name] = self._select(name)
        rule = self._memo[name]
        if rule is None:
            raise PolicyError("no matching rule")
        return rule

    def matching(self, name: str) -> list[tuple[Rule, Specificity]]:
        """Every matching rule with its specificity, in configuration order (for ``explain``)."""
        return [(r, Specificity.of(r.normalised, name)) for r in self.rules if r.matches(name)]

    def _select(self, name: str) -> Rule | None:
        best: Rule | None = None
        best_key: tuple[Any, ...] = ()
        for rule, spec in self.matching(name):
            key = spec.key()
            if best is None or key >= best_key:
                best, best_key = rule, key
        return best


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def normalise_pattern(pattern: str) -> str:
    """Spell a pattern like a normalised image name; globbed registries stay as written.

    Raises:
        PolicyError: the pattern is empty or longer than ``MAX_PATTERN_LENGTH``.
    """
    if not pattern:
        raise PolicyError("pattern must not be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PolicyError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    first, sep, rest = pattern.partition("/")
    # A glob in the registry (or in a bare repository such as ``*:*``) leaves the pattern as
    # written; a glob only in the tag or digest (``nginx:*``) still names a Docker Hub image.
    head = first if sep else split_top_level(split_top_level(pattern, "@").before, ":").before
    if _GLOB_META.intersection(head):
        return pattern
    if sep and ("." in first or ":" in first):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, pattern
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository and repository[:1] not in _GLOB_META:
            repository = "library/" + repository
    return f"{registry}/{repository}"


def _restricts_tag_only(pattern: str) -> bool:
    repo, at, _ = split_top_level(pattern, "@")
    _, colon, tag = split_top_level(repo.rsplit("/", 1)[-1], ":")
    return bool(colon) and not at and tag != "*"


def compile_pattern(pattern: str) -> Glob:
    """Compile a normalised pattern, with the implicit tag and digest suffixes, to a matcher
    that runs in time linear in the name (docs/decisions/0021-linear-time-policy-matching.md).

    Raises:
        PolicyError: the glob syntax is invalid.
    """
    repo, at, digest = split_top_level(pattern, "@")
    last = repo.rsplit("/", 1)[-1]
    has_tag = split_top_level(last, ":").separator != ""
    parts = list(parse(repo, pattern).parts)
    if at:
        if not has_tag:
            parts.append(_ANY_TAG)
        parts += [literal("@"), *parse(digest, pattern).parts]
    elif has_tag:
        parts.append(_ANY_DIGEST)
    else:
        parts += [_ANY_TAG, _ANY_DIGEST]
    return Glob(Seq(tuple(parts)))


class TopLevelSplit(NamedTuple):
    """What :func:`split_top_level` finds, as ``str.partition`` names it: the text before the
    separator, the separator (``""`` when absent) and the text after it."""

    before: str
    separator: str
    after: str


def split_top_level(text: str, sep: str) -> TopLevelSplit:
    """Partition at the first ``sep`` outside ``[]``/``{}`` and not escaped."""
    depth, i = 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        elif c == sep and depth == 0:
            return TopLevelSplit(before=text[:i], separator=sep, after=text[i + 1 :])
        i += 1
    return TopLevelSplit(before=text, separator="", after="")
