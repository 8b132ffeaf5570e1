"""The Notation trust store and trust policy, as Connaisseur v3 configures notation-go.

Implements trust-store-trust-policy.md of the Notary Project specifications: one policy scoped
to the image repository, trusted identities ``*``, ``ca:<root>`` stores for the selected trust
roots plus ``tsa:<root>`` for those with a ``tsCert`` — and, where a root is configured with
``storeType: signingAuthority``, a ``signingAuthority:<root>`` store instead of ``ca``
(docs/decisions/0025-notation-signing-authority.md).

Verification levels (trust-store-trust-policy.md, "Signature Verification details"):

=============  =========  ============  ===================  ========  ==========
level          integrity  authenticity  authentic timestamp  expiry    revocation
=============  =========  ============  ===================  ========  ==========
``strict``     enforced   enforced      enforced             enforced  enforced
``permissive`` enforced   enforced      logged               logged    logged
``audit``      enforced   logged        logged               logged    logged
=============  =========  ============  ===================  ========  ==========
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from connaisseur.domain.errors import (
    Category,
    TrustRootError,
    VerificationError,
)
from connaisseur.domain.notation_envelope import SCHEME_SIGNING_AUTHORITY, SCHEME_X509
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.trust import TrustRoot


class StoreType(StrEnum):
    CA = "ca"
    SIGNING_AUTHORITY = "signingAuthority"
    TSA = "tsa"


#: Which trust store type may verify a signature of each signing scheme
#: (trust-store-trust-policy.md "Trust Store"; notation-go loads only that type's stores).
SIGNING_STORE: Mapping[str, StoreType] = {
    SCHEME_X509: StoreType.CA,
    SCHEME_SIGNING_AUTHORITY: StoreType.SIGNING_AUTHORITY,
}


class VerificationLevel(StrEnum):
    """Which checks a policy enforces and which it only logs (see the table above)."""

    STRICT = "strict"
    PERMISSIVE = "permissive"
    AUDIT = "audit"


class VerifyTimestamp(StrEnum):
    """When a TSA countersignature is required: always, or only once a certificate expired."""

    ALWAYS = "always"
    AFTER_CERT_EXPIRY = "afterCertExpiry"


class Check(StrEnum):
    """The validations a verification level enforces or only logs."""

    INTEGRITY = "integrity"
    AUTHENTICITY = "authenticity"
    AUTHENTIC_TIMESTAMP = "authenticTimestamp"
    EXPIRY = "expiry"
    REVOCATION = "revocation"


ENFORCED: Mapping[VerificationLevel, frozenset[Check]] = {
    VerificationLevel.STRICT: frozenset(Check),
    VerificationLevel.PERMISSIVE: frozenset({Check.INTEGRITY, Check.AUTHENTICITY}),
    VerificationLevel.AUDIT: frozenset({Check.INTEGRITY}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class NotationTrustStore:
    """Named ``ca``, ``signingAuthority`` and ``tsa`` stores built from a validator's trust
    roots at load time: a root's ``cert`` goes to its ``storeType`` (``ca`` unless configured,
    see docs/decisions/0025-notation-signing-authority.md), its ``tsCert`` to ``tsa``."""

    ca: Mapping[str, tuple[x509.Certificate, ...]]
    tsa: Mapping[str, tuple[x509.Certificate, ...]]
    signing_authority: Mapping[str, tuple[x509.Certificate, ...]] = field(default_factory=dict)

    @classmethod
    def from_roots(cls, roots: Sequence[TrustRoot]) -> NotationTrustStore:
        """The stores of the roots' parsed ``cert`` (and ``tsCert``); the first root of a name
        wins. The configuration loader guarantees every root of a notation validator a ``cert``
        and a known ``storeType``.

        Raises:
            TrustRootError: an unknown store type (see :func:`store_type_of`).
        """
        signing: dict[StoreType, dict[str, tuple[x509.Certificate, ...]]] = {
            StoreType.CA: {},
            StoreType.SIGNING_AUTHORITY: {},
        }
        tsa: dict[str, tuple[x509.Certificate, ...]] = {}
        seen: set[str] = set()
        for root in roots:
            if root.name in seen or root.cert is None:
                continue
            seen.add(root.name)
            signing[store_type_of(root)][root.name] = root.cert.certificates
            if root.ts_cert:
                tsa[root.name] = root.ts_cert.certificates
        return cls(
            ca=signing[StoreType.CA],
            tsa=tsa,
            signing_authority=signing[StoreType.SIGNING_AUTHORITY],
        )

    def certificates(self, store_type: StoreType, name: str) -> tuple[x509.Certificate, ...]:
        """The certificates of the named store.

        Raises:
            TrustRootError: no such store (``trust_root_not_found``).
        """
        store = {
            StoreType.CA: self.ca,
            StoreType.SIGNING_AUTHORITY: self.signing_authority,
            StoreType.TSA: self.tsa,
        }[store_type]
        if name not in store:
            raise TrustRootError(f"no certificates found for trustRoot {name}")
        return store[name]


def store_type_of(root: TrustRoot) -> StoreType:
    """The store a root's ``cert`` belongs to: ``ca`` unless ``storeType: signingAuthority``.

    Raises:
        TrustRootError: an unknown store type (the loader reports it with its path first).
    """
    if root.store_type is None or root.store_type == StoreType.CA.value:
        return StoreType.CA
    if root.store_type == StoreType.SIGNING_AUTHORITY.value:
        return StoreType.SIGNING_AUTHORITY
    raise TrustRootError(
        f"trust root {root.name}: storeType must be ca or signingAuthority, not {root.store_type!r}"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class NotationPolicy:
    """The single trust policy Connaisseur v3 generates for one image and rule."""

    registry_scopes: tuple[str, ...]
    trust_stores: tuple[str, ...]
    level: VerificationLevel = VerificationLevel.STRICT
    verify_timestamp: VerifyTimestamp = VerifyTimestamp.ALWAYS
    trusted_identities: tuple[str, ...] = ("*",)

    @classmethod
    def build(
        cls, repository: str, options: RuleOptions, selected: Sequence[TrustRoot]
    ) -> NotationPolicy:
        """The policy for ``repository`` (registry/path) under a rule's ``with`` options and
        the trust roots it selects.

        Raises:
            VerificationError: unknown ``verificationLevel`` / ``verifyTimestamp`` values.
        """
        try:
            level = VerificationLevel(options.verification_level or "strict")
            verify_timestamp = VerifyTimestamp(options.verify_timestamp or "always")
        except ValueError as e:
            raise VerificationError(str(e), category=Category.CONFIG_INVALID) from e
        stores = [f"{store_type_of(r).value}:{r.name}" for r in selected]
        stores += [f"tsa:{r.name}" for r in selected if r.ts_cert]
        return cls(
            registry_scopes=(repository,),
            trust_stores=tuple(stores),
            level=level,
            verify_timestamp=verify_timestamp,
        )

    def names(self, store_type: StoreType) -> tuple[str, ...]:
        prefix = f"{store_type.value}:"
        return tuple(s[len(prefix) :] for s in self.trust_stores if s.startswith(prefix))


def chain_thumbprints(store: NotationTrustStore, policy: NotationPolicy) -> frozenset[str]:
    """SHA-256 fingerprints (lower-case hex) of the selected signing roots' certificates."""
    return frozenset(
        hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
        for kind in (StoreType.CA, StoreType.SIGNING_AUTHORITY)
        for name in policy.names(kind)
        for cert in store.certificates(kind, name)
    )
