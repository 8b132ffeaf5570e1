"""The token service a registry in token-auth mode trusts (``registry_server(token=...)``:
Debian's ``docker-registry`` or its container).

The registry (distribution 2.8) verifies every Bearer token itself: an ES256 JWT whose ``x5c``
certificate is in the registry's ``rootcertbundle``, with issuer, audience, lifetime and the
``access`` claim checked — so a client's token flow is tested against the real thing, not a
proxy. :class:`TokenService` issues those tokens to users it knows, for the pulls it grants.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.servers import TokenAuth
from tests.support.tls import certificate

ISSUER = "connaisseur-test-issuer"
SERVICE = "test-registry"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    """Issues registry tokens: ``users`` are name → password, ``grants`` name → repositories
    they may pull. Anonymous requests get a token without access. Records each request."""

    users: Mapping[str, str]
    grants: Mapping[str, frozenset[str]]
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (query, user)

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = certificate(
            "token-signer",
            self._key,
            not_before=now - dt.timedelta(hours=1),
            not_after=now + dt.timedelta(days=1),
        )

    def bundle_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self._token)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        user = self._user(request.headers.get("Authorization", ""))
        self.requests.append((request.query_string, user))
        if user == "":
            return web.Response(status=401)
        allowed = self.grants.get(user or "", frozenset())
        access = []
        for scope in request.query.getall("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name in allowed and "pull" in actions.split(","):
                access.append({"type": "repository", "name": name, "actions": ["pull"]})
        return web.json_response({"token": self.jwt(user or "", access), "expires_in": 300})

    def _user(self, header: str) -> str | None:
        """The authenticated user, ``None`` for anonymous, ``""`` for wrong credentials."""
        if not header.startswith("Basic "):
            return None
        name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return name if self.users.get(name) == password else ""

    def jwt(self, subject: str, access: Sequence[Mapping[str, object]]) -> str:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        r, s = decode_dss_signature(
            self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def token_auth(realm: str, bundle: Path) -> TokenAuth:
    """The ``auth:`` of a registry that trusts tokens signed by ``bundle``'s certificate
    (:class:`TokenService`'s) and sends clients to ``realm`` for them."""
    return TokenAuth(realm=realm, service=SERVICE, issuer=ISSUER, rootcertbundle=bundle)
