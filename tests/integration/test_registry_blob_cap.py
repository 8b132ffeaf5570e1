"""The registry adapter reads a blob no further than the caller's cap, against a REAL
registry (Debian's ``docker-registry``, or ``registry:2`` through testcontainers): a cosign
signature payload is read up to its own 64 KiB, never the 4 MiB document cap."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from connaisseur.adapters.http import HttpClient
from connaisseur.adapters.registry import AiohttpRegistryClient
from connaisseur.application.deadline import Deadline
from connaisseur.application.ports import Endpoint
from connaisseur.application.settings import AuthSettings
from connaisseur.domain.cosign_layout import MAX_PAYLOAD_BYTES
from connaisseur.domain.errors import Category, ConnaisseurError
from connaisseur.domain.image import ImageReference
from tests.support.fakes import FakeClock
from tests.support.oci_push import Pusher
from tests.support.servers import RegistryServer, registry_server

pytestmark = pytest.mark.integration
CLOCK = FakeClock()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with registry_server(tmp_path_factory.mktemp("blob-cap")) as server:
        print(f"registry backend: {server.backend} (plain HTTP)")
        yield server


async def test_a_blob_over_the_callers_cap_is_not_read(
    registry: RegistryServer, session: aiohttp.ClientSession
) -> None:
    big = b"x" * (MAX_PAYLOAD_BYTES + 1)
    digest = await Pusher(session, registry.url).blob("team/big", big)
    client = AiohttpRegistryClient(HttpClient(session), CLOCK)
    image = ImageReference.parse(f"{registry.host}/team/big:1")
    endpoint = Endpoint(auth=AuthSettings())
    deadline = Deadline.after(CLOCK, 10)
    with pytest.raises(ConnaisseurError) as err:
        await client.blob(image, digest, endpoint, deadline, max_bytes=MAX_PAYLOAD_BYTES)
    assert err.value.category is Category.FETCH_FAILED
    assert str(MAX_PAYLOAD_BYTES) in err.value.message
    assert await client.blob(image, digest, endpoint, deadline) == big  # the default cap
