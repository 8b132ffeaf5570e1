"""A ``validators`` entry → :class:`ValidatorSettings`, every part parsed and checked once.

The one place a validator's configuration is checked (docs/decisions/0013-strict-configuration.md):
its schema, base URLs (Notary host, Rekor), keys and key references, certificates, keyless
identities, which trust anchor each validator type reads from a trust root, and its ``auth``
block. The settings it returns hold parsed values (keys, certificates, identities, URLs);
validators take them as given and never check them again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from connaisseur.application.settings import TransparencySettings, ValidatorSettings
from connaisseur.config import schema
from connaisseur.config.auth import load_auth
from connaisseur.config.trusted_root import load_trusted_root
from connaisseur.config.url_checks import base_url
from connaisseur.domain.attestations import AttestationRequirement, Condition, parse_field_path
from connaisseur.domain.errors import (
    Category,
    ConfigError,
    InvalidReferenceError,
    TrustRootError,
)
from connaisseur.domain.image import split_repository
from connaisseur.domain.trust import (
    Certificates,
    KeylessIdentity,
    KubernetesKeyRef,
    PemPublicKey,
    TrustRoot,
    duplicate_names,
)

DEFAULT_NOTARY_HOST = "https://notary.docker.io"
#: Key references this build cannot resolve; ``k8s://<namespace>/<secret>`` is the only one it
#: can (cosign validators only).
UNSUPPORTED_KEY_SCHEMES = (
    "awskms://",
    "gcpkms://",
    "azurekms://",
    "hashivault://",
    "gitlab://",
    "pkcs11:",
)
_K8S_REF = re.compile(r"k8s://([a-z0-9][a-z0-9.-]{0,252})/([a-z0-9][a-z0-9.-]{0,252})")


def load_validator(entry: Any, secrets_dir: Path | None, path: str) -> ValidatorSettings:
    """One ``validators`` entry (``path`` is where it sits, e.g. ``validators[0]``).

    ``secrets_dir=None`` leaves ``auth.secretName`` unresolved (commands without network).

    Raises:
        ConfigError: every problem of the entry, each with its path.
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{path}: must be a mapping")
    vtype = entry.get("type")
    cls = schema.VALIDATOR_SCHEMAS.get(vtype) if isinstance(vtype, str) else None
    if cls is None:
        what = "missing" if vtype is None else f"unsupported type {vtype!r}"
        raise ConfigError(f"{path}.type: {what} (one of {', '.join(schema.VALIDATOR_TYPES)})")
    problems: list[str] = []
    # Even after schema errors, check what did load (keys, hosts, certificates), so one pass
    # of check-config reports every problem.
    data = schema.load(cls(), entry, path, problems)
    settings = _validator(data, str(vtype), secrets_dir, path, problems)
    if problems or settings is None:
        raise ConfigError(f"{path} has {len(problems)} error(s)", tuple(problems))
    return settings


def _validator(
    data: Mapping[str, Any], vtype: str, secrets_dir: Path | None, path: str, problems: list[str]
) -> ValidatorSettings | None:
    """Parse what the schema let through; every failing part is added to ``problems``."""
    before = len(problems)
    checked = schema.Collected(problems)

    roots = [
        checked(parse_trust_root, r, vtype, f"{path}.trustRoots[{j}]")
        for j, r in enumerate(data.get("trustRoots") or [])
        if isinstance(r, Mapping) and "name" in r
    ]
    twice = duplicate_names([r for r in roots if r is not None])
    if twice:
        problems.append(
            f"{path}.trustRoots: names used more than once: {', '.join(twice)} "
            "(each trust root is one signer)"
        )
    raw_host = data.get("host")
    host = checked(_notary_host, raw_host, f"{path}.host") if vtype == "notaryv1" else ""
    transparency = checked(_transparency, raw_host, f"{path}.host") if vtype == "cosign" else None
    cert = checked(parse_certificates, data.get("cert"), f"{path}.cert")
    auth = checked(load_auth, data.get("auth"), secrets_dir, f"{path}.auth", vtype, host)
    where = data.get("signatureRepository")
    signatures = checked(parse_repository, where, f"{path}.signatureRepository") if where else ""
    if transparency is not None and transparency.trusted_root is not None:
        checked(_keyless_needs_authorities, transparency, roots, path)
    if len(problems) != before or "name" not in data or auth is None or host is None:
        return None
    return ValidatorSettings(
        name=data["name"],
        type=vtype,
        approve=bool(data.get("approve", False)),
        host=host,
        transparency=transparency or TransparencySettings(),
        cert=cert,
        auth=auth,
        trust_roots=tuple(r for r in roots if r is not None),
        signature_repository=signatures or "",
    )


def parse_repository(value: str, path: str) -> str:
    """A repository (``registry/repository``, no tag or digest), normalised as image
    references are: ``docker.io/sigs`` → ``index.docker.io/library/sigs``.

    Raises:
        ConfigError: not a repository.
    """
    try:
        name = split_repository(value)
    except InvalidReferenceError as e:
        raise ConfigError(
            f"{path}: {value[:120]!r} is not a repository (registry/repository, without tag or "
            f"digest): {e.message}"
        ) from e
    return f"{name.registry}/{name.repository}"


