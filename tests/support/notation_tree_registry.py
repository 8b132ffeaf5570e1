"""The conformance ``notation_registry`` mock (cases.yaml → ``mock_servers``), as an aiohttp app.

* ``GET|HEAD /v2/`` → 200 ``ok``;
* ``GET|HEAD /v2/<repo>/<kind>/<ref>`` → the bytes of ``<root>/<repo>/<kind>/<ref>.json`` with
  ``Docker-Content-Digest: sha256:<hex of the body>`` and ``Content-Type`` = the file's
  ``mediaType`` (manifests) or ``application/vnd.cncf.notary.payload.v1+json`` (blobs);
  HEAD answers like GET without a body;
* anything else → 404, including the referrers API ``/v2/<repo>/referrers/<digest>``, so a
  client must fall back to the ``sha256-<hex>`` referrers tag.

Served over HTTPS with ``notation/server-cert.pem`` / ``server-key.pem`` by the caller.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"


@dataclass
class NotationTreeRegistry:
    """Serves ``root``; records ``(method, path)`` of every request."""

    root: Path
    requests: list[tuple[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs))
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        if request.path in ("/v2/", "/v2"):
            return web.Response(text="ok")
        found = self._file(request.path.removeprefix("/v2/"))
        if found is None:
            return web.Response(status=404)
        body, kind = found
        headers = {
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "Content-Type": self._content_type(body, kind),
        }
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        return web.Response(body=body, headers=headers)

    def _file(self, path: str) -> tuple[bytes, str] | None:
        for kind in ("manifests", "blobs"):
            repo, sep, ref = path.partition(f"/{kind}/")
            if sep and "/" not in ref:
                file = self.root / repo / kind / f"{ref}.json"
                if file.is_file() and file.resolve().is_relative_to(self.root.resolve()):
                    return file.read_bytes(), kind
        return None

    @staticmethod
    def _content_type(body: bytes, kind: str) -> str:
        if kind == "blobs":
            return PAYLOAD_TYPE
        media_type = json.loads(body).get("mediaType")
        return media_type if isinstance(media_type, str) else "application/octet-stream"
