"""Registry mirrors against real registries (docs/decisions/0050-registry-mirrors.md).

The same cases — cosign with a key and keyless under a private Sigstore, Notation, Notary v1,
signatures in a separate repository, unsigned, wrongly signed and missing images — decided three
ways with the same verdicts and digests: direct from the registry they were published to, through
Debian's ``docker-registry`` as a pull-through cache of it, and from a second ``docker-registry``
filled by ``skopeo sync`` (HTTPS, its own CA and credentials, under a path prefix). The mirror
columns never fall back to the source, and the source sees no request from the verifier. A mirror
that lies — tampered blobs, a substituted image, forged signatures — denies; the one thing a
mirror that resolves tags can choose, which signed release a tag names, is shown with its remedy.
Set-up: tests/support/mirror_world.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from connaisseur.adapters.clock import FixedClock
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.config.container import build_container, running
from connaisseur.config.loader import load_settings
from connaisseur.domain.cosign_layout import signature_tag
from connaisseur.entrypoints import cli
from tests.support.containers import Backend
from tests.support.cosign import TreeRegistry
from tests.support.mirror_world import (
    Case,
    MirrorWorld,
    Outcome,
    mirror_world,
    verdicts,
)
from tests.support.processes import free_port
from tests.support.registry_proxy import RegistryProxy
from tests.support.tampering_mirror import TamperingMirror
from tests.support.threaded_server import serve_in_thread

pytestmark = pytest.mark.integration

DATA = resources.files("tests") / "conformance" / "data"
KEYLESS_VECTOR = "sha256:31dc72a13a0c34b40eb95419d2b2fd67320c856baf3b72da518023ee8d370aee"
COLUMNS = ("direct", "pull-through cache", "skopeo-synced registry")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[MirrorWorld]:
    with mirror_world(tmp_path_factory.mktemp("mirrors"), backend) as built:
        print(f"registry backend: {built.origin.backend}; notary: {built.notary is not None}")
        yield built


def column_config(world: MirrorWorld, column: str) -> dict[str, Any]:
    mirrors = {
        "direct": [],
        "pull-through cache": world.through_cache(),
        "skopeo-synced registry": world.through_synced(),
    }[column]
    return world.config(mirrors)


async def decide(
    world: MirrorWorld, config: dict[str, Any], *cases: Case, **options: Any
) -> list[Outcome]:
    return await verdicts(config, [(c.image, world.rule(c, **options)) for c in cases], world.now)


@pytest.mark.parametrize("column", COLUMNS)
async def test_every_case_is_decided_alike_direct_and_through_mirrors(
    world: MirrorWorld, column: str
) -> None:
    world.front_proxy.reset()
    outcomes = await decide(world, column_config(world, column), *world.cases)
    wrong = [
        f"{case.name}: expected {case.digest or case.category}, got {outcome}"
        for case, outcome in zip(world.cases, outcomes, strict=True)
        if not outcome.matches(case)
    ]
    assert not wrong, "\n".join(wrong)
    asked_the_source = [path for _, path in world.front_proxy.requests]
    if column == "direct":
        assert asked_the_source
    else:
        assert asked_the_source == []


async def test_a_mirror_that_answers_is_sent_exactly_the_requests_the_source_would_be(
    world: MirrorWorld,
) -> None:
    """No extra request per mirror: a mirror serving the origin's store receives the very
    requests the source receives direct, and the source none. Counted, never timed
    (bench/mirror_roundtrips.py measures the round trips). One case at a time: verifications
    running together share what the client learns of a registry's referrers API, so how many
    probes go out depends on which of them asks first."""
    admitted = [c for c in world.cases if c.digest is not None]
    world.front_proxy.reset()
    outcomes = [o for c in admitted for o in await decide(world, world.config(), c)]
    direct = sorted(world.front_proxy.requests)
    replica = RegistryProxy(world.origin.url)
    with serve_in_thread(replica.app) as port:
        endpoint = {"url": f"http://127.0.0.1:{port}"}
        mirrors = [{"source": world.front, "endpoints": [endpoint], "fallbackToSource": False}]
        world.front_proxy.reset()
        outcomes += [o for c in admitted for o in await decide(world, world.config(mirrors), c)]
    assert all(o.matches(c) for o, c in zip(outcomes, admitted * 2, strict=True)), outcomes
    assert direct
    assert sorted(replica.requests) == direct
    assert world.front_proxy.requests == []


def test_a_bundle_exported_through_a_mirror_names_the_images_as_the_policy_does(
    world: MirrorWorld, tmp_path: Path
) -> None:
    """``bundle export`` reads through the mirror (the source is asked nothing) and records
    under the images' own names, so the bundle verifies them offline with the direct digests;
    a validator reading a bundle reads no registry, so its mirrors do not matter there."""
    admitted = [c for c in world.cases if c.digest is not None and c.validator != "notary"]
    document = world.config(world.through_synced())
    document["policy"] = [world.rule(c) for c in admitted] + document["policy"]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    bundle = tmp_path / "bundle"
    world.front_proxy.reset()
    images = [c.image for c in admitted]
    exported = cli.main(
        ["bundle", "export", "--config", str(config), "--secrets-dir", str(tmp_path),
         "-o", str(bundle), *images]
    )  # fmt: skip
    assert exported == 0
    assert world.front_proxy.requests == []
    offline = asyncio.run(verified_offline(config, bundle, images, world))
    assert [(v.allowed, v.digest) for v in offline] == [(True, c.digest) for c in admitted]


async def verified_offline(
    config: Path, bundle: Path, images: list[str], world: MirrorWorld
) -> list[Any]:
    settings = load_settings(config, secrets_dir=None, offline=bundle)
    container = build_container(settings, FixedClock(world.now))
    async with running(container):
        verify = container.verify_image()
        deadline = Deadline.after(container.clock(), 20)
        return [await verify.execute(VerifyImageCommand(image=i), deadline) for i in images]


# ------------------------------------------------------------------ an endpoint that is down


async def test_a_mirror_that_is_down_is_passed_over_for_the_next(world: MirrorWorld) -> None:
    """Mirror 1 answers 503: the request goes on to mirror 2, and mirror 1 rests, so the rest
    of the verification does not wait for it again."""
    down = TamperingMirror(world.origin.url, fail_with=503)
    with serve_in_thread(down.app) as port:
        endpoints = [{"url": f"http://127.0.0.1:{port}"}, world.synced_endpoint()]
        mirrors = [{"source": world.front, "endpoints": endpoints, "fallbackToSource": False}]
        case = world.cases[0]
        (outcome,) = await decide(world, world.config(mirrors), case)
    assert outcome.matches(case), outcome
    assert len(down.requests) == 1


async def test_an_unreachable_mirror_without_fallback_denies_as_transient(
    world: MirrorWorld,
) -> None:
    world.front_proxy.reset()
    mirrors = [
        {
            "source": world.front,
            "endpoints": [{"url": f"http://127.0.0.1:{free_port()}"}],
            "fallbackToSource": False,
        }
    ]
    (outcome,) = await decide(world, world.config(mirrors), world.cases[0])
    assert (outcome.allowed, outcome.category) == (False, "fetch_failed")
    assert world.front_proxy.requests == []


async def test_with_fallback_an_unreachable_mirror_costs_nothing_but_a_try(
    world: MirrorWorld,
) -> None:
    world.front_proxy.reset()
    mirrors = [{"source": world.front, "endpoints": [{"url": f"http://127.0.0.1:{free_port()}"}]}]
    case = world.cases[0]
    (outcome,) = await decide(world, world.config(mirrors), case)
    assert outcome.matches(case), outcome
    assert world.front_proxy.requests


async def test_an_endpoint_whose_certificate_is_not_its_ca_is_not_read(
    world: MirrorWorld,
) -> None:
    """The synced registry's CA is its own: another CA (here the Notation root) refuses it."""
    endpoint = world.synced_endpoint(cert=world.notation_root.pem())
    mirrors = [{"source": world.front, "endpoints": [endpoint], "fallbackToSource": False}]
    (outcome,) = await decide(world, world.config(mirrors), world.cases[0])
    assert (outcome.allowed, outcome.category) == (False, "fetch_failed")
    assert "not trusted" in (outcome.message or "")


