"""Notary v1 (Docker Content Trust) verification: a TUF trusted-metadata state machine.

:class:`TrustedRepository` is fed the served bytes in TUF order — root, timestamp, snapshot,
targets, delegations — and raises on the first violation (the shape of python-tuf's
``TrustedMetadataSet``). :func:`verify_notary_image` runs the whole procedure for one image and
returns the trusted digest. Differences from Connaisseur v3 (D4,
docs/decisions/0004-notary-v1-strictness.md): the root role's own threshold, delegation
thresholds and delegation paths are enforced, and a required delegation that is missing is a
denial, never a fall-back to ``targets``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connaisseur.domain.errors import Category, TrustRootError, VerificationError
from connaisseur.domain.trust import PublicKey, TrustRoot
from connaisseur.domain.tuf import (
    Metadata,
    RoleKeys,
    check_expiry,
    check_hashes,
    key_id,
    malformed_metadata,
    parse_keys,
    signature_matches,
)

ROOT, TARGETS, SNAPSHOT, TIMESTAMP = "root", "targets", "snapshot", "timestamp"
BASE_ROLES = (ROOT, TIMESTAMP, SNAPSHOT, TARGETS)
RELEASES = "targets/releases"

_TYPES = {ROOT: "Root", TIMESTAMP: "Timestamp", SNAPSHOT: "Snapshot", TARGETS: "Targets"}


# --- pinned trust-root keys -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedKey:
    """A trust root's public key with its Notary algorithm label and TUF key id."""

    name: str
    alg: str
    key_id: str
    key: PublicKey = field(repr=False, compare=False)


def pinned_key(root: TrustRoot) -> PinnedKey:
    """A trust root's parsed public key with its Notary label (``ecdsa``, ``rsa`` or ``unknown``).

    Raises:
        TrustRootError: invalid_key when the root has no key (a certificate or keyless root).
    """
    if root.key is None:
        raise TrustRootError(f"trust root {root.name} has no key", category=Category.INVALID_KEY)
    key = root.key.key
    alg = (
        "ecdsa"
        if isinstance(key, ec.EllipticCurvePublicKey)
        else "rsa"
        if isinstance(key, rsa.RSAPublicKey)
        else "unknown"
    )
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = key_id(alg, base64.b64encode(der).decode())
    return PinnedKey(name=root.name, alg=alg, key_id=kid, key=key)


def pinned_keys(roots: Sequence[TrustRoot]) -> tuple[PinnedKey, ...]:
    """The pinned keys of the selected trust roots (see :func:`pinned_key`).

    Raises:
        TrustRootError: invalid_key, or trust_root_not_found when ``roots`` is empty.
    """
    if not roots:
        raise TrustRootError("no trust roots selected", category=Category.TRUST_ROOT_NOT_FOUND)
    return tuple(pinned_key(r) for r in roots)


def delegation_role_name(name: str) -> str:
    """A rule's delegation name as a role: ``releases`` → ``targets/releases``."""
    return name if name.startswith("targets/") else f"targets/{name}"


def roles_to_fetch(delegations: Sequence[str]) -> tuple[str, ...]:
    """Every role a verification may read, so that one concurrent round trip fetches them all.

    Without required delegations ``targets/releases`` is fetched speculatively: whether it is
    used is only known once snapshot is verified, and asking now saves a round trip.
    """
    wanted = [delegation_role_name(d) for d in delegations] or [RELEASES]
    return BASE_ROLES + tuple(dict.fromkeys(wanted))


# --- the state machine ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Delegation:
    """A verified delegation role: its keys/threshold, path restrictions and signed targets."""

    name: str
    envelope: Metadata
    paths: tuple[str, ...] | None
    path_hash_prefixes: tuple[str, ...] | None
    signers: tuple[str, ...]

    def trusted_for(self, target: str) -> bool:
        """Notary semantics: ``paths`` are prefixes (``""`` = all); else hash prefixes."""
        if self.paths is not None:
            return any(target.startswith(p) for p in self.paths)
        if self.path_hash_prefixes is not None:
            digest = hashlib.sha256(target.encode()).hexdigest()
            return any(digest.startswith(p) for p in self.path_hash_prefixes)
        return False


