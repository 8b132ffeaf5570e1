"""Fakes of the application's ports shared by every test layer (fakes over mocks).

Each names the Protocol it implements so mypy checks it where it is defined.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connaisseur.adapters.http import HttpResponse
from connaisseur.adapters.kubernetes import secret_data_of, workload_of
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import (
    Alert,
    AlertSink,
    Clock,
    Endpoint,
    KubernetesApi,
    Metrics,
    Notary,
    TransparencyLog,
)
from connaisseur.domain.errors import ConnaisseurError
from connaisseur.domain.rekor import RekorEntry
from connaisseur.domain.workload import OwnerReference, Workload

DEFAULT_NOW = datetime(2026, 11, 29, tzinfo=UTC)


class FakeClock(Clock):
    """Implements ``Clock``: wall time fixed at ``now``; monotonic time real, or, when
    ``frozen``, starting at 1000.0 and moved only by :meth:`advance` (budgets under control).
    """

    def __init__(self, now: datetime = DEFAULT_NOW, *, frozen: bool = False) -> None:
        self._now = now
        self._frozen = frozen
        self._offset = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        base = 1000.0 if self._frozen else time.monotonic()
        return base + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds


@dataclass
class FakeMetrics(Metrics):
    """Implements ``Metrics`` by recording every report in order."""

    admissions: list[tuple[bool, bool]] = field(default_factory=list)  # (allowed, timed_out)
    validations: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, category)
    skips: list[tuple[str, str, str]] = field(default_factory=list)  # (type, name, reason)

    def admission(self, allowed: bool, timed_out: bool, seconds: float) -> None:
        self.admissions.append((allowed, timed_out))

    def validation(
        self, validator_type: str, validator: str, category: str, seconds: float
    ) -> None:
        self.validations.append((validator_type, validator, category))

    def skipped(self, validator_type: str, validator: str, reason: str) -> None:
        self.skips.append((validator_type, validator, reason))

    def validation_results(self) -> Counter[tuple[str, str, str]]:
        """Validations counted as the Prometheus counter labels them: ``success`` or ``error``."""
        return Counter(
            (type_, name, "success" if category == "success" else "error")
            for type_, name, category in self.validations
        )


class FakeTransparencyLog(TransparencyLog):
    """Implements ``TransparencyLog`` over prepared API entries keyed by artefact hash;
    records every query; ``fail`` is raised by every query (an ``AssertionError`` there
    proves the log is never asked).
    """

    def __init__(
        self,
        entries: Mapping[str, list[RekorEntry]] | None = None,
        *,
        fail: Exception | None = None,
    ) -> None:
        self.entries = dict(entries or {})
        self.queries: list[tuple[str, str]] = []
        self.fail = fail

    async def find_entries(
        self, host: str, artifact_hash: str, deadline: Deadline
    ) -> list[RekorEntry]:
        self.queries.append((host, artifact_hash))
        if self.fail:
            raise self.fail
        return self.entries.get(artifact_hash, [])


def unreachable_transparency_log(
    reason: str = "Rekor must not be contacted",
) -> FakeTransparencyLog:
    """A log that fails the test if asked (every signature carries its bundle, or no tlog)."""
    return FakeTransparencyLog(fail=AssertionError(reason))


class FakeKubernetesApi(KubernetesApi):
    """Implements ``KubernetesApi`` over objects keyed by (apiVersion, kind, namespace, name);
    records every lookup; raises ``failure`` instead of answering while it is set."""

    def __init__(self, objects: list[Mapping[str, Any]] | None = None) -> None:
        self.objects: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
        self.gets: list[tuple[str, str, str, str]] = []
        self.failure: ConnaisseurError | None = None
        for obj in objects or []:
            self.add(obj)

    def add(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        self.objects[key] = obj

    async def owner(
        self, owner: OwnerReference, namespace: str, deadline: Deadline
    ) -> Workload | None:
        obj = self._get(owner.api_version, owner.kind, namespace, owner.name)
        return None if obj is None else workload_of(owner.kind, obj, namespace)

    async def secret_data(
        self, namespace: str, name: str, deadline: Deadline
    ) -> Mapping[str, bytes] | None:
        obj = self._get("v1", "Secret", namespace, name)
        return None if obj is None else secret_data_of(obj)

    def _get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> Mapping[str, Any] | None:
        key = (api_version, kind, namespace, name)
        self.gets.append(key)
        if self.failure is not None:
            raise self.failure
        return self.objects.get(key)


class FakeNotary(Notary):
    """Implements ``Notary``: serves whatever ``files`` holds for any GUN; records every call."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []

    async def fetch_roles(
        self, host: str, gun: str, roles: Sequence[str], endpoint: Endpoint, deadline: Deadline
    ) -> Mapping[str, bytes | None]:
        self.calls.append((host, gun, tuple(roles)))
        return {r: self.files.get(r) for r in roles}


class RecordingNotifier:
    """Stands in for the alert ``Notifier``: records that pending alerts were awaited."""

    def __init__(self) -> None:
        self.drained = 0

    async def drain(self) -> None:
        self.drained += 1


class CountingStream(io.StringIO):
    """A stream that remembers what was flushed (what a reader of stdout would see)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.visible = ""

    def flush(self) -> None:
        self.flushes += 1
        self.visible = self.getvalue()


class Ticks:
    """A monotonic clock (a callable) that moves only when told to (``now``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingAlertSink(AlertSink):
    """Implements ``AlertSink``: records the ``m`` field of every alert body it is sent."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def send(self, alert: Alert, deadline: Deadline) -> None:
        self.messages.append(json.loads(alert.body)["m"])


class ScriptedHttp:
    """Stands in for ``adapters.http.HttpClient``: answers requests from a script, in order
    (the last answer repeats), so the adapters read attacker-chosen statuses, headers and
    bodies."""

    def __init__(self, script: Sequence[tuple[int, Mapping[str, str], bytes]]) -> None:
        self._script = list(script)
        self.requests: list[str] = []

    async def request(self, method: str, url: str, deadline: Deadline, **_: Any) -> HttpResponse:
        self.requests.append(f"{method} {url}")
        status, headers, body = self._script[min(len(self.requests), len(self._script)) - 1]
        return HttpResponse(url=url, status=status, headers=dict(headers), body=body)