async def test_an_endpoint_with_the_wrong_credentials_is_not_read(world: MirrorWorld) -> None:
    endpoint = world.synced_endpoint(auth={"username": "mirror", "password": "wrong"})
    mirrors = [{"source": world.front, "endpoints": [endpoint], "fallbackToSource": False}]
    (outcome,) = await decide(world, world.config(mirrors), world.cases[0])
    assert (outcome.allowed, outcome.category) == (False, "unauthorized")


# ------------------------------------------------------------------ a mirror that lies


def lying(
    world: MirrorWorld, mirror: TamperingMirror, port: int, **endpoint: Any
) -> dict[str, Any]:
    """A config reading the origin through the lying mirror first, the origin after it."""
    endpoints = [{"url": f"http://127.0.0.1:{port}", **endpoint}]
    return world.config([{"source": world.front, "endpoints": endpoints}])


@pytest.mark.parametrize(
    ("case_name", "tamper", "reason"),
    [
        ("cosign key", {"flip_blobs": True}, "does not match its digest"),
        ("notation", {"flip_blobs": True}, "does not match its digest"),
        ("cosign keyless", {"flip_blobs": True}, "does not match its digest"),
        # another repository's image, signed by the same key, under this one's name (D2)
        (
            "cosign key",
            {"redirects": {"/v2/team/cosign-key/": "/v2/team/cosign-other/"}},
            "the signature names repository",
        ),
        # an unsigned image under a signed image's tag
        (
            "cosign key",
            {"redirects": {"/v2/team/cosign-key/manifests/1.0": "/v2/team/unsigned/manifests/1.0"}},
            "no signatures found",
        ),
        # signatures hidden
        ("notation", {"empty_referrers": True}, "no Notation signature"),
    ],
)
async def test_a_mirror_that_lies_makes_a_denial_never_an_admission(
    world: MirrorWorld, case_name: str, tamper: dict[str, Any], reason: str
) -> None:
    case = next(c for c in world.cases if c.name == case_name)
    mirror = TamperingMirror(world.origin.url, **tamper)
    with serve_in_thread(mirror.app) as port:
        (outcome,) = await decide(world, lying(world, mirror, port), case)
    assert not outcome.allowed, outcome
    assert reason in (outcome.message or ""), outcome