class TrustedRepository:
    """Verified Notary metadata of one GUN, built up root → timestamp → snapshot → targets.

    ``known_versions`` are versions seen in earlier verifications of the same GUN: a lower
    version now is a rollback. Every ``update_*`` raises on the first violation.
    """

    def __init__(
        self,
        root: bytes,
        pinned: Sequence[PinnedKey],
        now: datetime,
        known_versions: Mapping[str, int] | None = None,
    ) -> None:
        """Verify root.json against the pinned keys and its own root role (steps R1-R4).

        Raises:
            VerificationError: malformed_trust_data, signature_invalid, rollback, expired.
        """
        self.now = now
        self.known_versions = dict(known_versions or {})
        self.root = Metadata.parse(ROOT, root, _TYPES[ROOT])
        self.timestamp: Metadata | None = None
        self.snapshot: Metadata | None = None
        self.targets: Metadata | None = None
        self.delegations: dict[str, Delegation] = {}
        self._keys = parse_keys(ROOT, self.root.signed.get("keys"))
        roles = self.root.signed.get("roles")
        if not isinstance(roles, Mapping):
            raise malformed_metadata(ROOT, "no roles")
        self._roles = {r: RoleKeys.build(r, roles.get(r), self._keys, ROOT) for r in BASE_ROLES}
        # R1: every pinned key verified at least one root signature.
        _check_pinned(self.root, pinned)
        # R2 (D4): the root role's own threshold, with the keys root.json lists for it.
        self.signers = {ROOT: self._roles[ROOT].verify(self.root)}
        # R3: no rollback below a version seen before; R4: not expired.
        self._check_version(self.root)
        check_expiry(self.root, now)

    def update_timestamp(self, raw: bytes) -> None:
        """Verify timestamp.json: signatures, version, expiry.

        Raises:
            VerificationError: malformed_trust_data, signature_invalid, rollback, expired.
        """
        ts = Metadata.parse(TIMESTAMP, raw, _TYPES[TIMESTAMP])
        self.signers[TIMESTAMP] = self._roles[TIMESTAMP].verify(ts)
        self._check_version(ts)
        check_expiry(ts, self.now)
        self.timestamp = ts

    def update_snapshot(self, raw: bytes) -> None:
        """Verify snapshot.json: signatures, version, expiry, then timestamp's hashes of it.

        Hashes come last so that a tampered file reports its bad signature, as Connaisseur v3
        does; the order changes only the category, every check still runs before trust. Root's
        served bytes must also match snapshot's hashes of root (as Notary does).

        Raises:
            VerificationError: checksum_mismatch, malformed_trust_data, signature_invalid,
                rollback, expired.
        """
        entry = _meta(_need(self.timestamp, TIMESTAMP), SNAPSHOT)
        snap = Metadata.parse(SNAPSHOT, raw, _TYPES[SNAPSHOT])
        self.signers[SNAPSHOT] = self._roles[SNAPSHOT].verify(snap)
        _check_listed_version(snap, entry, TIMESTAMP)
        self._check_version(snap)
        check_expiry(snap, self.now)
        check_hashes(SNAPSHOT, raw, entry, TIMESTAMP)
        check_hashes(ROOT, self.root.raw, _meta(snap, ROOT), SNAPSHOT)
        self.snapshot = snap

    def update_targets(self, raw: bytes) -> None:
        """Verify targets.json: signatures, version, expiry, then snapshot's hashes of it.

        Raises:
            VerificationError: checksum_mismatch, malformed_trust_data, signature_invalid,
                rollback, expired.
        """
        targets = self._verified_targets(TARGETS, raw, self._roles[TARGETS])
        self.signers[TARGETS] = self._roles[TARGETS].verify(targets)
        self.targets = targets

    def declared_delegations(self) -> Mapping[str, Any]:
        """Delegation roles declared by the top-level targets, by name."""
        block = _need(self.targets, TARGETS).signed.get("delegations") or {}
        roles = block.get("roles") if isinstance(block, Mapping) else None
        if roles is None:
            return {}
        if not isinstance(roles, list):
            raise malformed_metadata(TARGETS, "delegations.roles is not a list")
        return {str(r.get("name")): r for r in roles if isinstance(r, Mapping)}

    def in_snapshot(self, role: str) -> bool:
        """True when snapshot lists metadata for ``role``."""
        meta = _need(self.snapshot, SNAPSHOT).signed.get("meta")
        return isinstance(meta, Mapping) and role in meta

    def update_delegation(self, role: str, raw: bytes | None) -> Delegation:
        """Verify a delegation declared by targets (D4: its keys, threshold and paths).

        Raises:
            VerificationError: delegation_not_found (not declared, not in snapshot, not
                served), checksum_mismatch, malformed_trust_data, signature_invalid, rollback,
                expired.
        """
        declared = self.declared_delegations().get(role)
        if declared is None:
            raise _not_found(role, "is not declared in targets")
        if raw is None or not self.in_snapshot(role):
            raise _not_found(role, "has no published metadata")
        block = _need(self.targets, TARGETS).signed.get("delegations") or {}
        keys = parse_keys(TARGETS, block.get("keys", {}))
        role_keys = RoleKeys.build(role, declared, keys, TARGETS)
        envelope = self._verified_targets(role, raw, role_keys)
        delegation = Delegation(
            name=role,
            envelope=envelope,
            paths=_string_list(declared.get("paths"), role),
            path_hash_prefixes=_string_list(declared.get("path_hash_prefixes"), role),
            signers=role_keys.verify(envelope),
        )
        self.delegations[role] = delegation
        return delegation

    def versions(self) -> dict[str, int]:
        """The versions verified so far, to detect rollback next time."""
        envelopes = [self.root, self.timestamp, self.snapshot, self.targets]
        envelopes += [d.envelope for d in self.delegations.values()]
        return {e.role: e.version for e in envelopes if e is not None}

    def _verified_targets(self, role: str, raw: bytes, keys: RoleKeys) -> Metadata:
        entry = _meta(_need(self.snapshot, SNAPSHOT), role)
        envelope = Metadata.parse(role, raw, "Targets")
        keys.verify(envelope)
        _check_listed_version(envelope, entry, SNAPSHOT)
        self._check_version(envelope)
        check_expiry(envelope, self.now)
        check_hashes(role, raw, entry, SNAPSHOT)
        return envelope

    def _check_version(self, envelope: Metadata) -> None:
        seen = self.known_versions.get(envelope.role)
        if seen is not None and envelope.version < seen:
            raise VerificationError(
                f"{envelope.role} version {envelope.version} is older than version {seen} "
                "seen before (rollback)",
                category=Category.ROLLBACK,
            )


