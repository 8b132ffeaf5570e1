"""A ``ReviewAdmission`` over fakes, and Kubernetes objects to feed it (shared by the
admission security tests)."""

from __future__ import annotations

from typing import Any

from connaisseur.application.approval import ChildApproval
from connaisseur.application.review import ReviewAdmission, ReviewCommand
from connaisseur.application.settings import Features, Limits, ValidatorSettings
from connaisseur.application.validators import StaticValidator, Validator
from connaisseur.application.verify import VerifyImage
from connaisseur.domain.errors import Category
from connaisseur.domain.policy import Policy, Rule
from connaisseur.domain.verdict import RequestVerdict
from tests.support.fake_validator import DIGEST, FakeValidator, Outcome
from tests.support.fakes import FakeClock, FakeKubernetesApi, FakeMetrics

SIGNED = f"a.io/signed:1@{DIGEST}"
EVIL = "evil.io/miner:1"
EVIL_PINNED = "evil.io/miner:1@sha256:" + "ee" * 32
DENIED = "my.reg/denied:1"
ALLOWED = "my.reg/allowed:1"

POLICY = Policy(
    (
        Rule(pattern="*", validator="fake"),
        Rule(pattern="my.reg/allowed", validator="allow"),
        Rule(pattern="my.reg/denied", validator="deny"),
    )
)

_TEMPLATE_PATH = {
    "Pod": (),
    "CronJob": ("jobTemplate", "spec", "template"),
}
API_VERSIONS = {
    "Pod": "v1",
    "ReplicationController": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
}


def untrusted() -> FakeValidator:
    """A validator that denies the evil images and trusts everything else."""
    deny = Outcome(category=Category.SIGNATURE_INVALID, message="not signed by a trusted key")
    return FakeValidator(outcomes={EVIL: deny, EVIL_PINNED: deny})


class Admission:
    """``ReviewAdmission`` with a fake validator, two static rules and a fake Kubernetes API."""

    def __init__(
        self,
        fake: FakeValidator | None = None,
        features: Features | None = None,
        kube: FakeKubernetesApi | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.fake = fake or untrusted()
        self.kube = kube or FakeKubernetesApi()
        self.metrics = FakeMetrics()
        self.clock = FakeClock()
        self.validators: dict[str, Validator] = {
            "fake": self.fake,
            "allow": _static("allow", True),
            "deny": _static("deny", False),
        }
        limits = limits or Limits()
        self.verify = VerifyImage(POLICY, self.validators, self.metrics, limits=limits)
        self.review = ReviewAdmission(
            self.verify,
            features or Features(),
            self.clock,
            self.metrics,
            child_approval=ChildApproval(self.kube),
            limits=limits,
        )

    async def create(self, obj: dict[str, Any], budget: float = 5.0) -> RequestVerdict:
        return await self.review.execute(_command(obj, "CREATE", None, budget))

    async def update(
        self, old: dict[str, Any], new: dict[str, Any], budget: float = 5.0
    ) -> RequestVerdict:
        return await self.review.execute(_command(new, "UPDATE", old, budget))


def _static(name: str, approve: bool) -> StaticValidator:
    return StaticValidator(ValidatorSettings(name=name, type="static", approve=approve))


def _command(obj: dict[str, Any], operation: str, old: Any, budget: float) -> ReviewCommand:
    return ReviewCommand(
        uid="uid-1",
        kind=obj["kind"],
        operation=operation,
        namespace="ns",
        object=obj,
        old_object=old,
        budget_seconds=budget,
    )


def workload(
    kind: str,
    *images: str,
    name: str = "w",
    uid: str = "uid-w",
    owners: tuple[dict[str, Any], ...] = (),
    deleted: bool = False,
    init: tuple[str, ...] = (),
    ephemeral: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A Kubernetes object of ``kind`` in namespace ``ns`` whose pod spec runs ``images``."""
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid}
    if owners:
        meta["ownerReferences"] = list(owners)
    if deleted:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        meta["finalizers"] = ["example.com/hold"]
    pod_spec: dict[str, Any] = {"containers": _containers("c", images)}
    if init:
        pod_spec["initContainers"] = _containers("i", init)
    if ephemeral:
        pod_spec["ephemeralContainers"] = _containers("e", ephemeral)
    spec: dict[str, Any] = pod_spec
    if kind != "Pod":
        spec = {"template": {"metadata": {}, "spec": pod_spec}}
    if kind == "CronJob":
        spec = {"jobTemplate": {"spec": spec}}
    return {"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": meta, "spec": spec}


def _containers(prefix: str, images: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"name": f"{prefix}{i}", "image": image} for i, image in enumerate(images)]


def owner_ref(obj: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The ownerReference a controller writes for ``obj``."""
    ref = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
    }
    ref.update(overrides)
    return ref
