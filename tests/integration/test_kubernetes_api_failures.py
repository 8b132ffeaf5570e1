"""The Kubernetes API adapter tells "not found" from "cannot tell", against a local HTTPS server
answering as the API server does (statuses, bodies, delays) and against a closed port.

Before, every failure read as "not found": an API outage after a ``k8s://`` key's time to live
denied its images as ``trust_root_not_found`` (a permanent category), and that denial was
cached, so the images stayed denied after the API came back. Now only a 404 is "not found"; an
outage is transient (docs/decisions/0009-transient-vs-permanent.md) and never cached
(docs/decisions/0005-honest-cache.md).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from dependency_injector import providers

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.kubernetes import AiohttpKubernetesApi, ServiceAccountToken
from connaisseur.application.deadline import Deadline
from connaisseur.application.verify import VerifyImageCommand
from connaisseur.domain.errors import TRANSIENT_CATEGORIES, Category, ConnaisseurError
from tests.support.cosign import TreeRegistry
from tests.support.fakes import FakeClock
from tests.support.in_cluster import pod_container
from tests.support.processes import free_port
from tests.support.servers import serving
from tests.support.tls import TlsFiles, make_tls, server_context

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "conformance" / "data"
# conformance case cosign-025: signed by alice
IMAGE = "securesystemsengineering/testimage:multi-cosigned-alice"
DIGEST = "sha256:071bf7a986f1ca9cb2a1f0bc8392822a7777f90d58f2d2c6f271913e08de7c81"
TOKEN = "sa-token"


def alice_secret() -> dict[str, Any]:
    doc = yaml.safe_load((DATA / "cosign" / "01_cosign.yaml").read_text())
    pem = next(r["key"] for r in doc["trustRoots"] if r["name"] == "alice")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "alice-key", "namespace": "signing"},
        "data": {"cosign.pub": base64.b64encode(pem.encode()).decode()},
    }


class ApiServer:
    """Answers ``GET .../secrets/<name>`` as ``mode`` says: ``ok`` serves the Secret for
    ``alice-key`` and a Status 404 for any other name; ``<status>`` answers that status with a
    Status body; ``garbled`` a 200 that is not JSON; ``slow`` answers after 10 s."""

    def __init__(self) -> None:
        self.mode = "ok"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if self.mode == "slow":
            await asyncio.sleep(10)
        if self.mode == "garbled":
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        if self.mode.isdigit():
            status = int(self.mode)
            return web.json_response({"kind": "Status", "code": status}, status=status)
        if request.path.endswith("/secrets/alice-key"):
            return web.json_response(alice_secret())
        return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("kube-tls"))


@pytest.fixture
async def api(tls: TlsFiles) -> AsyncIterator[tuple[ApiServer, str]]:
    server = ApiServer()
    async with serving(server.app(), server_context(tls.cert_file, tls.key_file)) as url:
        yield server, url


def adapter(url: str, tls: TlsFiles, tmp_path: Path, session: aiohttp.ClientSession) -> Any:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    return AiohttpKubernetesApi(HttpClient(session), url, ServiceAccountToken(token), tls.ca_pem)


async def read_secret(kube: Any, name: str, seconds: float = 5) -> Any:
    return await kube.secret_data("signing", name, Deadline.after(FakeClock(), seconds))


async def test_kubernetes_api_object_found_and_not_found(
    api: tuple[ApiServer, str], tls: TlsFiles, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    kube = adapter(api[1], tls, tmp_path, session)
    alice = alice_secret()["data"]["cosign.pub"]
    assert await read_secret(kube, "alice-key") == {"cosign.pub": base64.b64decode(alice)}
    assert await read_secret(kube, "gone") is None  # a 404: it does not exist
    assert await read_secret(kube, "Not_A_Name") is None  # no object can have that name


@pytest.mark.parametrize(
    ("mode", "category"),
    [
        ("503", Category.UNAVAILABLE),
        ("500", Category.UNAVAILABLE),
        ("429", Category.RATE_LIMITED),
        ("403", Category.UNAUTHORIZED),
        ("400", Category.FETCH_FAILED),
        ("garbled", Category.FETCH_FAILED),
    ],
)
async def test_kubernetes_api_failure_is_not_not_found(
    api: tuple[ApiServer, str],
    tls: TlsFiles,
    tmp_path: Path,
    session: aiohttp.ClientSession,
    mode: str,
    category: Category,
) -> None:
    server, url = api
    server.mode = mode
    with pytest.raises(ConnaisseurError) as failed:
        await read_secret(adapter(url, tls, tmp_path, session), "alice-key")
    assert failed.value.category is category
    assert "signing/alice-key" in failed.value.message


async def test_kubernetes_api_that_does_not_answer_in_time_is_a_timeout(
    api: tuple[ApiServer, str], tls: TlsFiles, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server, url = api
    server.mode = "slow"
    with pytest.raises(ConnaisseurError) as failed:
        await read_secret(adapter(url, tls, tmp_path, session), "alice-key", seconds=0.3)
    assert failed.value.category is Category.TIMEOUT


async def test_kubernetes_api_that_cannot_be_reached_is_transient(
    tls: TlsFiles, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    closed = f"https://127.0.0.1:{free_port()}"
    with pytest.raises(ConnaisseurError) as failed:
        await read_secret(adapter(closed, tls, tmp_path, session), "alice-key")
    assert failed.value.category is Category.FETCH_FAILED


async def test_k8s_key_api_outage_is_transient_and_not_cached(
    api: tuple[ApiServer, str], tls: TlsFiles, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """The whole application as ``connaisseur serve`` composes it (in-process cache on,
    ``cacheErrors: true``): the API is down when a ``k8s://`` key is needed, then back."""
    server, url = api
    async with serving(TreeRegistry(DATA / "cosign").app()) as registry_url:
        verify = composed_verify(tmp_path, tls, url, registry_url, session)
        raw = f"{registry_url.removeprefix('http://')}/{IMAGE}"

        server.mode = "503"
        down = await verify(raw)
        assert not down.allowed
        assert down.category is Category.UNAVAILABLE  # was trust_root_not_found
        assert down.category in TRANSIENT_CATEGORIES

        server.mode = "ok"
        up = await verify(raw)  # was: the cached trust_root_not_found, replayed
        assert up.allowed, up.message
        assert up.digest == DIGEST


