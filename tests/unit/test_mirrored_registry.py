"""The Registry port through mirrors (docs/decisions/0050-registry-mirrors.md), over fakes:
which place is asked, in which order, under which name and with which credentials; when the
next place is asked and when an answer is final."""

from __future__ import annotations

import pytest

from connaisseur.adapters.mirrored_registry import (
    HOP_REST_SECONDS,
    Hop,
    HopHealth,
    MirroredRegistry,
    Route,
)
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint
from connaisseur.application.settings import AuthSettings, Credentials
from connaisseur.domain.errors import Category, ConnaisseurError, VerificationError
from connaisseur.domain.image import ImageReference
from tests.support.cosign import image_manifest
from tests.support.fake_registries import FakeRegistries
from tests.support.fakes import FakeClock

SOURCE = "registry.example"
MIRROR = "mirror.internal:5000"
SECOND_MIRROR = "mirror2.internal"
IMAGE = ImageReference.parse(f"{SOURCE}/team/app:1.0")
DIRECT = Endpoint(auth=AuthSettings())
MIRROR_AUTH = AuthSettings(credentials=((MIRROR, Credentials(username="pull", password="secret")),))


def hop(registry: str = MIRROR, prefix: str = "", *, resolve: bool = True) -> Hop:
    endpoint = Endpoint(auth=MIRROR_AUTH, ca_pem=f"CA of {registry}")
    return Hop(registry=registry, prefix=prefix, endpoint=endpoint, resolve=resolve)


def mirrored(
    registries: FakeRegistries,
    *routes: Route,
    clock: FakeClock | None = None,
) -> MirroredRegistry:
    health = HopHealth(clock or FakeClock(frozen=True))
    return MirroredRegistry(registries, routes or (Route(source=SOURCE, hops=(hop(),)),), health)


def put_image(registries: FakeRegistries, host: str, repository: str, seed: str = "a") -> str:
    body, blobs = image_manifest(seed)
    at = registries.host(host)
    for blob in blobs.values():
        at.put_blob(repository, blob)
    return at.put_manifest(repository, body, "1.0")


def deadline() -> Deadline:
    return Deadline.after(FakeClock(), 10)


async def test_an_image_no_route_covers_is_read_from_its_registry() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, "elsewhere.example", "team/app")
    image = ImageReference.parse("elsewhere.example/team/app:1.0")
    assert await mirrored(registries).resolve(image, DIRECT, deadline()) == digest
    assert registries.hosts_asked() == ["elsewhere.example"]
    assert registries.asked[0].endpoint is DIRECT


async def test_the_first_mirror_that_answers_is_the_only_place_asked() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, MIRROR, "team/app")
    put_image(registries, SOURCE, "team/app", seed="source")
    registry = mirrored(registries, Route(source=SOURCE, hops=(hop(), hop(SECOND_MIRROR))))
    assert await registry.resolve(IMAGE, DIRECT, deadline()) == digest
    manifest = await registry.manifest(IMAGE, digest, DIRECT, deadline())
    assert manifest.digest == digest
    assert registries.hosts_asked() == [MIRROR, MIRROR]
    # the mirror's own credentials and CA, never the validator's
    assert {a.endpoint.auth for a in registries.asked} == {MIRROR_AUTH}
    assert {a.endpoint.ca_pem for a in registries.asked} == {f"CA of {MIRROR}"}


async def test_the_sources_prefix_is_replaced_by_the_endpoints_path() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, MIRROR, "cache/vendor/app")
    route = Route(source=f"{SOURCE}/team", hops=(hop(prefix="cache/vendor"),))
    assert await mirrored(registries, route).resolve(IMAGE, DIRECT, deadline()) == digest
    assert [(a.host, a.repository) for a in registries.asked] == [(MIRROR, "cache/vendor/app")]


async def test_the_most_specific_source_wins() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, SECOND_MIRROR, "team/app")
    broad = Route(source=SOURCE, hops=(hop(),))
    narrow = Route(source=f"{SOURCE}/team", hops=(hop(SECOND_MIRROR, "team"),))
    assert await mirrored(registries, broad, narrow).resolve(IMAGE, DIRECT, deadline()) == digest
    assert registries.hosts_asked() == [SECOND_MIRROR]


async def test_a_prefix_matches_whole_path_components() -> None:
    registries = FakeRegistries()
    put_image(registries, SOURCE, "teamwork/app")
    image = ImageReference.parse(f"{SOURCE}/teamwork/app:1.0")
    route = Route(source=f"{SOURCE}/team", hops=(hop(),))
    await mirrored(registries, route).resolve(image, DIRECT, deadline())
    assert registries.hosts_asked() == [SOURCE]


@pytest.mark.parametrize(
    "category",
    [
        Category.UNAVAILABLE,
        Category.TIMEOUT,
        Category.FETCH_FAILED,
        Category.RATE_LIMITED,
        Category.UNAUTHORIZED,
        Category.IMAGE_NOT_FOUND,
    ],
)
async def test_a_place_that_cannot_answer_passes_the_request_on(category: Category) -> None:
    registries = FakeRegistries(down={MIRROR: VerificationError("no", category=category)})
    digest = put_image(registries, SECOND_MIRROR, "team/app")
    registry = mirrored(registries, Route(source=SOURCE, hops=(hop(), hop(SECOND_MIRROR))))
    assert await registry.resolve(IMAGE, DIRECT, deadline()) == digest
    assert registries.hosts_asked() == [MIRROR, SECOND_MIRROR]


