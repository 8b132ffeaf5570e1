"""Image references, parsed and normalised exactly like Connaisseur v3 (go-containerregistry).

``ImageReference.parse("nginx")`` gives ``index.docker.io/library/nginx:latest``; the Docker Hub
aliases ``docker.io``, ``index.docker.io`` and ``registry-1.docker.io`` all become
``index.docker.io`` (D1, docs/decisions/0001-anchored-patterns.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from connaisseur.domain.errors import InvalidReferenceError
from connaisseur.domain.urls import SafeUrl

DOCKER_HUB = "index.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

# Lengths as the reference grammar bounds them: a tag 128 characters, a repository 255 (Docker
# and go-containerregistry); a registry 255 (a DNS name has at most 253, plus a port). So no
# valid reference is longer than MAX_REFERENCE_LENGTH, and a longer string is refused before any
# other work (docs/decisions/0021-linear-time-policy-matching.md).
MAX_TAG_LENGTH = 128
MAX_REPOSITORY_LENGTH = 255
MAX_REGISTRY_LENGTH = 255
_DIGEST_LENGTH = len("sha256:") + 64
MAX_REFERENCE_LENGTH = (
    MAX_REGISTRY_LENGTH + MAX_REPOSITORY_LENGTH + MAX_TAG_LENGTH + _DIGEST_LENGTH + 3
)

_TAG = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_TAG_LENGTH}}}")
_REPOSITORY = re.compile(rf"[a-z0-9_./-]{{1,{MAX_REPOSITORY_LENGTH}}}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# RFC 3986 authority as Go's url.Parse("//"+host) accepts it, with an optional decimal port.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?")


def is_digest(value: str) -> bool:
    """True for a full ``sha256:<64 hex>`` digest."""
    return _DIGEST.fullmatch(value) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageReference:
    """A parsed image reference: ``registry/repository[:tag][@digest]`` plus the raw string."""

    original: str
    registry: str
    repository: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, raw: str) -> ImageReference:
        """Parse and normalise ``raw``.

        Raises:
            InvalidReferenceError: the string is not a valid image reference.
        """
        return _parse_cached(raw)

    @property
    def context(self) -> str:
        """Registry and repository, e.g. ``index.docker.io/library/nginx``."""
        return f"{self.registry}/{self.repository}"

    @property
    def name(self) -> str:
        """The normalised name policies match and patches write: ``context[:tag][@digest]``."""
        name = self.context
        if self.tag:
            name += ":" + self.tag
        if self.digest:
            name += "@" + self.digest
        return name

    @property
    def identifier(self) -> str:
        """The digest if present, else the tag."""
        return self.digest or self.tag

    @property
    def notary_reference(self) -> str:
        """The Notary GUN: the context, with Docker Hub spelt ``docker.io``."""
        if self.registry == DOCKER_HUB:
            return f"docker.io/{self.repository}"
        return self.context

    def scope(self, tag: str) -> str:
        """The registry token scope string for ``tag`` (``repository:<repo>:<tag>``)."""
        return f"repository:{self.repository}:{tag}"

    def with_digest(self, digest: str) -> ImageReference:
        """A copy pinned to ``digest`` (``sha256:`` added when missing; empty removes it)."""
        if digest and not digest.startswith("sha256:"):
            digest = "sha256:" + digest
        return replace(self, digest=digest)

    def __str__(self) -> str:
        return self.name


@lru_cache(maxsize=4096)
def _parse_cached(raw: str) -> ImageReference:
    if len(raw) > MAX_REFERENCE_LENGTH:
        raise InvalidReferenceError(
            f"invalid image reference: {len(raw)} characters, more than {MAX_REFERENCE_LENGTH}"
        )
    tag_form = _parse_tag_form(raw)
    if tag_form is not None:
        registry, repository, tag = tag_form
        return ImageReference(
            original=raw, registry=registry, repository=repository, tag=tag, digest=""
        )
    return _parse_digest_form(raw)


def _parse_tag_form(raw: str) -> tuple[str, str, str] | None:
    repo_part, tag = raw, "latest"
    head, sep, last = raw.rpartition(":")
    if sep and "/" not in last:
        if not _TAG.fullmatch(last):
            return None
        repo_part, tag = head, last
    try:
        registry, repository = split_repository(repo_part)
    except InvalidReferenceError:
        return None
    return registry, repository, tag


def _parse_digest_form(raw: str) -> ImageReference:
    parts = raw.split("@")
    if len(parts) != 2 or not is_digest(parts[1]):
        raise InvalidReferenceError(f"invalid image reference {raw!r}")
    before, digest = parts
    tag = ""
    head, sep, last = before.rpartition(":")
    if sep and "/" not in last and _TAG.fullmatch(last):
        try:
            registry, repository = split_repository(head)
            tag = last
        except InvalidReferenceError:
            registry, repository = split_repository(before)
    else:
        registry, repository = split_repository(before)
    return ImageReference(
        original=raw, registry=registry, repository=repository, tag=tag, digest=digest
    )


class RepositoryName(NamedTuple):
    """A repository's full name: its registry and its path there."""

    registry: str
    repository: str


def split_repository(value: str) -> RepositoryName:
    """Split ``[registry/]repository`` and normalise the Docker Hub spelling.

    Raises:
        InvalidReferenceError: invalid registry or repository.
    """
    registry, repository = DOCKER_HUB, value
    first, sep, rest = value.partition("/")
    if sep and ("." in first or ":" in first):
        if not is_valid_registry(first):
            raise InvalidReferenceError(f"invalid registry {first!r}")
        registry, repository = first, rest
    if not _REPOSITORY.fullmatch(repository):
        raise InvalidReferenceError(f"invalid repository {repository!r}")
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = "library/" + repository
    return RepositoryName(registry=registry, repository=repository)


def is_valid_registry(host: str) -> bool:
    """True for an RFC 3986 authority with an optional decimal port (Go ``url.Parse`` rules)."""
    return (
        0 < len(host) <= MAX_REGISTRY_LENGTH
        and _HOST.fullmatch(host) is not None
        and "/" not in host
    )


def normalise_registry_repo(value: str) -> str:
    """Normalise a credential key (``https://reg/repo/`` → ``reg/repo``), as Connaisseur v3 keys
    credentials.

    Raises:
        InvalidReferenceError: the registry or repository part is unparsable.
    """
    if value == "EMPTYAUTH":
        return value
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    if value.startswith(("index.docker.io", "docker.io")) and value.endswith("/v1/"):
        value = value[: -len("/v1/")]
    registry, _, repo = value.partition("/")
    repo = repo.rstrip("/")
    if not is_valid_registry(registry):
        # A credential key may carry userinfo: never echo it
        # (docs/decisions/0027-urls-without-credentials.md).
        raise InvalidReferenceError(f"unable to parse registry {SafeUrl.of(registry).host!r}")
    if repo and not _REPOSITORY.fullmatch(repo):
        raise InvalidReferenceError(f"unable to parse repository {repo!r}")
    return f"{registry}/{repo}" if repo else registry
