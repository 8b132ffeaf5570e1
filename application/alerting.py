"""Alerting, as Connaisseur v3 configures it: notify receivers of admitted and rejected requests.

Differences from Connaisseur, on purpose:
* every send has a timeout: blocking receivers (``failIfAlertSendingFails``) draw on the
  request's budget, background ones on a cap of their own, so nothing hangs forever;
* the receiver named in an error is the one that failed;
* templates are parsed at start-up (``domain.alert_template``), so a broken template stops
  start-up instead of failing every request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Alert, AlertSink, Clock
from connaisseur.domain.alert_template import AlertTemplate
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.verdict import Outcome, RequestVerdict

log = logging.getLogger(__name__)

#: Outcomes whose alerts go to the ``admitRequest`` receivers; the rest go to ``rejectRequest``.
ADMIT_OUTCOMES = frozenset({Outcome.SUCCESS, Outcome.SKIP})
BACKGROUND_SEND_SECONDS = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Receiver:
    """One entry of ``admitRequest.receivers`` / ``rejectRequest.receivers``."""

    name: str  # "<template>-<index>"
    template: AlertTemplate
    url: str
    priority: int = 3
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    payload_fields: Mapping[str, Any] | None = None
    fail_if_sending_fails: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertingSettings:
    """The loaded ``alerting`` block with templates already parsed."""

    cluster: str = "not specified"
    admit: tuple[Receiver, ...] = ()
    reject: tuple[Receiver, ...] = ()
    pod_name: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.admit or self.reject)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertContext:
    """What an alert says about one admission request."""

    uid: str
    namespace: str
    outcome: Outcome
    message: str  # the alert_message placeholder
    images: str


def alert_context(uid: str, namespace: str, verdict: RequestVerdict) -> AlertContext:
    """The alert for ``verdict`` as decided before detection/pods-only overrides."""
    outcome = verdict.outcome
    if outcome in ADMIT_OUTCOMES:
        message = "CONNAISSEUR admitted a request"
        images = ", ".join(v.image for v in verdict.images if v.patches)
    elif outcome is Outcome.TIMEOUT:
        message = f"CONNAISSEUR validation timed out for admission request {uid}"
        images = ""
    elif outcome is Outcome.INVALID:
        message = f"CONNAISSEUR failed to parse admission request {uid}"
        images = ""
    else:
        message = f"CONNAISSEUR rejected a request: {verdict.message or ''}"
        images = ", ".join(v.image for v in verdict.images if not v.allowed)
    return AlertContext(
        uid=uid, namespace=namespace, outcome=outcome, message=message, images=images
    )


class Notifier:
    """Renders and sends the alerts of one request; raises only for blocking receivers."""

    def __init__(self, settings: AlertingSettings, sink: AlertSink, clock: Clock) -> None:
        self._settings = settings
        self._sink = sink
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()

    async def notify(self, context: AlertContext, deadline: Deadline) -> None:
        """Send to every receiver of the outcome's category, concurrently.

        Raises:
            ConnaisseurError: ``send_failed`` (or ``template_error``, ``timeout``) when a
                receiver with ``failIfAlertSendingFails`` could not be notified in time.
        """
        admit = context.outcome in ADMIT_OUTCOMES
        receivers = self._settings.admit if admit else self._settings.reject
        blocking: list[asyncio.Task[None]] = []
        names: list[str] = []
        for receiver in receivers:
            if receiver.fail_if_sending_fails:
                blocking.append(asyncio.ensure_future(self._send(receiver, context, deadline)))
                names.append(receiver.name)
            else:
                self._send_in_background(receiver, context)
        if blocking:
            await self._await_blocking(blocking, names, "admit" if admit else "reject", deadline)

    async def _await_blocking(
        self,
        tasks: Sequence[asyncio.Task[None]],
        names: Sequence[str],
        kind: str,
        deadline: Deadline,
    ) -> None:
        _, late = await asyncio.wait(tasks, timeout=deadline.remaining())
        for task in late:
            task.cancel()
        for i, task in enumerate(tasks):
            if task in late:
                raise ConnaisseurError(
                    f"timeout during handling of receiver {i}/{len(tasks)} ({names[i]}) "
                    f"of {kind} alerts",
                    category=Category.TIMEOUT,
                )
            error = task.exception()
            if error is not None:
                category = getattr(error, "category", Category.SEND_FAILED)
                raise ConnaisseurError(
                    f"failed sending a notification for receiver {names[i]} with FailOnError "
                    f"set: {getattr(error, 'message', error)}",
                    category=category,
                ) from error

    def _send_in_background(self, receiver: Receiver, context: AlertContext) -> None:
        deadline = Deadline.after(self._clock, BACKGROUND_SEND_SECONDS)
        task = asyncio.ensure_future(self._send_logged(receiver, context, deadline))
        self._background.add(task)  # keep a reference until done (asyncio holds weak ones)
        task.add_done_callback(self._background.discard)

    async def _send_logged(
        self, receiver: Receiver, context: AlertContext, deadline: Deadline
    ) -> None:
        try:
            await self._send(receiver, context, deadline)
        except ConnaisseurError as e:
            log.warning("alert to receiver %s failed: %s", receiver.name, e.message)

    async def _send(self, receiver: Receiver, context: AlertContext, deadline: Deadline) -> None:
        body = receiver.template.payload(self._values(receiver, context), receiver.payload_fields)
        if body is None:
            log.warning("template of receiver %s renders empty: nothing sent", receiver.name)
            return
        alert = Alert(url=receiver.url, body=body, headers=receiver.headers)
        try:
            await self._sink.send(alert, deadline)
        except ConnaisseurError as e:
            raise ConnaisseurError(
                f"failed to send notification for receiver {receiver.name}: {e.message}",
                category=Category.SEND_FAILED if e.category is not Category.TIMEOUT else e.category,
            ) from e

    def _values(self, receiver: Receiver, context: AlertContext) -> dict[str, str | int]:
        return {
            "alert_message": context.message,
            "priority": receiver.priority,
            "connaisseur_pod_id": self._settings.pod_name,
            "namespace": context.namespace,
            "cluster": self._settings.cluster,
            "timestamp": _go_timestamp(self._clock.now()),
            "request_id": context.uid,
            "images": context.images,
        }

    async def drain(self) -> None:
        """Wait for background sends (shutdown, CLI exit)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _go_timestamp(now: datetime) -> str:
    """Go's default ``time.Time`` format in UTC: ``2025-01-24 12:43:46.123456789 +0000 UTC``."""
    return now.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 +0000 UTC"
