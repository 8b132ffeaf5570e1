"""A Notary v1 simulator: signs TUF metadata on demand with real keys, for table-driven tests.

Keys are generated once per test session. A :class:`NotaryV1Simulator` describes one GUN (keys,
thresholds, versions, expiries, targets, delegations); :meth:`publish` returns the served bytes
of every role exactly as a Notary server would hold them (compact JSON, raw ``r‖s`` ECDSA
signatures, base64 hashes over the exact bytes). Tests then tamper with that state or with
the bytes to play attacks.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from connaisseur.domain.tuf import canonical_json, key_id
from tests.support.tls import certificate, certificate_pem

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
FAR_FUTURE = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)


@cache
def session_key(name: str, kind: str = "ecdsa") -> PrivateKey:
    """A private key generated once per session for ``name`` (ecdsa, rsa or ed25519)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class SimKey:
    """A signing key and how it appears in metadata (``ecdsa``, ``ecdsa-x509``, ``rsa``, …)."""

    private: PrivateKey
    keytype: str
    public_b64: str

    @property
    def key_id(self) -> str:
        return key_id(self.keytype, self.public_b64)

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, message: bytes) -> dict[str, str]:
        key = self.private
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
            sig, method = r.to_bytes(32, "big") + s.to_bytes(32, "big"), "ecdsa"
        elif isinstance(key, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            sig, method = key.sign(message, pss, hashes.SHA256()), "rsapss"
        else:
            sig, method = key.sign(message), "eddsa"
        return {"keyid": self.key_id, "method": method, "sig": base64.b64encode(sig).decode()}


def sim_key(name: str, kind: str = "ecdsa", *, x509_cert: bool = False) -> SimKey:
    """The session key ``name`` as a TUF key (an ``ecdsa-x509`` certificate when asked)."""
    private = session_key(name, kind)
    public = private.public_key()
    if x509_cert:
        now = dt.datetime.now(dt.UTC)
        cert = certificate(
            name,
            private,
            not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=3650),
            serial=1,
        )
        pem = certificate_pem(cert)
        return SimKey(private, f"{kind}-x509", base64.b64encode(pem).decode())
    if kind == "ed25519":
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return SimKey(private, "ed25519", base64.b64encode(raw).decode())
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SimKey(private, kind, base64.b64encode(der).decode())


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class SimRole:
    """Who may sign a role, who actually signs it, its threshold, version and expiry."""

    keys: list[SimKey]
    threshold: int = 1
    version: int = 1
    expires: dt.datetime = FAR_FUTURE
    signers: list[SimKey] | None = None  # None: every key of the role signs

    def signing_keys(self) -> list[SimKey]:
        return self.keys if self.signers is None else self.signers


@dataclass
class SimDelegation(SimRole):
    """A delegation role declared in targets, with its path prefixes and signed targets."""

    paths: list[str] = field(default_factory=lambda: [""])
    targets: dict[str, str] = field(default_factory=dict)


