"""Rekor client for signatures that carry no offline bundle (:class:`TransparencyLog` port).

Two calls: ``POST /api/v1/index/retrieve`` (entry UUIDs for an artefact hash) and
``POST /api/v1/log/entries/retrieve`` (the entries). The entries are judged offline by
``domain.rekor`` (SET with the Rekor key, body must record the signature); nothing returned
here is trusted by itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from connaisseur.adapters.http import HttpClient, status_error
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import TransparencyLog
from connaisseur.domain import jsondoc
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.rekor import RekorEntry

MAX_ENTRIES = 16


def parse_entries(found: Any) -> list[RekorEntry]:
    """The entries of a ``/api/v1/log/entries/retrieve`` answer (a list of ``{uuid: entry}``
    objects); an entry that does not parse is left out (it proves nothing; others still may)."""
    entries: list[RekorEntry] = []
    for item in found if isinstance(found, list) else []:
        for raw in item.values() if isinstance(item, dict) else ():
            try:
                entries.append(RekorEntry.from_api(raw))
            except VerificationError:
                continue
    return entries


def api_entry(entry: RekorEntry) -> dict[str, Any]:
    """``entry`` in the form of Rekor's API answer (what :func:`parse_entries` reads back);
    entries the API answered always carry their signed entry timestamp."""
    answer: dict[str, Any] = {
        "body": base64.b64encode(entry.body).decode(),
        "integratedTime": entry.integrated_time,
        "logIndex": entry.log_index,
        "logID": entry.log_id,
    }
    if entry.signed_entry_timestamp is not None:
        stamp = base64.b64encode(entry.signed_entry_timestamp).decode()
        answer["verification"] = {"signedEntryTimestamp": stamp}
    return answer


class AiohttpRekorClient(TransparencyLog):
    """Looks entries up in a Rekor instance over the shared HTTP helper."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    async def find_entries(
        self, host: str, artifact_hash: str, deadline: Deadline
    ) -> Sequence[RekorEntry]:
        """Entries whose body references ``artifact_hash`` (at most ``MAX_ENTRIES``); an entry
        that does not parse is left out (it proves nothing; the others still may).

        Raises:
            VerificationError: transport and status errors (D9), ``malformed_trust_data``.
        """
        base = host.rstrip("/")
        uuids = await self._post(base + "/api/v1/index/retrieve", {"hash": artifact_hash}, deadline)
        if not isinstance(uuids, list) or not uuids:
            return []
        found = await self._post(
            base + "/api/v1/log/entries/retrieve",
            {"entryUUIDs": [u for u in uuids if isinstance(u, str)][:MAX_ENTRIES]},
            deadline,
        )
        return parse_entries(found)

    async def _post(self, url: str, body: Mapping[str, Any], deadline: Deadline) -> Any:
        resp = await self._http.request(
            "POST",
            url,
            deadline,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            data=json.dumps(body).encode(),
        )
        if resp.status == 404:
            return []
        error = status_error(resp.status, "Rekor")
        if error is not None:
            raise error
        try:
            return jsondoc.loads(resp.body)
        except ValueError as e:
            raise VerificationError(
                "Rekor answered with invalid JSON", category=Category.MALFORMED_TRUST_DATA
            ) from e