async def test_a_forged_signature_manifest_is_denied(world: MirrorWorld) -> None:
    """The mirror serves, as the image's signatures, those of another image signed by the same
    key: they name another digest (D2)."""
    case = world.cases[0]
    forged = signature_tag(world.digests["cosign-other"])
    own = signature_tag(world.digests["cosign-key"])
    redirects = {
        f"/v2/team/cosign-key/manifests/{own}": f"/v2/team/cosign-other/manifests/{forged}",
        "/v2/team/cosign-key/blobs/": "/v2/team/cosign-other/blobs/",
    }
    mirror = TamperingMirror(world.origin.url, redirects=redirects)
    with serve_in_thread(mirror.app) as port:
        (outcome,) = await decide(world, lying(world, mirror, port), case)
    assert (outcome.allowed, outcome.category) == (False, "digest_mismatch"), outcome


async def test_content_a_mirror_tampered_with_is_not_fetched_again_from_the_source(
    world: MirrorWorld,
) -> None:
    """A lie is final: the source, which has the right blob, is not asked for it."""
    world.front_proxy.reset()
    mirror = TamperingMirror(world.origin.url, flip_blobs=True)
    with serve_in_thread(mirror.app) as port:
        await decide(world, lying(world, mirror, port), world.cases[0])
    assert not [path for _, path in world.front_proxy.requests if "/blobs/" in path]


async def test_a_mirror_that_resolves_tags_chooses_the_signed_release_unless_told_not_to(
    world: MirrorWorld,
) -> None:
    """What a mirror with ``resolve`` can do, and the remedy: served the older, validly signed
    release under the tag, the verifier admits it (pinned to that digest, which is what the
    nodes would pull through the same mirror); an endpoint with ``capabilities: [pull]`` is
    never asked for a tag, so the source names the release."""
    case = world.cases[0]
    redirects = {"/v2/team/cosign-key/manifests/1.0": "/v2/team/cosign-key/manifests/0.9"}
    mirror = TamperingMirror(world.origin.url, redirects=redirects)
    with serve_in_thread(mirror.app) as port:
        (resolving,) = await decide(world, lying(world, mirror, port), case)
        (pull_only,) = await decide(world, lying(world, mirror, port, capabilities=["pull"]), case)
    assert (resolving.allowed, resolving.digest) == (True, world.digests["cosign-key:0.9"])
    assert (pull_only.allowed, pull_only.digest) == (True, world.digests["cosign-key"])


# ------------------------------------------------------------------ a Docker Hub name, offline


async def test_a_public_good_keyless_signature_verifies_under_its_docker_hub_name(
    world: MirrorWorld,
) -> None:
    """A real keyless signature (Sigstore public-good, May 2024; conformance vector) of
    ``docker.io/phbelitz/rekor-test``, served by a mirror that keeps it under another path (the
    conformance registry mock): the name stays Docker Hub's — the payload's
    ``docker-reference`` is checked against it (D2) — while every byte comes from the mirror,
    with no way out to the source. The same bytes under another name are denied."""
    tree = TreeRegistry(Path(str(DATA / "cosign")))
    with serve_in_thread(tree.app) as port:
        endpoint = {"url": f"http://127.0.0.1:{port}/securesystemsengineering/testimage"}
        mirrors = [
            {
                "source": f"docker.io/phbelitz/{name}",
                "endpoints": [endpoint],
                "fallbackToSource": False,
            }
            for name in ("rekor-test", "impostor")
        ]
        keyless = {"issuerRegex": "github", "subjectRegex": "philipp"}
        roots = [{"name": "default", "keyless": keyless}]
        config = {
            "validators": [{"name": "hub", "type": "cosign", "trustRoots": roots}],
            "policy": [{"pattern": "*:*", "validator": "hub"}],
            "mirrors": mirrors,
        }
        images = [f"docker.io/phbelitz/{name}:keyless" for name in ("rekor-test", "impostor")]
        genuine, impostor = await verdicts(
            config, [(image, {"pattern": image, "validator": "hub"}) for image in images], world.now
        )
    assert (genuine.allowed, genuine.digest) == (True, KEYLESS_VECTOR), genuine
    assert not impostor.allowed
    assert "names repository index.docker.io/phbelitz/rekor-test" in (impostor.message or "")
    assert all(
        path.startswith("/v2/securesystemsengineering/testimage/")
        for _, path in tree.requests
        if path != "/v2/"
    )
