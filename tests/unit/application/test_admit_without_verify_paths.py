"""Every path that admits an image without running its validator, tried as an attacker with
namespace rights would (docs/threat-model.md lists each path and why it is safe).

Child approval, unchanged updates, static allows, coalescing and bounded work have modules of
their own; this one covers the feature switches, the cache and the error branches.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import providers

from connaisseur.adapters.cache import InMemoryCache
from connaisseur.application.caching import cache_key
from connaisseur.application.ports import CachedResult
from connaisseur.application.review import ReviewAdmission, ReviewCommand
from connaisseur.application.settings import Features, ResourceValidationMode
from connaisseur.application.verify import CachePolicy, VerifyImage
from connaisseur.config.container import build_container
from connaisseur.config.loader import build_settings
from connaisseur.domain.errors import Category
from connaisseur.domain.verdict import SkipReason
from tests.support.admission_harness import (
    DENIED,
    EVIL,
    EVIL_PINNED,
    POLICY,
    SIGNED,
    Admission,
    owner_ref,
    workload,
)
from tests.support.fake_validator import DIGEST
from tests.support.fakes import FakeKubernetesApi
from tests.support.webhook import webhook_client


async def test_unchanged_approval_verifies_an_image_added_next_to_an_old_one() -> None:
    admission = Admission(features=Features(automatic_unchanged_approval=True))
    verdict = await admission.update(workload("Pod", SIGNED), workload("Pod", SIGNED, EVIL))
    assert not verdict.allowed
    assert admission.fake.calls == [EVIL]
    by_image = {v.image: v for v in verdict.images}
    assert by_image[SIGNED].skipped is SkipReason.UNCHANGED


async def test_unchanged_approval_never_lifts_a_static_deny() -> None:
    admission = Admission(features=Features(automatic_unchanged_approval=True))
    verdict = await admission.update(workload("Pod", DENIED), workload("Pod", DENIED, SIGNED))
    assert not verdict.allowed
    assert verdict.category is Category.STATIC_DENY


async def test_pods_only_mode_lends_no_child_approval() -> None:
    """In podsOnly mode owners are admitted unverified, so their Pods are verified."""
    owner = workload("ReplicaSet", EVIL_PINNED, name="rs", uid="uid-rs")
    features = Features(resource_validation_mode=ResourceValidationMode.PODS_ONLY)
    admission = Admission(features=features, kube=FakeKubernetesApi([owner]))
    child = workload("Pod", EVIL_PINNED, name="rs-x", owners=(owner_ref(owner),))
    verdict = await admission.create(child)
    assert not verdict.allowed
    assert admission.kube.gets == []


async def test_detection_mode_admits_a_denied_image_unpinned_and_says_so() -> None:
    admission = Admission(features=Features(detection_mode=True))
    verdict = await admission.create(workload("Pod", EVIL, "a.io/ok:1"))
    assert verdict.allowed
    assert verdict.patch == ()  # a denied request pins nothing, not even its good images
    assert EVIL in verdict.warnings[1]


async def test_a_cache_entry_of_another_configuration_is_not_replayed() -> None:
    """D5: a denial cached under another rule or validator configuration proves nothing."""
    cache = InMemoryCache(100)
    admission = Admission()
    verify = VerifyImage(
        POLICY,
        admission.validators,
        admission.metrics,
        CachePolicy(cache=cache, validator_fingerprints={"fake": "other-configuration"}),
    )
    await cache.put(cache_key(EVIL, "stale-configuration"), CachedResult(digest=DIGEST), 30)
    review = ReviewAdmission(verify, Features(), admission.clock, admission.metrics)
    verdict = await review.execute(
        ReviewCommand(
            uid="u", kind="Pod", operation="CREATE", namespace="ns", object=workload("Pod", EVIL)
        )
    )
    assert not verdict.allowed
    assert admission.fake.calls == [EVIL]


async def test_a_crashing_review_is_a_denial_over_http() -> None:
    """Whatever goes wrong inside, the webhook fails closed and says nothing of it."""
    settings = build_settings(
        {
            "validators": [{"name": "allow", "type": "static", "approve": True}],
            "policy": [{"pattern": "*", "validator": "allow"}],
        },
        secrets_dir=None,
        env={},
    )
    container = build_container(settings)

    class Exploding:
        async def execute(self, command: Any) -> Any:
            raise RuntimeError("secret-internal-detail")

    container.review_admission.override(providers.Object(Exploding()))
    document = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": "ns",
            "object": workload("Pod", SIGNED),
        },
    }
    async with webhook_client(container) as client:
        resp = await client.post("/mutate", json=document)
        answer = (await resp.json())["response"]
    assert resp.status == 200
    assert answer["allowed"] is False
    assert "secret-internal-detail" not in str(answer)