@dataclass
class NotaryV1Simulator:
    """One GUN's trust data; change the fields, then :meth:`publish`."""

    gun: str = "docker.io/library/app"
    root: SimRole = field(default_factory=lambda: SimRole([sim_key("root", x509_cert=True)]))
    targets: SimRole = field(default_factory=lambda: SimRole([sim_key("targets")]))
    snapshot: SimRole = field(default_factory=lambda: SimRole([sim_key("snapshot")]))
    timestamp: SimRole = field(default_factory=lambda: SimRole([sim_key("timestamp")]))
    signed_targets: dict[str, str] = field(default_factory=dict)
    delegations: dict[str, SimDelegation] = field(default_factory=dict)
    unlisted_in_snapshot: set[str] = field(default_factory=set)

    @property
    def pinned_pem(self) -> str:
        """The PEM public key a validator pins for this repository (the first root key)."""
        return self.root.keys[0].public_pem

    def sign_tag(self, tag: str, digest: str, role: str = "targets") -> None:
        if role == "targets":
            self.signed_targets[tag] = digest
        else:
            self.delegations[role].targets[tag] = digest

    def delegate(self, name: str, *keys: SimKey, paths: list[str] | None = None) -> SimDelegation:
        delegation = SimDelegation(list(keys), paths=[""] if paths is None else paths)
        self.delegations[name] = delegation
        return delegation

    def bump(self, *roles: str) -> None:
        """Increase the version of each named role (a new publication)."""
        for role in roles:
            self._role(role).version += 1

    def publish(self) -> dict[str, bytes]:
        """Served bytes of every role: root, targets, delegations, snapshot, timestamp."""
        files = {"root": self._envelope(self.root, self._root_signed())}
        files["targets"] = self._envelope(self.targets, self._targets_signed())
        for name, d in self.delegations.items():
            files[name] = self._envelope(d, _targets_doc(d, d.targets, None))
        files["snapshot"] = self._envelope(self.snapshot, self._snapshot_signed(files))
        meta = {"snapshot": _meta_entry(files["snapshot"])}
        files["timestamp"] = self._envelope(
            self.timestamp, _signed("Timestamp", self.timestamp, meta=meta)
        )
        return files

    def served(self, files: Mapping[str, bytes]) -> dict[str, bytes]:
        """``files`` keyed by the URL paths a Notary server serves them under."""
        return {f"/v2/{self.gun}/_trust/tuf/{role}.json": raw for role, raw in files.items()}

    def _role(self, name: str) -> SimRole:
        if name in self.delegations:
            return self.delegations[name]
        role: SimRole = getattr(self, name)
        return role

    def _root_signed(self) -> dict[str, Any]:
        roles = {"root": self.root, "targets": self.targets}
        roles |= {"snapshot": self.snapshot, "timestamp": self.timestamp}
        keys = {k.key_id: _key_doc(k) for r in roles.values() for k in r.keys}
        role_docs = {
            n: {"keyids": [k.key_id for k in r.keys], "threshold": r.threshold}
            for n, r in roles.items()
        }
        return _signed("Root", self.root, keys=keys, roles=role_docs, consistent_snapshot=False)

    def _targets_signed(self) -> dict[str, Any]:
        return _targets_doc(self.targets, self.signed_targets, self.delegations)

    def _snapshot_signed(self, files: Mapping[str, bytes]) -> dict[str, Any]:
        meta = {
            role: _meta_entry(raw)
            for role, raw in files.items()
            if role not in ("snapshot", "timestamp") and role not in self.unlisted_in_snapshot
        }
        return _signed("Snapshot", self.snapshot, meta=meta)

    @staticmethod
    def _envelope(role: SimRole, signed: dict[str, Any]) -> bytes:
        message = canonical_json(signed)
        sigs = [k.sign(message) for k in role.signing_keys()]
        return json.dumps({"signed": signed, "signatures": sigs}, separators=(",", ":")).encode()


def _signed(kind: str, role: SimRole, **body: Any) -> dict[str, Any]:
    expires = role.expires.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"_type": kind, "expires": expires, "version": role.version, **copy.deepcopy(body)}


def _key_doc(key: SimKey) -> dict[str, Any]:
    return {"keytype": key.keytype, "keyval": {"private": None, "public": key.public_b64}}


def _targets_doc(
    role: SimRole, targets: Mapping[str, str], delegations: Mapping[str, SimDelegation] | None
) -> dict[str, Any]:
    docs = {
        tag: {"hashes": {"sha256": _b64(bytes.fromhex(d.removeprefix("sha256:")))}, "length": 1}
        for tag, d in targets.items()
    }
    delegation_block: dict[str, Any] = {"keys": {}, "roles": []}
    for name, d in (delegations or {}).items():
        delegation_block["keys"] |= {k.key_id: _key_doc(k) for k in d.keys}
        delegation_block["roles"].append(
            {
                "name": name,
                "keyids": [k.key_id for k in d.keys],
                "threshold": d.threshold,
                "paths": d.paths,
            }
        )
    return _signed("Targets", role, targets=docs, delegations=delegation_block)


def _meta_entry(raw: bytes) -> dict[str, Any]:
    return {
        "hashes": {
            "sha256": _b64(hashlib.sha256(raw).digest()),
            "sha512": _b64(hashlib.sha512(raw).digest()),
        },
        "length": len(raw),
    }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
