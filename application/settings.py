"""Frozen settings the use cases and adapters run with; ``config/`` builds them at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connaisseur.domain.policy import Policy
from connaisseur.domain.sigstore import TransparencyMaterial
from connaisseur.domain.trust import Certificates, PemPublicKey, TrustRoot

#: The key of credentials that name no registry (a ``secret.yaml`` without ``registry``).
EMPTY_AUTH = "EMPTYAUTH"
DEFAULT_REKOR = "https://rekor.sigstore.dev"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """Username and password for a registry or Notary server."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """Resolved ``auth`` block: credentials keyed by normalised ``registry[/repo]``."""

    secret_name: str | None = None
    use_keychain: bool = False
    credentials: tuple[tuple[str, Credentials], ...] = field(default=(), repr=False)

    def lookup(self, registry: str, repository: str = "") -> Credentials | None:
        """Longest-prefix match of ``registry/repository`` among the keys, as Connaisseur v3 looks
        credentials up."""
        target = f"{registry}/{repository}" if repository else registry
        best: tuple[int, Credentials] | None = None
        for key, creds in self.credentials:
            if key == EMPTY_AUTH:
                continue
            if (target == key or target.startswith(key + "/")) and (
                best is None or len(key) > best[0]
            ):
                best = (len(key), creds)
        return best[1] if best else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransparencySettings:
    """Cosign ``host`` block: Rekor base URL, a private Sigstore's trusted root in place of the
    public-good one, and overrides of single keys and certificates.

    ``trusted_root`` is identified by ``trusted_root_digest`` (the SHA-256 of the document as
    configured), which is what cache keys see.
    """

    rekor: str = DEFAULT_REKOR
    rekor_pubkey: PemPublicKey | None = None
    fulcio_cert: Certificates | None = None
    ct_log_pubkey: PemPublicKey | None = None
    trusted_root: TransparencyMaterial | None = field(default=None, repr=False, compare=False)
    trusted_root_digest: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatorSettings:
    """One entry of ``validators``, parsed and checked by the configuration loader.

    ``host`` is the Notary base URL of a ``notaryv1`` validator; ``transparency`` is the
    ``host`` block of a ``cosign`` validator; ``cert`` is the only CA trusted for the upstream;
    ``signature_repository`` (``registry/repository``, cosign and Notation) is where signatures
    live when not beside the image (docs/decisions/0051-signature-repository.md).
    """

    name: str
    type: str
    approve: bool = False
    host: str = ""
    transparency: TransparencySettings = field(default_factory=TransparencySettings)
    cert: Certificates | None = None
    auth: AuthSettings = field(default_factory=AuthSettings)
    trust_roots: tuple[TrustRoot, ...] = ()
    signature_repository: str = ""

    def fingerprint(self) -> tuple[Any, ...]:
        """What identifies this validator's behaviour (cache keys, D5); secrets excluded."""
        return (
            self.name,
            self.type,
            self.approve,
            self.host,
            self.transparency,
            self.cert,
            self.auth.secret_name,
            self.trust_roots,
            self.signature_repository,
        )


class ResourceValidationMode(StrEnum):
    """Which admitted objects are validated: all workloads, or only Pods."""

    ALL = "all"
    PODS_ONLY = "podsOnly"


class NamespacedValidationMode(StrEnum):
    """What a namespace label decides: skip validation there, or validate only there."""

    IGNORE = "ignore"
    VALIDATE = "validate"


@dataclass(frozen=True, slots=True, kw_only=True)
class Features:
    """``application.features`` with Connaisseur's defaults, env overrides applied."""

    automatic_child_approval: bool = True
    automatic_unchanged_approval: bool = False
    detection_mode: bool = False
    resource_validation_mode: ResourceValidationMode = ResourceValidationMode.ALL
    namespaced_validation: NamespacedValidationMode | None = None
    cache_expiry_seconds: int = 30
    cache_errors: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on every input and every wait (D6, D8)."""

    max_body_bytes: int = 3 * 1024 * 1024
    max_json_depth: int = 100
    max_document_bytes: int = 4 * 1024 * 1024
    deadline_cap_seconds: float = 29.0
    deadline_margin_seconds: float = 1.0
    #: containers (all lists together) an object may have; more is denied unverified, before
    #: any per-image work, so one request cannot buy unbounded work (docs/threat-model.md)
    max_containers_per_object: int = 256
    #: validator runs in flight at once: per process (cache hits and coalesced waiters do not
    #: count) and per request
    max_concurrent_verifications: int = 32
    max_concurrent_verifications_per_request: int = 8
    #: how long an UPDATE with unchanged images waits for the verification that only decides
    #: its warning (docs/decisions/0011-lifecycle-updates.md)
    unchanged_check_seconds: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Infrastructure:
    """Where the process finds its surroundings (Connaisseur's paths), read from the env once."""

    redis_host: str | None = None
    redis_port: int = 6379
    redis_password: str | None = field(default=None, repr=False)
    redis_ca_file: str = "/app/redis-certs/tls.crt"
    redis_tls: bool = True
    cache_hmac_key: str | None = field(default=None, repr=False)
    cache_hmac_key_file: str = "/app/cache-key/hmac.key"
    cache_max_entries: int = 10_000
    kube_host: str | None = None
    kube_port: str = "443"
    kube_token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105
    kube_ca_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    pod_name: str = ""
    alert_templates_dir: str = "/app/alerts/templates"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the application is configured with."""

    validators: tuple[ValidatorSettings, ...]
    policy: Policy
    features: Features = field(default_factory=Features)
    alerting: Any = None
    limits: Limits = field(default_factory=Limits)
    infra: Infrastructure = field(default_factory=Infrastructure)
    log_level: str = "info"
    log_format: str = "json"

    def validator(self, name: str) -> ValidatorSettings | None:
        """The first validator called ``name`` (empty → ``default``)."""
        name = name or "default"
        return next((v for v in self.validators if v.name == name), None)