def _keyless_needs_authorities(
    transparency: TransparencySettings, roots: list[TrustRoot | None], path: str
) -> None:
    material = transparency.trusted_root
    if material is None or material.fulcio or not any(r and r.keyless for r in roots):
        return
    raise ConfigError(
        f"{path}.host.trustedRoot: lists no certificate authority, but a trust root is keyless"
    )


def parse_source(raw: Any, path: str, *, check_files: bool = True) -> Path | None:
    """The bundle directory a validator's ``source`` names, or ``None`` for its upstreams
    (docs/decisions/0055-offline-bundles.md). The directory must exist unless ``check_files``
    is false (commands that read no trust data, like ``explain``).

    Raises:
        ConfigError: the bundle directory does not exist or is not a directory.
    """
    if not isinstance(raw, Mapping) or raw.get("type") != "bundle" or not raw.get("path"):
        return None  # the schema reported anything else
    return bundle_directory(str(raw["path"]), f"{path}.path", check_files=check_files)


def bundle_directory(value: str, path: str, *, check_files: bool = True) -> Path:
    """An offline bundle directory, absolute.

    Raises:
        ConfigError: it does not exist or is not a directory.
    """
    directory = Path(value).absolute()
    if check_files and not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigError(f"{path}: bundle directory {directory} {what}")
    return directory


def parse_trust_root(raw: Mapping[str, Any], vtype: str, path: str) -> TrustRoot:
    """A trust root with the anchor its validator type reads, parsed.

    notaryv1 reads a PEM ``key``; cosign a PEM ``key`` or ``k8s://`` reference, else
    ``keyless`` (a key wins over keyless, as in Connaisseur v3); notation a ``cert`` (and an
    optional ``tsCert`` and ``storeType``).

    Raises:
        ConfigError: the anchor the type needs is missing, a key reference is not supported,
            a keyless identity is incomplete, a certificate does not parse.
        TrustRootError: ``invalid_key``: a key is neither PEM nor a supported reference.
    """
    name = str(raw.get("name", ""))
    if "storeType" in raw and vtype != "notation":
        raise ConfigError(f"{path}.storeType: only notation trust roots have a store type")
    references = vtype == "cosign"
    key = parse_key(raw["key"], f"{path}.key", references=references) if raw.get("key") else None
    keyless = parse_keyless(raw["keyless"], f"{path}.keyless") if raw.get("keyless") else None
    root = TrustRoot(
        name=name,
        key=key if isinstance(key, PemPublicKey) else None,
        key_ref=key if isinstance(key, KubernetesKeyRef) else None,
        cert=parse_certificates(raw.get("cert"), f"{path}.cert"),
        ts_cert=parse_certificates(raw.get("tsCert"), f"{path}.tsCert"),
        keyless=None if key is not None else keyless,
        store_type=raw.get("storeType"),
    )
    _require_anchor(root, vtype, path)
    return root


def _require_anchor(root: TrustRoot, vtype: str, path: str) -> None:
    if vtype == "notaryv1" and root.key is None:
        raise ConfigError(f"{path}: no public key provided for trust root {root.name}")
    if vtype == "cosign" and root.key is None and root.key_ref is None and root.keyless is None:
        raise ConfigError(f"{path}: no public key or keyless configuration found")
    if vtype == "notation" and root.cert is None:
        raise ConfigError(f"{path}.cert: no certificate provided for trust root {root.name}")


def parse_key(text: str, path: str, *, references: bool) -> PemPublicKey | KubernetesKeyRef:
    """A PEM public key or, where ``references`` are allowed, ``k8s://<namespace>/<secret>``.

    Raises:
        ConfigError: a key reference of a kind this build does not support.
        TrustRootError: ``invalid_key``: neither a usable PEM public key nor a key reference.
    """
    if references and text.startswith("k8s://"):
        match = _K8S_REF.fullmatch(text)
        if match is None:
            raise TrustRootError(
                f"{path}: a Kubernetes key reference is k8s://<namespace>/<secret>",
                category=Category.INVALID_KEY,
            )
        return KubernetesKeyRef(namespace=match.group(1), name=match.group(2))
    return parse_public_key(text, path)


def parse_public_key(text: str, path: str) -> PemPublicKey:
    """A PEM public key (SPKI: ECDSA, RSA or Ed25519).

    Raises:
        ConfigError: a key reference of a kind this build does not support.
        TrustRootError: ``invalid_key``: not one usable PEM public key.
    """
    scheme = next((s for s in UNSUPPORTED_KEY_SCHEMES if text.startswith(s)), None)
    if scheme is not None:
        raise ConfigError(f"{path}: key reference {scheme} is not supported")
    try:
        return PemPublicKey.parse(text)
    except TrustRootError as e:
        raise TrustRootError(f"{path}: {e.message}", category=e.category) from e


