"""The one validator pipeline every signature validator runs (cosign, Notary v1, Notation).

A validator type writes two things:

* :meth:`SignatureValidator.candidates` — its fetch: what may vouch for the image (signatures,
  a repository's trust data), through the ports, the most promising first. A candidate that
  cannot be fetched or read is yielded as a :class:`Rejection` (the others may still verify); a
  failure that would hit every candidate (the image is missing, the registry is down) is
  raised.
* :meth:`SignatureValidator.check` — its pure check of one candidate against the selected trust
  roots at ``now``: a :class:`Judgement` (which roots it satisfies, by which signer), or a
  :class:`Rejection` saying how far it got.

The pipeline does the rest, the same way for every type:

1. selects the trust roots for the rule (``domain.trust``), before any request;
2. checks the candidates as they arrive and stops fetching once the rule is met
   (``domain.signers.Tally``: any one candidate, or D3's distinct signers);
3. denies with the rejection closest to trust (``domain.errors.closest_to_trust``);
4. says ``<type>: image <image> (trust roots: <names>): <reason>`` in every message of a
   failed verification (docs/decisions/0060-one-validator-pipeline.md).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Clock, Endpoint
from connaisseur.application.settings import ValidatorSettings
from connaisseur.domain.errors import ConnaisseurError, Rejection
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.signers import Judgement, Tally
from connaisseur.domain.trust import Selection, TrustRoot, select_signers, select_trust_roots
from connaisseur.domain.verdict import TrustedDigest

Candidate = TypeVar("Candidate")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """One image under one rule: its options and the trust roots they select."""

    image: ImageReference
    options: RuleOptions
    selection: Selection
    #: every candidate is fetched and judged, also once the rule is met and also those the
    #: rule does not need (``verify --explain``, docs/decisions/0043-explain-every-signature.md)
    exhaustive: bool = False
    #: ``registry/repository`` holding the signatures, when not the image's own
    signature_repository: str = ""

    @property
    def roots(self) -> tuple[TrustRoot, ...]:
        return self.selection.roots

    @property
    def signature_home(self) -> ImageReference:
        """Where the image's signatures live: the signature repository when one is configured
        (docs/decisions/0051-signature-repository.md), else the image's own repository.
        Claims are still checked against :attr:`image`."""
        if not self.signature_repository:
            return self.image
        return ImageReference.parse(self.signature_repository)

    def signatures_of(self, digest: str) -> ImageReference:
        """:attr:`signature_home` pinned to the image's ``digest``."""
        if not self.signature_repository:
            return self.image.with_digest(digest)
        return ImageReference.parse(f"{self.signature_repository}@{digest}")

    def explain(self, error: ConnaisseurError, validator_type: str) -> ConnaisseurError:
        """``error`` saying which validator type, image and trust roots it is about."""
        return error.reworded(
            f"{validator_type}: image {self.image.name} (trust roots: "
            f"{self.selection.names}): {error.message}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One candidate as ``verify --explain`` shows it: what it is (the validator's
    :meth:`SignatureValidator.describe`) and its judgement or rejection."""

    described: Mapping[str, str]
    judgement: Judgement | None = None
    rejection: Rejection | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Inspection:
    """Every candidate of one image under one rule, and the verdict they lead to."""

    findings: tuple[Finding, ...]
    trusted: TrustedDigest | None = None
    error: ConnaisseurError | None = None


class SignatureValidator(ABC, Generic[Candidate]):
    """Verifies an image through the pipeline; a subclass supplies ``candidates`` and
    ``check`` (and its ``type``)."""

    type: str
    #: The rule's ``threshold`` and ``required`` count distinct signers (D3; cosign). Other
    #: types are satisfied by any one candidate that verifies, as in Connaisseur v3.
    counts_signers: bool = False

    def __init__(self, settings: ValidatorSettings, clock: Clock) -> None:
        """Use the settings as the configuration loader parsed and checked them."""
        self.name = settings.name
        self._roots = settings.trust_roots
        self._clock = clock
        cert = settings.cert.pem if settings.cert else None
        self._endpoint = Endpoint(auth=settings.auth, ca_pem=cert)
        self._signature_repository = settings.signature_repository

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        """The digest the selected trust roots vouch for, under the rule's options.

        Raises:
            TrustRootError: the rule names a trust root that does not exist (no request made).
            ConnaisseurError: why trust was not established — a candidate's rejection, the
                tally's ``threshold_not_met`` / ``required_signer_missing``, or a port's
                error; the message names the validator type, the image and the trust roots.
        """
        verification = self._verification(image, options, self.selection(options))
        try:
            return await self._judged(verification, deadline)
        except ConnaisseurError as e:
            raise verification.explain(e, self.type) from e

    def _verification(
        self,
        image: ImageReference,
        options: RuleOptions,
        selection: Selection,
        *,
        exhaustive: bool = False,
    ) -> Verification:
        return Verification(
            image=image,
            options=options,
            selection=selection,
            exhaustive=exhaustive,
            signature_repository=options.signature_repository or self._signature_repository,
        )

    def selection(self, options: RuleOptions) -> Selection:
        """The trust roots the rule consults (and, for types that count, how many signers).

        Raises:
            TrustRootError: a named or required trust root does not exist.
        """
        if self.counts_signers:
            return select_signers(
                self._roots, options.trust_root, options.threshold, options.required
            )
        return Selection(roots=select_trust_roots(self._roots, [options.trust_root]))

    @abstractmethod
    def candidates(
        self, verification: Verification, deadline: Deadline
    ) -> AsyncGenerator[Candidate | Rejection, None]:
        """What may vouch for the image, fetched through the ports, most promising first.

        The pipeline stops iterating (and closes the iterator) once the rule is met, so work
        not yet started for later candidates is never done.

        Raises:
            ConnaisseurError: a failure every candidate would share.
        """

    @abstractmethod
    def check(self, candidate: Candidate, verification: Verification, now: datetime) -> Judgement:
        """Judge one candidate against the selected roots; no I/O.

        Raises:
            Rejection: the candidate does not count; the other candidates still may.
            ConnaisseurError: anything else ends the verification.
        """

    def describe(self, candidate: Candidate) -> Mapping[str, str]:
        """What ``verify --explain`` says a candidate is (where it was, its format, ...)."""
        return {"candidate": type(candidate).__name__}

    async def inspect(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> Inspection:
        """Every candidate judged, none skipped, with the verdict (for ``verify --explain``);
        never raises for the image: problems are in ``error``."""
        findings: list[Finding] = []
        try:
            selection = self.selection(options)
        except ConnaisseurError as e:
            return Inspection(findings=(), error=e)
        verification = self._verification(image, options, selection, exhaustive=True)
        try:
            trusted = await self._judged(verification, deadline, findings.append)
        except ConnaisseurError as e:
            return Inspection(findings=tuple(findings), error=verification.explain(e, self.type))
        return Inspection(findings=tuple(findings), trusted=trusted)

    async def _judged(
        self,
        verification: Verification,
        deadline: Deadline,
        record: Callable[[Finding], None] | None = None,
    ) -> TrustedDigest:
        tally = Tally(verification.selection)
        found = self.candidates(verification, deadline)
        async with contextlib.aclosing(found):
            async for candidate in found:
                if isinstance(candidate, Rejection):
                    tally.reject(candidate)
                    if record:
                        record(Finding(described={}, rejection=candidate))
                    continue
                try:
                    judgement = self.check(candidate, verification, self._clock.now())
                except Rejection as e:
                    tally.reject(e)
                    if record:
                        record(Finding(described=self.describe(candidate), rejection=e))
                else:
                    tally.add(judgement)
                    if record:
                        record(Finding(described=self.describe(candidate), judgement=judgement))
                if tally.settled and not verification.exhaustive:
                    break
        return tally.verdict()
