"""Domain: image references (Docker Hub aliases of D1)."""

from __future__ import annotations

import pytest

from connaisseur.domain.errors import Category, InvalidReferenceError
from connaisseur.domain.image import (
    MAX_REFERENCE_LENGTH,
    MAX_REGISTRY_LENGTH,
    MAX_REPOSITORY_LENGTH,
    MAX_TAG_LENGTH,
    ImageReference,
    normalise_registry_repo,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "raw",
    [
        "nginx",
        "nginx:latest",
        "library/nginx",
        "docker.io/nginx",
        "docker.io/library/nginx:latest",
        "index.docker.io/library/nginx",
        "registry-1.docker.io/library/nginx:latest",
    ],
)
def test_docker_hub_aliases_normalise_to_one_name(raw: str) -> None:
    image = ImageReference.parse(raw)
    assert image.name == "index.docker.io/library/nginx:latest"
    assert image.notary_reference == "docker.io/library/nginx"
    assert image.original == raw


@pytest.mark.parametrize(
    ("raw", "registry", "repository", "tag", "digest"),
    [
        ("my.reg:5000/a/b/c:v1", "my.reg:5000", "a/b/c", "v1", ""),
        (f"my.reg/a@{DIGEST}", "my.reg", "a", "", DIGEST),
        (f"my.reg/a:v1@{DIGEST}", "my.reg", "a", "v1", DIGEST),
        ("localhost/a:1", "index.docker.io", "localhost/a", "1", ""),
        ("localhost:5000/a", "localhost:5000", "a", "latest", ""),
        ("[::1]:5000/a:1", "[::1]:5000", "a", "1", ""),
    ],
)
def test_parse_components(raw: str, registry: str, repository: str, tag: str, digest: str) -> None:
    image = ImageReference.parse(raw)
    assert (image.registry, image.repository, image.tag, image.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert image.identifier == (digest or tag)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "Nginx",
        "my.reg/UPPER:1",
        "nginx@sha256:123",
        f"nginx@sha512:{'0' * 128}",
        "nginx:",
        "nginx:" + "x" * 129,
        "a b",
        "nginx@@" + DIGEST,
        'asd"fgh',
        "my.reg/",
    ],
)
def test_invalid_references_are_refused(raw: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        ImageReference.parse(raw)
    assert info.value.category is Category.INVALID_REFERENCE


def test_with_digest_pins_and_unpins_without_mutating() -> None:
    image = ImageReference.parse("my.reg/a:1")
    pinned = image.with_digest(DIGEST.removeprefix("sha256:"))
    assert pinned.name == f"my.reg/a:1@{DIGEST}"
    assert image.name == "my.reg/a:1"
    assert pinned.with_digest("").name == "my.reg/a:1"


def test_scope_names_the_repository() -> None:
    assert ImageReference.parse("nginx").scope("1") == "repository:library/nginx:1"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("https://my.reg/team/", "my.reg/team"),
        ("http://index.docker.io/v1/", "index.docker.io"),
        ("docker.io/v1/", "docker.io"),
        ("my.reg:5000", "my.reg:5000"),
        ("EMPTYAUTH", "EMPTYAUTH"),
    ],
)
def test_credential_keys_normalise(raw: str, key: str) -> None:
    assert normalise_registry_repo(raw) == key


@pytest.mark.parametrize("raw", ["[]\\/repo]", "my.reg/UPPER", ""])
def test_bad_credential_keys_are_refused(raw: str) -> None:
    with pytest.raises(InvalidReferenceError):
        normalise_registry_repo(raw)


def _longest(registry: int, repository: int, tag: int) -> str:
    return f"{'r' * (registry - 3)}.io/{'a' * repository}:{'t' * tag}@{DIGEST}"


def test_references_are_bounded_as_the_grammar_bounds_them() -> None:
    """Registry and repository 255 characters, tag 128: the longest valid reference is
    MAX_REFERENCE_LENGTH long, and one character more in any part is refused
    (docs/decisions/0021-linear-time-policy-matching.md)."""
    longest = _longest(MAX_REGISTRY_LENGTH, MAX_REPOSITORY_LENGTH, MAX_TAG_LENGTH)
    assert len(longest) == MAX_REFERENCE_LENGTH
    assert ImageReference.parse(longest).name == longest
    for too_long in (
        _longest(MAX_REGISTRY_LENGTH + 1, MAX_REPOSITORY_LENGTH, MAX_TAG_LENGTH - 1),
        _longest(MAX_REGISTRY_LENGTH, MAX_REPOSITORY_LENGTH + 1, MAX_TAG_LENGTH - 1),
        _longest(MAX_REGISTRY_LENGTH - 1, MAX_REPOSITORY_LENGTH, MAX_TAG_LENGTH + 1),
    ):
        with pytest.raises(InvalidReferenceError):
            ImageReference.parse(too_long)


def test_a_huge_image_string_is_refused_without_being_echoed() -> None:
    huge = "registry.example/" + "a" * (3 * 1024 * 1024)
    with pytest.raises(InvalidReferenceError) as info:
        ImageReference.parse(huge)
    assert len(info.value.message) < 200
    assert str(MAX_REFERENCE_LENGTH) in info.value.message