def parse_keyless(raw: Mapping[str, Any], path: str) -> KeylessIdentity:
    """A keyless identity: exactly one of issuer/issuerRegex and of subject/subjectRegex, and
    regexes that compile.

    Raises:
        ConfigError: listing every incomplete pair and every regex that does not compile.
    """
    problems = []
    for plain, regex in (("issuer", "issuerRegex"), ("subject", "subjectRegex")):
        if bool(raw.get(plain)) == bool(raw.get(regex)):
            problems.append(f"{path}: exactly one of {plain} and {regex} must be set")
        elif raw.get(regex):
            try:
                re.compile(raw[regex])
            except re.error as e:
                problems.append(f"{path}.{regex}: invalid regular expression: {e}")
    if problems:
        raise ConfigError(problems[0], tuple(problems))
    return KeylessIdentity(
        issuer=raw.get("issuer"),
        subject=raw.get("subject"),
        issuer_regex=raw.get("issuerRegex"),
        subject_regex=raw.get("subjectRegex"),
    )


def parse_certificates(pem: str | None, path: str) -> Certificates | None:
    """PEM certificates, or ``None`` when not configured.

    Raises:
        ConfigError: not PEM certificates.
    """
    if pem is None:
        return None
    try:
        return Certificates.parse(pem)
    except TrustRootError as e:
        raise ConfigError(f"{path}: invalid certificate ({e.message})") from e


def _notary_host(host: str | None, path: str) -> str:
    return base_url(host or DEFAULT_NOTARY_HOST, path)


def _transparency(host: Mapping[str, Any] | None, path: str) -> TransparencySettings:
    host = host or {}
    rekor = host.get("rekor")
    custom = host.get("trustedRoot")
    root = load_trusted_root(custom, f"{path}.trustedRoot") if custom is not None else None
    rekor = rekor or (root.rekor_url if root else None)
    rekor_pubkey, ct_log_pubkey = (
        parse_public_key(host[field], f"{path}.{field}") if host.get(field) is not None else None
        for field in ("rekorPubkey", "ctLogPubkey")
    )
    material = TransparencySettings(
        rekor_pubkey=rekor_pubkey,
        fulcio_cert=parse_certificates(host.get("fulcioCert"), f"{path}.fulcioCert"),
        ct_log_pubkey=ct_log_pubkey,
        trusted_root=root.material if root else None,
        trusted_root_digest=root.digest if root else "",
    )
    if rekor is None:
        return material
    return replace(material, rekor=base_url(rekor, f"{path}.rekor"))


#: Rule options (``with``) only a validator of these types reads; elsewhere they are errors,
#: never silently ignored (a rule requiring attestations must not pass without them).
TYPED_RULE_OPTIONS = {"signatureFormat": ("cosign",), "attestations": ("cosign",)}


def rule_option_problems(options: Mapping[str, Any], vtype: str | None, path: str) -> list[str]:
    """The options of a rule that its validator's type does not read (``path``: the rule's
    ``with``; ``vtype`` ``None``: the validator does not exist, reported elsewhere)."""
    if vtype is None:
        return []
    return [
        f"{path}.{key}: only {' and '.join(types)} validators read {key}, not {vtype}"
        for key, types in TYPED_RULE_OPTIONS.items()
        if key in options and vtype not in types
    ]


def parse_attestations(
    raw: list[Mapping[str, Any]], path: str
) -> tuple[AttestationRequirement, ...]:
    """``with.attestations`` as the schema let it through: field paths parsed, regular
    expressions compiled (docs/decisions/0042-attestation-conditions.md).

    Raises:
        ConfigError: every path that does not parse and every regex that does not compile.
    """
    problems: list[str] = []
    requirements = []
    for i, entry in enumerate(raw):
        conditions = []
        for j, condition in enumerate(entry.get("conditions") or []):
            where = f"{path}[{i}].conditions[{j}]"
            try:
                conditions.append(_condition(condition, where))
            except ConfigError as e:
                problems.extend(e.problems)
        requirements.append(
            AttestationRequirement(
                predicate_type=entry["predicateType"], conditions=tuple(conditions)
            )
        )
    if problems:
        raise ConfigError(problems[0], tuple(problems))
    return tuple(requirements)


def _condition(raw: Mapping[str, Any], path: str) -> Condition:
    try:
        keys = parse_field_path(raw["field"])
    except ValueError as e:
        raise ConfigError(f"{path}.field: {e}") from e
    matches = None
    if "matches" in raw:
        try:
            matches = re.compile(raw["matches"])
        except re.error as e:
            raise ConfigError(f"{path}.matches: invalid regular expression: {e}") from e
    one_of = raw.get("oneOf")
    return Condition(
        field=raw["field"],
        path=keys,
        equals=raw.get("equals"),
        has_equals="equals" in raw,
        matches=matches,
        one_of=tuple(one_of) if one_of is not None else None,
    )
