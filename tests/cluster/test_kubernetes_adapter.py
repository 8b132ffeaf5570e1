"""The Kubernetes API adapter against the real kube-apiserver: a Secret that exists is read, one
that does not is "not found" (``None``), and a refusal is an error, never "not found".

A ServiceAccount allowed to ``get`` exactly one Secret (as the chart's Role allows the key
Secret) reads it with a bound token; the same account asking for another Secret is refused by
RBAC with 403, which the API server sends whether that Secret exists or not.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.kubernetes import AiohttpKubernetesApi, ServiceAccountToken
from connaisseur.application.deadline import Deadline
from connaisseur.domain.errors import Category, ConnaisseurError
from tests.support.fakes import FakeClock
from tests.support.kube import Cluster

pytestmark = pytest.mark.cluster

PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"


def reader(cluster: Cluster, namespace: str, secrets: list[str]) -> str:
    """A token of a ServiceAccount that may ``get`` ``secrets`` in ``namespace``."""
    meta = {"name": "reader", "namespace": namespace}
    cluster.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "verbs": ["get"],
                        "resourceNames": secrets,
                    }
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        ]
    )
    return cluster.token(namespace, "reader")


async def test_kubernetes_adapter_against_the_real_api_server(
    cluster: Cluster, namespace: str, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    cluster.kubectl(
        "create", "secret", "generic", "key", f"--from-literal=cosign.pub={PEM}", "-n", namespace
    )
    token_file = tmp_path / "token"
    token_file.write_text(reader(cluster, namespace, ["key", "missing"]))
    kube = AiohttpKubernetesApi(
        HttpClient(session),
        cluster.url,
        ServiceAccountToken(token_file),
        cluster.ca_file.read_text(),
    )

    async def get(name: str) -> object:
        return await kube.secret_data(namespace, name, Deadline.after(FakeClock(), 10))

    assert await get("key") == {"cosign.pub": PEM.encode()}
    assert await get("missing") is None  # allowed, and absent: 404
    with pytest.raises(ConnaisseurError) as refused:
        await get("other")  # not allowed: 403, whether it exists or not
    assert refused.value.category is Category.UNAUTHORIZED
