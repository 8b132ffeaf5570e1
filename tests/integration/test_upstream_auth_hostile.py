"""The shared upstream authentication and redirect policy against hostile upstreams.

A registry, Notary server, token service or CDN run on 127.0.0.1 under non-loopback names
(``tests/support/hostile_upstream.py``), so the policies judge the names a real attacker would
use while nothing leaves the machine. Each regression is named after the weakness it closes
(docs/decisions/0026-upstream-credentials-and-redirects.md).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
from aiohttp import web

from connaisseur.adapters.http import MAX_REDIRECTS, HttpClient
from connaisseur.adapters.notary import NotaryV1HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import BlobRef, Endpoint
from connaisseur.application.settings import AuthSettings, Credentials
from connaisseur.domain.errors import Category, VerificationError
from connaisseur.domain.image import ImageReference
from tests.support.fakes import FakeClock
from tests.support.hostile_upstream import (
    Handler,
    Upstream,
    challenge,
    named_session,
    redirect,
    respond,
    running,
    tls_for_names,
)
from tests.support.tls import TlsFiles

pytestmark = pytest.mark.integration

BLOB = b"signature layer"
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
ALICE = Credentials(username="alice", password="alice-secret")
GUN = "registry.test/team/app"
BLOB_PATH = f"/v2/team/app/blobs/{BLOB_DIGEST}"


def bearer_challenge(realm: str) -> Handler:
    """An upstream's answer that asks for a Bearer token from ``realm``."""
    return respond(b"", 401, challenge("Bearer", realm=realm))


def basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return tls_for_names(tmp_path_factory.mktemp("hostile-tls"))


@pytest.fixture
async def https(tls: TlsFiles) -> AsyncIterator[Upstream]:
    async with running(Upstream(), tls) as upstream:
        yield upstream


@pytest.fixture
async def other_https(tls: TlsFiles) -> AsyncIterator[Upstream]:
    async with running(Upstream(), tls) as upstream:
        yield upstream


@pytest.fixture
async def plain() -> AsyncIterator[Upstream]:
    async with running(Upstream(), None) as upstream:
        yield upstream


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with named_session() as session:
        yield HttpClient(session)


def deadline() -> Deadline:
    return Deadline.after(FakeClock(), 10)


def endpoint(tls: TlsFiles, server: str, creds: Credentials | None = ALICE) -> Endpoint:
    credentials = ((server, creds),) if creds else ()
    return Endpoint(auth=AuthSettings(credentials=credentials), ca_pem=tls.ca_pem)


async def fetch_blob(http: HttpClient, tls: TlsFiles, registry: Upstream) -> bytes:
    server = f"registry.test:{registry.port}"
    image = ImageReference.parse(f"{server}/team/app:1")
    client = AiohttpRegistryClient(http, FakeClock())
    return await client.blob(image, BlobRef(digest=BLOB_DIGEST), endpoint(tls, server), deadline())


async def fetch_roles(
    http: HttpClient, tls: TlsFiles, base: str, server: str, creds: Credentials | None = ALICE
) -> object:
    client = NotaryV1HttpClient(http)
    return await client.fetch_roles(base, GUN, ["root"], endpoint(tls, server, creds), deadline())


async def refused(call: Awaitable[object], reason: str, untouched: Upstream) -> None:
    """``call`` fails with ``fetch_failed`` naming ``reason``; ``untouched`` got no request."""
    with pytest.raises(VerificationError) as info:
        await call
    assert info.value.category is Category.FETCH_FAILED
    assert reason in info.value.message
    assert untouched.seen == []


# --- token realms --------------------------------------------------------------------------------


