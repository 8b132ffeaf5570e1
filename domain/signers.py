"""Who vouched for an image: the judgement of each candidate, and the tally that decides.

Every signature validator checks its candidates one at a time (``application/pipeline.py``)
and hands each judgement or rejection to a :class:`Tally`. A rule needs either any one
candidate that verifies, or distinct signers: ``threshold`` of them and every ``required``
trust root (D3, docs/decisions/0003-thresholds-count-signers.md) — and, where the rule requires
more evidence (cosign attestations), one candidate fulfilling each requirement. A denial is
explained by the rejection closest to trust (:func:`connaisseur.domain.errors.closest_to_trust`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from connaisseur.domain.errors import Category, Rejection, VerificationError, closest_to_trust
from connaisseur.domain.trust import Selection
from connaisseur.domain.verdict import TrustedDigest


class Vouch(NamedTuple):
    """A trust root that vouched, and the signer through which it did: a key's
    SubjectPublicKeyInfo, a keyless identity, a pinned key's id, a signing certificate's
    subject — two roots vouching through one signer are one signer (D3)."""

    root: str
    signer: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """What one candidate established: the digest it vouches for and the roots it satisfies;
    ``refused`` says why it satisfies none of the other selected roots."""

    digest: str | None
    vouches: tuple[Vouch, ...] = ()
    refused: tuple[Rejection, ...] = ()
    #: the requirement of the rule this candidate is evidence for (an attestation's predicate
    #: type); ``None`` for a signature. Evidence for a requirement never counts as a signer.
    requirement: str | None = None

    @property
    def verified(self) -> bool:
        """The candidate counts: a root vouched for it, or nothing refused it (a Notation
        ``audit`` level accepts a signature no root vouches for)."""
        return bool(self.vouches) or not self.refused


class Tally:
    """The judgements and rejections of one verification, in the order they came."""

    def __init__(self, selection: Selection) -> None:
        self._selection = selection
        self._judgements: list[Judgement] = []
        self._rejections: list[Rejection] = []
        self._failed = 0  # candidates that count for nothing
        self._fulfilled: set[str] = set()
        self._unmet: dict[str, list[Rejection]] = {r: [] for r in selection.requirements}

    @property
    def counting(self) -> bool:
        """The rule counts distinct signers (``threshold`` or ``required``), so every
        candidate is judged; otherwise the first that verifies decides."""
        return self._selection.threshold > 0 or bool(self._selection.required)

    @property
    def settled(self) -> bool:
        """No further candidate can change the outcome."""
        return (
            not self.counting
            and any(j.verified for j in self._judgements)
            and self._fulfilled.issuperset(self._unmet)
        )

    def add(self, judgement: Judgement) -> None:
        if judgement.requirement is not None:
            self._evidence(judgement)
            return
        self._judgements.append(judgement)
        self._rejections.extend(judgement.refused)
        if not judgement.verified:
            self._failed += 1

    def reject(self, rejection: Rejection) -> None:
        """A candidate that was refused as a whole (or could not be fetched)."""
        self._rejections.append(rejection)
        self._failed += 1

    def verdict(self) -> TrustedDigest:
        """The trusted digest and the roots that vouched for it.

        Raises:
            VerificationError: ``threshold_not_met``, ``required_signer_missing``, or, when no
                candidate verified, the rejection closest to trust (naming how many failed);
                then, for the first requirement no candidate fulfilled, the rejection closest
                to trust among its candidates, or ``no_trust_data`` when it had none.
        """
        trusted = self._signed()
        for requirement, rejections in self._unmet.items():
            if requirement not in self._fulfilled:
                raise closest_to_trust(rejections) or VerificationError(
                    f"no attestation of type {requirement} found",
                    category=Category.NO_TRUST_DATA,
                )
        return trusted

    def _signed(self) -> TrustedDigest:
        if self.counting:
            return self._counted()
        accepted = next((j for j in self._judgements if j.verified), None)
        if accepted is None:
            raise self._explanation()
        roots = tuple(dict.fromkeys(s.root for s in accepted.vouches))
        return TrustedDigest(digest=accepted.digest, signers=roots)

    def _evidence(self, judgement: Judgement) -> None:
        requirement = judgement.requirement or ""
        if requirement not in self._unmet:
            return  # evidence nobody asked for (explain lists it; it decides nothing)
        if judgement.vouches:
            self._fulfilled.add(requirement)
        else:
            self._unmet[requirement].extend(judgement.refused)

    def _counted(self) -> TrustedDigest:
        order = {root.name: i for i, root in enumerate(self._selection.roots)}
        vouches = sorted(
            (v for j in self._judgements for v in j.vouches),
            key=lambda v: order.get(v.root, len(order)),
        )
        names = aggregate(vouches, self._selection, closest_to_trust(self._rejections))
        digest = next((j.digest for j in self._judgements if j.vouches), None)
        if not names:
            raise self._explanation()
        return TrustedDigest(digest=digest, signers=names)

    def _explanation(self) -> VerificationError:
        best = closest_to_trust(self._rejections)
        if best is None:
            return VerificationError("no signed digests", category=Category.SIGNATURE_INVALID)
        if self._failed > 1:
            return best.reworded(f"none of {self._failed} signatures verified; {best.message}")
        return best


def distinct_signers(vouches: Sequence[Vouch], first: Sequence[str] = ()) -> list[str]:
    """Trust roots satisfied by pairwise distinct signers (maximum bipartite matching), in
    the order the roots first appear in ``vouches``.

    Two trust roots holding the same key, one keyless identity matched by two roots, or one
    root named twice count once: a threshold counts signers, not names (D3). The roots in
    ``first`` (the required ones) are matched first; augmenting paths never unmatch a root,
    so each keeps a signer of its own whenever one exists, and the matching is still maximum.
    """
    options: dict[str, set[bytes]] = {}
    for vouch in vouches:
        options.setdefault(vouch.root, set()).add(vouch.signer)
    owner: dict[bytes, str] = {}

    def assign(name: str, seen: set[bytes]) -> bool:
        for signer in sorted(options[name]):
            if signer in seen:
                continue
            seen.add(signer)
            if signer not in owner or assign(owner[signer], seen):
                owner[signer] = name
                return True
        return False

    for name in dict.fromkeys([*first, *options]):
        if name in options:
            assign(name, set())
    satisfied = set(owner.values())
    return [name for name in options if name in satisfied]


def aggregate(
    vouches: Sequence[Vouch], selection: Selection, failure: Rejection | None = None
) -> tuple[str, ...]:
    """Apply ``threshold`` and ``required``, counting distinct signers (D3); return the roots
    that count. ``failure`` (the rejection closest to trust) explains a missed threshold.

    Raises:
        VerificationError: ``threshold_not_met`` or ``required_signer_missing``.
    """
    names = distinct_signers(vouches, first=selection.required)
    if selection.threshold > 0 and len(names) < selection.threshold:
        why = f"; other signatures: {failure.message}" if failure else ""
        raise VerificationError(
            f"validation threshold not reached ({len(names)}/{selection.threshold}){why}",
            category=Category.THRESHOLD_NOT_MET,
        )
    missing = [r for r in selection.required if r not in names]
    if missing:
        raise VerificationError(
            f"missing required signatures from {', '.join(missing)}",
            category=Category.REQUIRED_SIGNER_MISSING,
        )
    return tuple(names)
