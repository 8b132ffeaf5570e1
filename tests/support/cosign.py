"""Test support for the cosign validator: signers, cosign layouts and registry mocks.

* :class:`Signer` / :func:`sign_layout` — keys generated per session, simple-signing payloads
  and the ``sha256-<hex>.sig`` manifest exactly as cosign writes them.
* :class:`TreeRegistry` — the conformance ``cosign_registry`` mock: serves a directory tree
  (``<repo>/manifests/<tag>.json``, ``<repo>/blobs/sha256:<hex>.json``), aliases manifests
  by digest, records every request; optional Basic/Bearer challenges.
* :class:`FakeRekor` — a Rekor that signs entries (SET) with a test log key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from connaisseur.adapters.rekor import api_entry
from connaisseur.domain.cosign_layout import SIMPLE_SIGNING_MEDIA_TYPE
from connaisseur.domain.rekor import RekorEntry
from connaisseur.domain.sigstore import log_id

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Signer:
    """A private key and how it signs (ECDSA SHA-256, RSA PKCS#1 v1.5 or PSS, Ed25519)."""

    key: PrivateKey
    rsa_pss: bool = False

    @property
    def public_pem(self) -> str:
        return public_pem(self.key)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(self.key, rsa.RSAPrivateKey):
            if self.rsa_pss:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                return self.key.sign(data, pss, hashes.SHA256())
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(data)


def payload(digest: str, reference: str) -> bytes:
    """A simple-signing payload as cosign writes it."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layout:
    """A signature manifest and its blobs, ready to push or serve."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)


def sign_layout(
    signatures: Sequence[tuple[bytes, bytes, Mapping[str, str]]],
) -> Layout:
    """Build the ``.sig`` manifest: one simple-signing layer per (payload, signature, extra
    annotations); the config blob is an empty JSON object like cosign's."""
    config = b"{}"
    blobs = {sha256(config): config}
    layers = []
    for body, signature, extra in signatures:
        blobs[sha256(body)] = body
        annotations = {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()}
        annotations.update(extra)
        layers.append(
            {
                "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                "size": len(body),
                "digest": sha256(body),
                "annotations": annotations,
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": len(config),
            "digest": sha256(config),
        },
        "layers": layers,
    }
    return Layout(manifest=json.dumps(manifest).encode(), blobs=blobs)


def image_manifest(seed: str) -> tuple[bytes, dict[str, bytes]]:
    """A tiny Docker v2 schema 2 image manifest with a config and one layer blob."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer {seed}".encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": sha256(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(layer),
                "digest": sha256(layer),
            }
        ],
    }
    return json.dumps(manifest).encode(), {sha256(config): config, sha256(layer): layer}


class FakeRekor:
    """Makes Rekor entries (hashedrekord) and their SETs with a test log key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public_pem = public_pem(self.key)
        self.log_id = log_id(self.key.public_key())
        self.index = 1000

    def entry(
        self, body_payload: bytes, signature: bytes, signer_pem: str, integrated: int
    ) -> RekorEntry:
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {
                    "hash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(body_payload).hexdigest(),
                    }
                },
                "signature": {
                    "content": base64.b64encode(signature).decode(),
                    "publicKey": {"content": base64.b64encode(signer_pem.encode()).decode()},
                },
            },
        }
        self.index += 1
        unsigned = RekorEntry(
            body=json.dumps(body).encode(),
            integrated_time=integrated,
            log_index=self.index,
            log_id=self.log_id,
            signed_entry_timestamp=b"",
        )
        set_ = self.key.sign(unsigned.canonical_payload(), ec.ECDSA(hashes.SHA256()))
        return RekorEntry(
            body=unsigned.body,
            integrated_time=integrated,
            log_index=unsigned.log_index,
            log_id=self.log_id,
            signed_entry_timestamp=set_,
        )

    @staticmethod
    def bundle(entry: RekorEntry) -> str:
        if entry.signed_entry_timestamp is None:
            raise ValueError("a Rekor bundle needs the entry's signed entry timestamp")
        return json.dumps(
            {
                "SignedEntryTimestamp": base64.b64encode(entry.signed_entry_timestamp).decode(),
                "Payload": {
                    "body": base64.b64encode(entry.body).decode(),
                    "integratedTime": entry.integrated_time,
                    "logIndex": entry.log_index,
                    "logID": entry.log_id,
                },
            }
        )

    @staticmethod
    def api_entry(entry: RekorEntry) -> dict[str, Any]:
        return api_entry(entry)


@dataclass
class TreeRegistry:
    """The conformance registry mock over a directory tree; records requests.

    ``auth`` is ``None`` (open), ``"basic-record"`` (always 401 Basic; records credentials, the
    ``cosign_basic_auth_registry`` of the vectors) or ``"bearer"`` (token flow via ``/token``).
    """

    root: Path
    auth: str | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    basic_seen: list[str] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)
    status_override: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    on_request: Callable[[web.Request], None] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/token", self._token)
        app.router.add_route("*", "/{path:.*}", self._serve)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests.append(request.query_string)
        return web.json_response({"token": "tok-123", "expires_in": 300})

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.on_request is not None:
            self.on_request(request)
        if self.auth == "basic-record":
            self.basic_seen.append(_basic_user(request.headers.get("Authorization", "")))
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="test"'})
        if self.auth == "bearer" and request.headers.get("Authorization") != "Bearer tok-123":
            realm = f"http://{request.host}/token"
            challenge = f'Bearer realm="{realm}",service="mock",scope="repository:x:pull"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        for prefix, (status, headers) in self.status_override.items():
            if request.path.startswith(prefix):
                return web.Response(status=status, headers=headers)
        if request.path in ("/v2/", "/v2"):
            return web.Response(text="ok")
        body = self._lookup(request.path.removeprefix("/v2/"))
        if body is None:
            return web.Response(status=404)
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(body))})
        return web.Response(body=body)

    def _lookup(self, path: str) -> bytes | None:
        file = self.root / (path + ".json")
        if file.is_file():
            return file.read_bytes()
        repo, _, ref = path.partition("/manifests/")
        if ref.startswith("sha256:"):
            for candidate in (self.root / repo / "manifests").glob("*.json"):
                data = candidate.read_bytes()
                if sha256(data) == ref:
                    return data
        return None


def _basic_user(header: str) -> str:
    if not header.startswith("Basic "):
        return ""
    return base64.b64decode(header[6:]).decode()
