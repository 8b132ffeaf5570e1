"""The ``notaryv1`` validator: fetch a GUN's trust data through the Notary port, judge it in
``domain.notaryv1``, and return the trusted digest to pin (D4,
docs/decisions/0004-notary-v1-strictness.md).

Also the load-time checks of a ``notaryv1`` validator entry (host, trust roots, pinned keys,
``cert``) that the configuration loader calls, so a bad entry stops start-up.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from urllib.parse import urlsplit

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Clock, Endpoint, Notary
from connaisseur.application.settings import AuthSettings, ValidatorSettings
from connaisseur.domain.errors import Category, ConfigError, TrustRootError, VerificationError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.notaryv1 import pinned_key, pinned_keys, roles_to_fetch, verify_notary_image
from connaisseur.domain.policy import RuleOptions
from connaisseur.domain.trust import load_certificates, select_trust_roots
from connaisseur.domain.urls import SafeUrl
from connaisseur.domain.verdict import TrustedDigest

DEFAULT_NOTARY_HOST = "https://notary.docker.io"
_SCHEME = re.compile(r"(?i)^https?://")
_MAX_REMEMBERED_REPOSITORIES = 4096
# A DNS name or IP literal with an optional port: nothing that would need escaping.
_AUTHORITY = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$"
)


def notary_host(host: str | None) -> str:
    """The Notary base URL: empty → Docker Hub's Notary; no scheme → ``https://`` (as v3)."""
    if not host:
        return DEFAULT_NOTARY_HOST
    return host if _SCHEME.match(host) else f"https://{host}"


def host_problem(url: str) -> str | None:
    """Why ``url`` cannot be a Notary base URL, or ``None`` when it can."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "it cannot be parsed"
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme must be http or https"
    if not _AUTHORITY.match(parts.netloc):
        return "it names no valid host"
    if any(c.isspace() for c in url) or parts.query or parts.fragment:
        return "it is not a plain base URL"
    return None


def check_notaryv1_settings(settings: ValidatorSettings) -> None:
    """Load-time checks of a ``notaryv1`` validator entry; the loader adds the path.

    Raises:
        ConfigError: invalid host URL, no trust roots, unparsable ``cert``.
        TrustRootError: a trust root's key is not a usable PEM public key (invalid_key).
    """
    problem = host_problem(notary_host(settings.host))
    if problem is not None:
        raise ConfigError(f"invalid url for notary host of validator {settings.name}: {problem}")
    if not settings.trust_roots:
        raise ConfigError(f"no trust roots provided for validator {settings.name}")
    for root in settings.trust_roots:
        pinned_key(root)
    if settings.cert:
        try:
            load_certificates(settings.cert)
        except TrustRootError as e:
            raise ConfigError(f"invalid certificate for validator {settings.name}") from e


def notary_auth(auth: AuthSettings, host_url: str) -> AuthSettings:
    """A lone ``EMPTYAUTH`` entry (secret without ``registry``) is keyed to the host, as in
    Connaisseur v3."""
    if len(auth.credentials) == 1 and auth.credentials[0][0] == "EMPTYAUTH":
        host = urlsplit(host_url).netloc
        return AuthSettings(
            secret_name=auth.secret_name,
            use_keychain=auth.use_keychain,
            credentials=((host, auth.credentials[0][1]),),
        )
    return auth


class VersionMemory:
    """Highest metadata versions verified per (host, GUN), to refuse rollbacks (bounded LRU)."""

    def __init__(self, capacity: int = _MAX_REMEMBERED_REPOSITORIES) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str], dict[str, int]] = OrderedDict()

    def get(self, host: str, gun: str) -> Mapping[str, int]:
        return dict(self._seen.get((host, gun), {}))

    def remember(self, host: str, gun: str, versions: Mapping[str, int]) -> None:
        key = (host, gun)
        merged = self._seen.pop(key, {})
        for role, version in versions.items():
            merged[role] = max(version, merged.get(role, 0))
        self._seen[key] = merged
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


class NotaryV1Validator:
    """Validates images against Docker Content Trust data on a Notary v1 server."""

    type = "notaryv1"

    def __init__(self, settings: ValidatorSettings, notary: Notary, clock: Clock) -> None:
        self.name = settings.name
        self._host = notary_host(settings.host)
        self._host_problem = host_problem(self._host)
        self._roots = settings.trust_roots
        self._endpoint = Endpoint(auth=notary_auth(settings.auth, self._host), ca_pem=settings.cert)
        self._notary = notary
        self._clock = clock
        self._versions = VersionMemory()

    @property
    def host(self) -> str:
        return self._host

    async def validate(
        self, image: ImageReference, options: RuleOptions, deadline: Deadline
    ) -> TrustedDigest:
        """The digest the image's Notary trust data signs, under the rule's options.

        Raises:
            TrustRootError: trust_root_not_found, invalid_key.
            VerificationError: fetch_failed (also for an unusable host), timeout,
                unauthorized, rate_limited, unavailable, and every category of
                :func:`domain.notaryv1.verify_notary_image`.
        """
        pinned = pinned_keys(select_trust_roots(self._roots, options.trust_root))
        if self._host_problem is not None:
            raise VerificationError(
                f"invalid url for notary host {str(SafeUrl.of(self._host))!r}: "
                f"{self._host_problem}",
                category=Category.FETCH_FAILED,
            )
        gun = image.notary_reference
        files = await self._notary.fetch_roles(
            self._host, gun, roles_to_fetch(options.delegations), self._endpoint, deadline
        )
        evidence = verify_notary_image(
            files,
            pinned,
            self._clock.now(),
            tag=image.tag,
            digest=image.digest,
            delegations=options.delegations,
            known_versions=self._versions.get(self._host, gun),
        )
        self._versions.remember(self._host, gun, evidence.versions)
        return TrustedDigest(digest=evidence.digest, signers=evidence.roles)