def _need(envelope: Metadata | None, role: str) -> Metadata:
    """The verified ``role``; the state machine must be fed in TUF order."""
    if envelope is None:
        raise RuntimeError(f"{role} must be verified first")
    return envelope


def _not_found(role: str, why: str) -> VerificationError:
    return VerificationError(
        f"required delegation {role} {why}", category=Category.DELEGATION_NOT_FOUND
    )


def _check_pinned(root: Metadata, pinned: Sequence[PinnedKey]) -> None:
    if not root.signatures:
        raise VerificationError("root has no signatures", category=Category.SIGNATURE_INVALID)
    message = root.message
    for key in pinned:
        # Key ids in signatures are ignored for pinned keys: every signature is tried.
        if not any(signature_matches(key.key, s.method, s.sig, message) for s in root.signatures):
            raise VerificationError(
                f"root is not signed by pinned key {key.name} ({key.key_id[:12]})",
                category=Category.SIGNATURE_INVALID,
            )


def _meta(envelope: Metadata, role: str) -> Any:
    meta = envelope.signed.get("meta")
    entry = meta.get(role) if isinstance(meta, Mapping) else None
    if entry is None:
        raise VerificationError(
            f"{envelope.role} lists no metadata for {role}", category=Category.CHECKSUM_MISMATCH
        )
    return entry


def _check_listed_version(envelope: Metadata, entry: Any, listed_by: str) -> None:
    listed = entry.get("version") if isinstance(entry, Mapping) else None
    if isinstance(listed, int) and listed != envelope.version:
        raise VerificationError(
            f"{listed_by} lists {envelope.role} version {listed}, served {envelope.version}",
            category=Category.CHECKSUM_MISMATCH,
        )


