"""``KubernetesApi``: GET one owner object (automatic child approval) or Secret (``k8s://``
cosign keys) with the service account, answered as typed values.

In cluster: ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, the bearer token from
the projected service-account token file (re-read when it changes, since bound tokens rotate)
and that account's CA as the only trust root.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from connaisseur.adapters.http import HttpClient, status_error
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import KubernetesApi
from connaisseur.domain.errors import Category, VerificationError, WorkloadError
from connaisseur.domain.workload import OwnerReference, Workload

log = logging.getLogger(__name__)

_MAX_OBJECT_BYTES = 1024 * 1024
_REQUEST_CAP_SECONDS = 3.0
#: DNS-1123 names and API groups/versions: nothing that could change the request path.
_SEGMENT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?$")


def object_path(api_version: str, kind: str, namespace: str, name: str) -> str | None:
    """The API path of a namespaced object (``None`` when a part is not a valid segment)."""
    group, _, version = api_version.rpartition("/")
    resource = kind.lower() + "s"
    if not all(_SEGMENT.match(p) for p in (version, resource, namespace, name)):
        return None
    if group and not _SEGMENT.match(group):
        return None
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{base}/namespaces/{quote(namespace)}/{resource}/{quote(name)}"


class ServiceAccountToken:
    """The projected token, re-read when the file's modification time changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime = -1.0
        self._token = ""

    def get(self) -> str:
        try:
            mtime = os.stat(self._path).st_mtime
            if mtime != self._mtime:
                self._token = self._path.read_text().strip()
                self._mtime = mtime
        except OSError as e:
            log.warning("cannot read service account token %s: %s", self._path, e.strerror)
            return ""
        return self._token


class AiohttpKubernetesApi(KubernetesApi):
    """Reads workload objects and Secrets from the API server. Only a 404 means "not found";
    an API server that cannot answer is an error of a transient category, so that an outage is
    never mistaken for (or cached as) a missing object
    (docs/decisions/0009-transient-vs-permanent.md)."""

    def __init__(
        self, http: HttpClient, base_url: str, token: ServiceAccountToken, ca_pem: str | None
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token = token
        self._ca_pem = ca_pem

    async def owner(
        self, owner: OwnerReference, namespace: str, deadline: Deadline
    ) -> Workload | None:
        """The owner read as a workload of its kind (``None``: absent, or not a workload)."""
        obj = await self._get(owner.api_version, owner.kind, namespace, owner.name, deadline)
        return None if obj is None else workload_of(owner.kind, obj, namespace)

    async def secret_data(
        self, namespace: str, name: str, deadline: Deadline
    ) -> Mapping[str, bytes] | None:
        """The Secret's decoded ``data`` (``None`` when the Secret does not exist)."""
        obj = await self._get("v1", "Secret", namespace, name, deadline)
        return None if obj is None else secret_data_of(obj)

    async def _get(
        self, api_version: str, kind: str, namespace: str, name: str, deadline: Deadline
    ) -> Mapping[str, Any] | None:
        """The object, or ``None`` when it does not exist (404, or a name no object can have).

        Raises:
            VerificationError: the API server cannot be reached or does not answer in time
                (``fetch_failed``, ``timeout``), answers 5xx (``unavailable``), 429
                (``rate_limited``), 401/403 (``unauthorized``), another status or a body that
                is not a JSON object (``fetch_failed``).
        """
        path = object_path(api_version, kind, namespace, name)
        if path is None:
            return None
        what = f"Kubernetes API: {kind} {namespace}/{name}"
        response = await self._http.request(
            "GET",
            self._base + path,
            _capped(deadline),
            headers=self._headers(),
            ca_pem=self._ca_pem,
            max_bytes=_MAX_OBJECT_BYTES,
        )
        if response.status == 404:
            return None
        failed = status_error(response.status, what) if response.status != 200 else None
        if failed is not None:
            raise failed
        try:
            document = json.loads(response.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise VerificationError(
                f"{what}: the answer is not a JSON object", category=Category.FETCH_FAILED
            )
        return document

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self._token.get()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers


def _capped(deadline: Deadline) -> Deadline:
    # An owner lookup only saves work: never let it eat more than a few seconds of the budget.
    remaining = min(deadline.remaining(), _REQUEST_CAP_SECONDS)
    return Deadline.after(deadline.clock, remaining)


def workload_of(kind: str, obj: Mapping[str, Any], namespace: str) -> Workload | None:
    """A stored object as a workload; ``None`` when it has no containers or is malformed, so
    that it lends no approval."""
    try:
        return Workload.parse(kind, obj, namespace)
    except WorkloadError as e:
        log.info("%s %s/%s is no workload: %s", kind, namespace, _name(obj), e)
        return None


def secret_data_of(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's ``data`` values decoded; a value that is not base64 (the API server never
    serves one) is left out, as if the key were absent."""
    data = obj.get("data")
    if not isinstance(data, Mapping):
        return {}
    decoded: dict[str, bytes] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
    return decoded


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""
