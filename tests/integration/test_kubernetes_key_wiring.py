"""``k8s://`` cosign keys in the composed application: read through the in-cluster API.

``config.container`` gives cosign validators the Kubernetes API adapter when
``KUBERNETES_SERVICE_HOST`` is set (the chart then mounts the service-account token and grants
``get`` on exactly that Secret). The API server is a local HTTPS server that checks the bearer
token; the image and its signature come from the conformance registry mock over HTTP.
"""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from connaisseur.application.deadline import Deadline
from connaisseur.config.container import Container
from connaisseur.domain.errors import TrustRootError
from connaisseur.domain.image import ImageReference
from connaisseur.domain.policy import RuleOptions
from tests.support.cosign import TreeRegistry
from tests.support.in_cluster import pod_container
from tests.support.servers import serving
from tests.support.tls import make_tls, server_context

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "conformance" / "data"
SECRET_PATH = "/api/v1/namespaces/signing/secrets/alice-key"
# conformance case cosign-025: signed by alice
IMAGE = "securesystemsengineering/testimage:multi-cosigned-alice"
DIGEST = "sha256:071bf7a986f1ca9cb2a1f0bc8392822a7777f90d58f2d2c6f271913e08de7c81"
OPTIONS = RuleOptions(
    trust_root="alice",
    verify_in_transparency_log=False,
    ignore_reference=True,  # D2: the vector's signature names index.docker.io, not the mock
)


def alice_pem() -> str:
    doc = yaml.safe_load((DATA / "cosign" / "01_cosign.yaml").read_text())
    key: str = next(r["key"] for r in doc["trustRoots"] if r["name"] == "alice")
    return key


def api_server(seen: list[tuple[str, str]]) -> web.Application:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "alice-key", "namespace": "signing"},
        "data": {"cosign.pub": base64.b64encode(alice_pem().encode()).decode()},
    }

    async def handle(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization", "")))
        if request.headers.get("Authorization") != "Bearer sa-token":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if request.path != SECRET_PATH:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response(secret)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


CONFIG = {
    "validators": [
        {
            "name": "team",
            "type": "cosign",
            "trustRoots": [{"name": "alice", "key": "k8s://signing/alice-key"}],
        }
    ],
    "policy": [{"pattern": "*:*", "validator": "team"}],
}


def composed(tmp_path: Path, api_url: str | None, session: aiohttp.ClientSession) -> Container:
    """The container ``connaisseur serve`` builds, with the pod's service-account files."""
    ca_file = tmp_path / "tls" / "ca.pem"
    return pod_container(
        tmp_path, CONFIG, session, api_url=api_url, ca_file=ca_file, token="sa-token"
    )


async def test_k8s_key_is_read_through_the_in_cluster_api(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    tls = make_tls(tmp_path / "tls")
    seen: list[tuple[str, str]] = []
    ctx = server_context(tls.cert_file, tls.key_file)
    async with (
        serving(api_server(seen), ctx) as api_url,
        serving(TreeRegistry(DATA / "cosign").app()) as registry_url,
    ):
        container = composed(tmp_path, api_url, session)
        validator = container.validators()["team"]
        image = ImageReference.parse(f"{registry_url.removeprefix('http://')}/{IMAGE}")
        result = await validator.validate(image, OPTIONS, Deadline.after(container.clock(), 10))
    assert result.digest == DIGEST
    assert seen == [(SECRET_PATH, "Bearer sa-token")]


async def test_k8s_key_out_of_cluster_is_a_trust_root_error(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    make_tls(tmp_path / "tls")
    async with serving(TreeRegistry(DATA / "cosign").app()) as registry_url:
        container = composed(tmp_path, None, session)
        validator = container.validators()["team"]
        image = ImageReference.parse(f"{registry_url.removeprefix('http://')}/{IMAGE}")
        with pytest.raises(TrustRootError, match="no Kubernetes API available"):
            await validator.validate(image, OPTIONS, Deadline.after(container.clock(), 10))