def _string_list(value: Any, role: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed_metadata(TARGETS, f"paths of {role} are not a list of strings")
    return tuple(value)


# --- target selection (D4) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NotaryEvidence:
    """What a verification established: the digest, which roles vouched, the versions seen."""

    digest: str
    roles: tuple[str, ...]
    versions: Mapping[str, int]


def target_digest(targets: Mapping[str, Any], name: str, owner: str) -> str | None:
    """``sha256:<hex>`` of target ``name``, or ``None`` when it is not listed.

    Raises:
        VerificationError: malformed_trust_data when the target has no usable sha256.
    """
    entry = targets.get(name)
    if entry is None:
        return None
    hashes = entry.get("hashes") if isinstance(entry, Mapping) else None
    value = hashes.get("sha256") if isinstance(hashes, Mapping) else None
    try:
        raw = base64.b64decode(str(value), validate=True)
    except ValueError as e:  # binascii.Error, or text that is not ASCII
        raise malformed_metadata(owner, f"target {name} has no valid sha256") from e
    if value is None or len(raw) != hashlib.sha256().digest_size:
        raise malformed_metadata(owner, f"target {name} has no valid sha256")
    return "sha256:" + raw.hex()


def find_digest(
    targets: Mapping[str, Any], owner: str, tag: str, digest: str, trusted: Any = None
) -> str:
    """The digest ``owner`` signed for the reference (tag, digest, or both).

    ``trusted(name) -> bool`` restricts a delegation to its paths (D4).

    Raises:
        VerificationError: reference_not_found, digest_mismatch, malformed_trust_data.
    """
    if not isinstance(targets, Mapping):
        raise malformed_metadata(owner, "targets is not an object")
    allowed = {n: t for n, t in targets.items() if trusted is None or trusted(n)}
    if tag:
        found = target_digest(allowed, tag, owner)
        if found is None:
            outside = " within its paths" if tag in targets else ""
            raise VerificationError(
                f"tag {tag!r} is not signed by {owner}{outside}",
                category=Category.REFERENCE_NOT_FOUND,
            )
        if digest and found != digest:
            raise VerificationError(
                f"tag {tag!r} is signed for {found}, not for the given digest {digest}",
                category=Category.DIGEST_MISMATCH,
            )
        return found
    for name in allowed:
        if target_digest(allowed, name, owner) == digest:
            return digest
    raise VerificationError(
        f"digest {digest} is not signed by {owner}", category=Category.REFERENCE_NOT_FOUND
    )


def _roles_to_search(repo: TrustedRepository, required: Sequence[str]) -> tuple[str, ...]:
    if required:
        if not repo.declared_delegations():
            raise VerificationError(
                "the rule requires delegations but the repository declares none",
                category=Category.NO_DELEGATIONS,
            )
        return tuple(dict.fromkeys(delegation_role_name(d) for d in required))
    # Docker CLI rule (D4): targets/releases when published, else the top-level targets.
    return (RELEASES,) if repo.in_snapshot(RELEASES) else (TARGETS,)


def verify_notary_image(
    files: Mapping[str, bytes | None],
    pinned: Sequence[PinnedKey],
    now: datetime,
    *,
    tag: str,
    digest: str,
    delegations: Sequence[str] = (),
    known_versions: Mapping[str, int] | None = None,
) -> NotaryEvidence:
    """Verify a GUN's served trust data and return the digest signed for ``tag``/``digest``.

    Steps:
      1. base roles present — a missing root means the image has no trust data;
      2. root (pinned keys AND own threshold, D4), timestamp, snapshot, targets;
      3. roles to search: required delegations, else targets/releases if published, else
         targets (D4);
      4. verify each delegation (keys, threshold, hashes, expiry) (D4);
      5. look the reference up in each role, within delegation paths (D4);
      6. every role must yield the same digest.

    D4 is docs/decisions/0004-notary-v1-strictness.md.

    Raises:
        VerificationError: no_trust_data, malformed_trust_data, signature_invalid, expired,
            checksum_mismatch, rollback, no_delegations, delegation_not_found,
            reference_not_found, digest_mismatch, ambiguous_digest.
    """
    # Step 1: base roles present
    base = {role: files.get(role) for role in BASE_ROLES}
    missing = [role for role, raw in base.items() if raw is None]
    if missing:
        raise VerificationError(
            f"the Notary server has no trust data for this image ({', '.join(missing)} missing)",
            category=Category.NO_TRUST_DATA,
        )
    # Step 2: the base roles' chain (D4)
    repo = TrustedRepository(base[ROOT] or b"", pinned, now, known_versions)
    repo.update_timestamp(base[TIMESTAMP] or b"")
    repo.update_snapshot(base[SNAPSHOT] or b"")
    repo.update_targets(base[TARGETS] or b"")
    # Step 3: roles to search (D4)
    search = _roles_to_search(repo, delegations)
    # Steps 4 and 5: verify each delegation, look the reference up (D4)
    digests: dict[str, str] = {}
    for role in search:
        if role == TARGETS:
            targets = _need(repo.targets, TARGETS).signed.get("targets", {})
            digests[role] = find_digest(targets, role, tag, digest)
            continue
        delegation = repo.update_delegation(role, files.get(role))
        digests[role] = find_digest(
            delegation.envelope.signed.get("targets", {}),
            role,
            tag,
            digest,
            delegation.trusted_for,
        )
    # Step 6: one digest
    distinct = sorted(set(digests.values()))
    if len(distinct) != 1:
        raise VerificationError(
            f"the roles {', '.join(search)} signed {len(distinct)} different digests for "
            f"{tag or digest}",
            category=Category.AMBIGUOUS_DIGEST,
        )
    return NotaryEvidence(digest=distinct[0], roles=search, versions=repo.versions())
