"""Regression: one request must not buy unbounded work.

An AdmissionReview could name tens of thousands of images, each verified at once; the
process verified any number of images concurrently; every registry host an image named
became a metric label forever; cosign signature blobs were read up to 4 MiB each (64 layers);
and Rekor was asked about every signature before any was checked.
"""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives.asymmetric import ec

from connaisseur.adapters.metrics import PrometheusMetrics
from connaisseur.application.deadline import Deadline
from connaisseur.application.settings import Limits
from connaisseur.application.verify import VerifyImage, VerifyImageCommand
from connaisseur.domain.cosign_layout import MAX_PAYLOAD_BYTES
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Policy, Rule, RuleOptions
from tests.support.admission_harness import Admission, untrusted, workload
from tests.support.cosign import FakeRekor, Signer, sha256, sign_layout
from tests.support.cosign_validator import (
    IMAGE,
    Signed,
    push_image,
    push_signatures,
    signed,
    signed_image,
    validator,
)
from tests.support.fake_oci_registry import FakeRegistry
from tests.support.fake_validator import FakeValidator
from tests.support.fake_validator import Outcome as Scripted
from tests.support.fakes import FakeClock, FakeMetrics, FakeTransparencyLog

# ------------------------------------------------------------------ images per object


async def test_an_object_naming_more_images_than_the_limit_is_denied_unverified() -> None:
    admission = Admission(limits=Limits(max_containers_per_object=8))
    images = [f"a.io/img{i}:1" for i in range(9)]
    verdict = await admission.create(workload("Pod", *images))
    assert not verdict.allowed
    assert verdict.category is Category.INVALID_REQUEST
    assert "9 containers" in (verdict.message or "")
    assert admission.fake.calls == []
    at_limit = await admission.create(workload("Pod", *images[:8]))
    assert at_limit.allowed


async def test_every_container_list_counts_toward_the_limit() -> None:
    admission = Admission(limits=Limits(max_containers_per_object=4))
    obj = workload(
        "Pod", "a.io/x:1", "a.io/x:1", init=("a.io/x:1",), ephemeral=("a.io/x:1", "a.io/x:1")
    )
    verdict = await admission.create(obj)
    assert not verdict.allowed
    assert verdict.category is Category.INVALID_REQUEST


async def test_the_default_limit_admits_a_realistic_pod_and_refuses_a_maximal_one() -> None:
    admission = Admission()
    assert (await admission.create(workload("Pod", *[f"a.io/i{i}:1" for i in range(40)]))).allowed
    huge = workload("Pod", *[f"a.io/i{i}:1" for i in range(20_000)])
    verdict = await admission.create(huge)
    assert not verdict.allowed
    assert admission.fake.calls.count("a.io/i0:1") == 1  # only the realistic Pod was verified


# ------------------------------------------------------------------ concurrency


async def test_one_request_verifies_a_bounded_number_of_images_at_once() -> None:
    fake = untrusted()
    fake.outcomes.update({f"a.io/i{i}:1": Scripted(delay=0.02) for i in range(24)})
    admission = Admission(fake, limits=Limits(max_concurrent_verifications_per_request=4))
    verdict = await admission.create(workload("Pod", *[f"a.io/i{i}:1" for i in range(24)]))
    assert verdict.allowed
    assert fake.peak == 4


async def test_the_process_verifies_a_bounded_number_of_images_at_once() -> None:
    fake = FakeValidator(outcomes={f"a.io/i{i}:1": Scripted(delay=0.02) for i in range(30)})
    limits = Limits(max_concurrent_verifications=5)
    verify = VerifyImage(
        Policy((Rule(pattern="*", validator="fake"),)), {"fake": fake}, FakeMetrics(), limits=limits
    )
    deadline = Deadline.after(FakeClock(), 5.0)
    verdicts = await asyncio.gather(
        *(verify.execute(VerifyImageCommand(image=f"a.io/i{i}:1"), deadline) for i in range(30))
    )
    assert all(v.allowed for v in verdicts)
    assert fake.peak == 5


# ------------------------------------------------------------------ metric labels


def test_attacker_chosen_registry_hosts_do_not_grow_the_metrics_forever() -> None:
    metrics = PrometheusMetrics()
    metrics.upstream_response("rekor.sigstore.dev", "2xx")
    for i in range(5000):
        metrics.upstream_response(f"r{i}.attacker.example", "4xx")
    exposition = metrics.exposition().decode()
    hosts = {
        line.split('host="', 1)[1].split('"', 1)[0]
        for line in exposition.splitlines()
        if line.startswith("connaisseur_upstream_requests_total{")
    }
    assert len(hosts) <= 101
    assert "rekor.sigstore.dev" in hosts  # hosts seen first keep their label
    assert "other" in hosts
    total = sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("connaisseur_upstream_requests_total{")
    )
    assert total == 5001  # nothing is lost, only folded


# ------------------------------------------------------------------ cosign blobs and Rekor


async def test_signature_blobs_are_read_with_the_payload_cap() -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    reg, _ = signed_image(signer)
    v = validator([{"name": "default", "key": signer.public_pem}], reg)
    await v.validate(
        IMAGE, RuleOptions(verify_in_transparency_log=False), Deadline.after(FakeClock(), 5.0)
    )
    assert reg.blob_caps == [MAX_PAYLOAD_BYTES]


async def test_an_oversized_signature_layer_is_not_fetched() -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    reg = FakeRegistry()
    digest = push_image(reg, "1.0")
    huge: Signed = (b"x" * (MAX_PAYLOAD_BYTES + 1), b"sig", {})
    push_signatures(reg, digest, sign_layout([huge, signed(signer, digest)]))
    v = validator([{"name": "default", "key": signer.public_pem}], reg)
    result = await v.validate(
        IMAGE, RuleOptions(verify_in_transparency_log=False), Deadline.after(FakeClock(), 5.0)
    )
    assert result.digest == digest  # the good signature still counts
    assert not any(sha256(huge[0]) in path for path in reg.requests)


async def test_rekor_is_asked_only_about_signatures_that_verify() -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    stranger = Signer(ec.generate_private_key(ec.SECP256R1()))
    reg, rekor = FakeRegistry(), FakeRekor()
    digest = push_image(reg, "1.0")
    forged = [
        signed(stranger, digest, reference=f"registry.example/team/app{i}") for i in range(20)
    ]
    good = signed(signer, digest)
    push_signatures(reg, digest, sign_layout([*forged, good]))
    entry = rekor.entry(good[0], good[1], signer.public_pem, 1_700_000_000)
    log = FakeTransparencyLog({sha256(good[0]): [entry]})
    v = validator(
        [{"name": "default", "key": signer.public_pem}],
        reg,
        log,
        {"rekor": "https://rekor.test", "rekorPubkey": rekor.public_pem},
    )
    result = await v.validate(IMAGE, RuleOptions(), Deadline.after(FakeClock(), 5.0))
    assert result.digest == digest
    assert log.queries == [("https://rekor.test", sha256(good[0]))]