async def test_the_source_is_asked_last() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, SOURCE, "team/app")
    registry = mirrored(registries, Route(source=SOURCE, hops=(hop(), hop(SECOND_MIRROR))))
    assert await registry.resolve(IMAGE, DIRECT, deadline()) == digest
    assert registries.hosts_asked() == [MIRROR, SECOND_MIRROR, SOURCE]
    assert registries.asked[-1].endpoint is DIRECT


async def test_content_that_does_not_match_its_digest_is_final() -> None:
    """A lying mirror denies: the source, which has the right content, is not asked."""
    registries = FakeRegistries()
    digest = put_image(registries, SOURCE, "team/app")
    forged, _ = image_manifest("forged")
    registries.host(MIRROR).files[f"team/app/manifests/{digest}"] = forged
    with pytest.raises(ConnaisseurError) as err:
        await mirrored(registries).manifest(IMAGE, digest, DIRECT, deadline())
    assert err.value.category is Category.MALFORMED_TRUST_DATA
    assert registries.hosts_asked() == [MIRROR]


async def test_without_fallback_the_source_is_never_asked() -> None:
    registries = FakeRegistries()
    put_image(registries, SOURCE, "team/app")
    route = Route(source=SOURCE, hops=(hop(),), to_source=False)
    with pytest.raises(ConnaisseurError) as err:
        await mirrored(registries, route).resolve(IMAGE, DIRECT, deadline())
    assert err.value.category is Category.IMAGE_NOT_FOUND
    assert registries.hosts_asked() == [MIRROR]


async def test_an_endpoint_without_resolve_is_asked_for_digests_only() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, SOURCE, "team/app")
    signature_tag = f"{digest.replace(':', '-')}.sig"
    registries.host(SOURCE).put_manifest("team/app", b"{}", signature_tag)
    put_image(registries, MIRROR, "team/app")
    blob = registries.host(MIRROR).put_blob("team/app", b"layer")
    registry = mirrored(registries, Route(source=SOURCE, hops=(hop(resolve=False),)))
    assert await registry.resolve(IMAGE, DIRECT, deadline()) == digest  # a tag: the source
    await registry.manifest(IMAGE, signature_tag, DIRECT, deadline())
    await registry.referrers(IMAGE.with_digest(digest), "x", DIRECT, deadline())
    await registry.manifest(IMAGE, digest, DIRECT, deadline())  # a digest: the mirror
    await registry.blob(IMAGE, BlobRef(digest=blob), DIRECT, deadline())
    assert registries.hosts_asked() == [SOURCE, SOURCE, SOURCE, MIRROR, MIRROR]


async def test_an_empty_referrers_listing_is_an_answer() -> None:
    registries = FakeRegistries()
    digest = put_image(registries, MIRROR, "team/app")
    registry = mirrored(registries)
    assert await registry.referrers(IMAGE.with_digest(digest), "x", DIRECT, deadline()) == []
    assert registries.hosts_asked() == [MIRROR]


async def test_a_mirror_that_is_down_rests_then_is_asked_again() -> None:
    clock = FakeClock(frozen=True)
    registries = FakeRegistries(down={MIRROR: VerificationError("down", category=Category.TIMEOUT)})
    put_image(registries, SOURCE, "team/app")
    registry = mirrored(registries, clock=clock)
    await registry.resolve(IMAGE, DIRECT, deadline())
    await registry.resolve(IMAGE, DIRECT, deadline())
    assert registries.hosts_asked() == [MIRROR, SOURCE, SOURCE]
    clock.advance(HOP_REST_SECONDS + 1)
    registries.asked.clear()
    await registry.resolve(IMAGE, DIRECT, deadline())
    assert registries.hosts_asked() == [MIRROR, SOURCE]


async def test_a_missing_image_does_not_make_a_mirror_rest() -> None:
    registries = FakeRegistries()
    put_image(registries, SOURCE, "team/app")
    registry = mirrored(registries)
    await registry.resolve(IMAGE, DIRECT, deadline())
    await registry.resolve(IMAGE, DIRECT, deadline())
    assert registries.hosts_asked() == [MIRROR, SOURCE, MIRROR, SOURCE]


async def test_a_resting_mirror_is_still_asked_when_nothing_else_can_answer() -> None:
    clock = FakeClock(frozen=True)
    registries = FakeRegistries(down={MIRROR: VerificationError("down", category=Category.TIMEOUT)})
    route = Route(source=SOURCE, hops=(hop(),), to_source=False)
    registry = mirrored(registries, route, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnaisseurError):
            await registry.resolve(IMAGE, DIRECT, deadline())
    assert registries.hosts_asked() == [MIRROR, MIRROR]


async def test_a_mirror_that_is_down_is_reported_rather_than_a_missing_image() -> None:
    """Mirror down, source says 404: transient (never cached as "does not exist"), and the
    message names every place asked."""
    registries = FakeRegistries(
        down={MIRROR: VerificationError("registry mirror down", category=Category.UNAVAILABLE)}
    )
    with pytest.raises(ConnaisseurError) as err:
        await mirrored(registries).resolve(IMAGE, DIRECT, deadline())
    assert err.value.category is Category.UNAVAILABLE
    assert err.value.message == f"registry mirror down (asked in turn: {MIRROR}, {SOURCE})"