async def test_notary_token_flow_never_sends_credentials_to_a_plain_http_realm(
    http: HttpClient, tls: TlsFiles, https: Upstream, plain: Upstream
) -> None:
    # Before: the Notary client sent Basic credentials to any http(s) realm, on any host.
    realm = f"http://auth.test:{plain.port}/token"
    https.routes["/v2/"] = respond(b"", 401, challenge("Bearer", realm=realm, service="notary"))
    plain.routes["/token"] = respond(b'{"token": "t"}')
    server = f"notary.test:{https.port}"
    call = fetch_roles(http, tls, f"https://{server}", server)
    await refused(call, "plain HTTP is allowed only between loopback hosts", plain)


async def test_registry_refuses_a_plain_http_loopback_realm_named_by_a_remote_registry(
    http: HttpClient, tls: TlsFiles, https: Upstream, plain: Upstream
) -> None:
    # Before: a plain-HTTP realm was allowed whenever the realm was loopback, so a remote
    # registry could make us send its credentials in clear to a local service.
    realm = f"http://127.0.0.1:{plain.port}/token"
    https.routes[BLOB_PATH] = bearer_challenge(realm)
    plain.routes["/token"] = respond(b'{"token": "t"}')
    await refused(fetch_blob(http, tls, https), "loopback hosts", plain)


async def test_registry_realm_with_userinfo_is_refused(
    http: HttpClient, tls: TlsFiles, https: Upstream, other_https: Upstream
) -> None:
    realm = f"https://x:y@auth.test:{other_https.port}/token"
    https.routes[BLOB_PATH] = bearer_challenge(realm)
    await refused(fetch_blob(http, tls, https), "userinfo", other_https)


