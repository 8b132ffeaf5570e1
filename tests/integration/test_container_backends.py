"""The container backend itself: what happens when an image cannot be had, what is cleaned up,
and that testcontainers' reaper is not needed (nothing can pull its image here)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import containers, images
from tests.support.servers import registry_server

pytestmark = pytest.mark.integration
ABSENT = "connaisseur-test/absent:never-built"


@pytest.fixture
def engine() -> None:
    containers.require_engine()


def our_containers() -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={containers.LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


@pytest.mark.usefixtures("engine")
def test_missing_image_says_so_in_one_line_and_uses_the_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(images.REGISTRY.variable, ABSENT)
    monkeypatch.delenv(containers.REQUIRE_VARIABLE, raising=False)
    with registry_server(tmp_path, backend="containers") as server:
        assert server.backend == "debian docker-registry"
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"containers: image {ABSENT} cannot be had; using the Debian binaries"]


@pytest.mark.usefixtures("engine")
def test_missing_image_is_an_error_when_containers_are_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(images.REGISTRY.variable, ABSENT)
    monkeypatch.setenv(containers.REQUIRE_VARIABLE, "1")
    with (
        pytest.raises(containers.ContainersUnavailable, match=ABSENT),
        registry_server(tmp_path, backend="containers"),
    ):
        pass


@pytest.mark.usefixtures("engine")
def test_a_container_runs_as_the_user_on_loopback_and_is_removed_after(tmp_path: Path) -> None:
    before = set(our_containers())
    with registry_server(tmp_path, backend="containers") as server:
        assert server.backend.startswith("container ")
        (running,) = set(our_containers()) - before
        inspected = images.docker(
            "inspect", "--format", "{{.HostConfig.NetworkMode}} {{.Config.User}}", running
        )
        assert inspected.split() == ["host", f"{os.getuid()}:{os.getgid()}"]
        assert server.host.startswith("127.0.0.1:")
    assert set(our_containers()) == before


@pytest.mark.usefixtures("engine")
def test_no_reaper_container_is_needed(tmp_path: Path) -> None:
    from testcontainers.core.config import testcontainers_config

    with registry_server(tmp_path, backend="containers"):
        pass
    if not images.image_present(testcontainers_config.ryuk_image):
        assert testcontainers_config.ryuk_disabled
