"""``AlertSink`` over the shared :class:`HttpClient`: one POST per alert, bounded by a deadline."""

from __future__ import annotations

from connaisseur.adapters.http import HttpClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Alert, AlertSink
from connaisseur.domain.errors import Category, ConnaisseurError

#: Receivers answer with a short acknowledgement; anything longer is not read.
_MAX_ANSWER_BYTES = 64 * 1024


class AiohttpAlertSink(AlertSink):
    """Posts rendered alerts; every failure becomes ``send_failed`` (or ``timeout``)."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    async def send(self, alert: Alert, deadline: Deadline) -> None:
        """POST ``alert.body`` to ``alert.url`` with its headers.

        Raises:
            ConnaisseurError: ``send_failed`` for transport errors and non-2xx answers,
                ``timeout`` when the deadline passes first.
        """
        try:
            response = await self._http.request(
                "POST",
                alert.url,
                deadline,
                headers=dict(alert.headers),
                data=alert.body,
                max_bytes=_MAX_ANSWER_BYTES,
            )
        except ConnaisseurError as e:
            category = Category.TIMEOUT if e.category is Category.TIMEOUT else Category.SEND_FAILED
            raise ConnaisseurError(e.message, category=category) from e
        if not 200 <= response.status < 300:
            # The receiver's body is not quoted: it may echo secrets or be arbitrarily long.
            raise ConnaisseurError(
                f"receiver answered HTTP {response.status}", category=Category.SEND_FAILED
            )