async def test_https_realm_on_another_host_gets_the_token_request(
    http: HttpClient, tls: TlsFiles, https: Upstream, other_https: Upstream
) -> None:
    # Docker Hub's shape: registry-1.docker.io names auth.docker.io.
    realm = f"https://auth.test:{other_https.port}/token"

    async def blob(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") == "Bearer good":
            return web.Response(body=BLOB)
        return web.Response(status=401, headers=challenge("Bearer", realm=realm, service="reg"))

    https.routes[BLOB_PATH] = blob
    other_https.routes["/token"] = respond(b'{"token": "good", "expires_in": 300}')
    assert await fetch_blob(http, tls, https) == BLOB
    (token_request,) = other_https.seen
    assert token_request.authorization == basic(ALICE)
    assert "scope=repository:team/app:pull" in token_request.path_qs
    assert "account=alice" in token_request.path_qs


async def test_notary_basic_challenge_over_plain_http_to_the_network_gets_no_credentials(
    http: HttpClient, tls: TlsFiles, plain: Upstream
) -> None:
    plain.routes["/v2/"] = respond(b"", 401, challenge("Basic", realm="notary"))
    server = f"notary.test:{plain.port}"
    with pytest.raises(VerificationError, match="plain HTTP"):
        await fetch_roles(http, tls, f"http://{server}", server)
    assert all(seen.authorization is None for seen in plain.seen)


async def test_notary_tokens_are_cached_per_credential_identity(
    http: HttpClient, tls: TlsFiles, https: Upstream
) -> None:
    # Before: the Notary token cache was keyed by user name only, so a validator with the
    # right user name and a wrong password reused another validator's token.
    realm = f"https://notary.test:{https.port}/token"
    https.routes["/v2/"] = respond(b"", 401, challenge("Bearer", realm=realm))

    async def token(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != basic(ALICE):
            return web.Response(status=401)
        return web.json_response({"token": "alice-token", "expires_in": 300})

    async def role(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer alice-token":
            return web.Response(status=401)
        return web.Response(body=b"{}")

    https.routes["/token"] = token
    https.routes[f"/v2/{GUN}/_trust/tuf/root.json"] = role
    server = f"notary.test:{https.port}"
    client = NotaryV1HttpClient(http)
    alice = endpoint(tls, server)
    impostor = endpoint(tls, server, Credentials(username="alice", password="guess"))
    assert await client.fetch_roles(f"https://{server}", GUN, ["root"], alice, deadline())
    with pytest.raises(VerificationError) as info:
        await client.fetch_roles(f"https://{server}", GUN, ["root"], impostor, deadline())
    assert info.value.category is Category.UNAUTHORIZED


# --- redirects -----------------------------------------------------------------------------------


async def test_redirect_from_https_to_plain_http_is_refused(
    http: HttpClient, tls: TlsFiles, https: Upstream, plain: Upstream
) -> None:
    # Before: every redirect was followed, including a downgrade to plain HTTP on any host.
    https.routes[BLOB_PATH] = redirect(f"http://cdn.test:{plain.port}/blob")
    plain.routes["/blob"] = respond(BLOB)
    await refused(fetch_blob(http, tls, https), "plain HTTP", plain)


async def test_redirect_to_another_https_host_is_followed_without_credentials(
    http: HttpClient, tls: TlsFiles, https: Upstream, other_https: Upstream
) -> None:
    async def blob(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != basic(ALICE):
            return web.Response(status=401, headers=challenge("Basic", realm="r"))
        return await redirect(f"https://cdn.test:{other_https.port}/blob?sig=1")(request)

    https.routes[BLOB_PATH] = blob
    other_https.routes["/blob"] = respond(BLOB)
    assert await fetch_blob(http, tls, https) == BLOB
    (cdn_request,) = other_https.seen
    assert cdn_request.authorization is None
    assert cdn_request.host == f"cdn.test:{other_https.port}"


async def test_redirect_within_the_origin_keeps_credentials(
    http: HttpClient, tls: TlsFiles, https: Upstream
) -> None:
    async def blob(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != basic(ALICE):
            return web.Response(status=401, headers=challenge("Basic", realm="r"))
        return await redirect("/storage/blob")(request)

    async def storage(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == basic(ALICE)
        return web.Response(body=BLOB)

    https.routes[BLOB_PATH] = blob
    https.routes["/storage/blob"] = storage
    assert await fetch_blob(http, tls, https) == BLOB


async def test_redirect_with_userinfo_is_refused(
    http: HttpClient, tls: TlsFiles, https: Upstream, other_https: Upstream
) -> None:
    https.routes[BLOB_PATH] = redirect(f"https://u:p@cdn.test:{other_https.port}/blob")
    await refused(fetch_blob(http, tls, https), "userinfo", other_https)


async def test_redirect_loop_ends(http: HttpClient, tls: TlsFiles, https: Upstream) -> None:
    https.routes[BLOB_PATH] = redirect("/again")
    https.routes["/again"] = redirect("/again")
    with pytest.raises(VerificationError, match=f"more than {MAX_REDIRECTS} times"):
        await fetch_blob(http, tls, https)
    assert len(https.seen) == MAX_REDIRECTS + 1


async def test_token_request_redirected_to_plain_http_is_refused(
    http: HttpClient, tls: TlsFiles, https: Upstream, plain: Upstream
) -> None:
    realm = f"https://auth.test:{https.port}/token"
    https.routes[BLOB_PATH] = bearer_challenge(realm)
    https.routes["/token"] = redirect(f"http://auth.test:{plain.port}/token")
    plain.routes["/token"] = respond(b'{"token": "t"}')
    await refused(fetch_blob(http, tls, https), "plain HTTP", plain)


async def test_post_is_not_redirected(http: HttpClient, tls: TlsFiles, https: Upstream) -> None:
    https.routes["/hook"] = redirect("/elsewhere", status=307)
    url = f"https://registry.test:{https.port}/hook"
    resp = await http.request("POST", url, deadline(), data=b"{}", ca_pem=tls.ca_pem)
    assert resp.status == 307
    assert [seen.path_qs for seen in https.seen] == ["/hook"]


def test_names_used_here_are_not_loopback(tmp_path: Path) -> None:
    # The point of the resolver: these names reach 127.0.0.1 but are judged as remote hosts.
    from connaisseur.domain.urls import is_loopback

    assert not any(is_loopback(name) for name in ("registry.test", "auth.test", "cdn.test"))