async def test_k8s_key_deleted_secret_is_still_trust_root_not_found(
    api: tuple[ApiServer, str], tls: TlsFiles, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with serving(TreeRegistry(DATA / "cosign").app()) as registry_url:
        verify = composed_verify(
            tmp_path, tls, api[1], registry_url, session, key="k8s://signing/deleted"
        )
        denied = await verify(f"{registry_url.removeprefix('http://')}/{IMAGE}")
    assert denied.category is Category.TRUST_ROOT_NOT_FOUND
    assert "does not exist" in (denied.message or "")


def composed_verify(
    tmp_path: Path,
    tls: TlsFiles,
    api_url: str,
    registry_url: str,
    session: aiohttp.ClientSession,
    key: str = "k8s://signing/alice-key",
) -> Any:
    """``VerifyImage`` of the container ``connaisseur serve`` builds in a pod whose API server
    is ``api_url``; the rule ignores the reference (the vector's signatures name Docker Hub)."""
    options = {"trustRoot": "alice", "verifyInTransparencyLog": False, "ignoreReference": True}
    config = {
        "validators": [
            {"name": "team", "type": "cosign", "trustRoots": [{"name": "alice", "key": key}]}
        ],
        "policy": [{"pattern": "*:*", "validator": "team", "with": options}],
    }
    container = pod_container(
        tmp_path, config, session, api_url=api_url, ca_file=tls.ca_file, token=TOKEN
    )
    clock = FakeClock(frozen=True)
    container.clock.override(providers.Object(clock))
    use_case = container.verify_image()

    async def verify(raw: str) -> Any:
        return await use_case.execute(VerifyImageCommand(image=raw), Deadline.after(clock, 10))

    return verify
