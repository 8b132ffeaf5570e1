"""The one lifecycle every entry point shares (``config.container.running``): the outbound
session is opened on entry and closed on exit, alerts still being sent finish first, and that
holds when the command fails."""

from __future__ import annotations

import aiohttp
import pytest
from dependency_injector import errors, providers

from connaisseur.config.container import Container, build_container, running
from connaisseur.config.loader import load_settings
from tests.support.fakes import RecordingNotifier


def container_with_notifier() -> tuple[Container, RecordingNotifier]:
    container = build_container(load_settings())
    notifier = RecordingNotifier()
    container.notifier.override(providers.Object(notifier))
    return container, notifier


async def test_running_opens_one_session_and_closes_it_after_the_alerts() -> None:
    container, notifier = container_with_notifier()
    async with running(container):
        session = container.session()
        assert isinstance(session, aiohttp.ClientSession)
        assert not session.closed
        assert notifier.drained == 0
    assert session.closed
    assert notifier.drained == 1
    with pytest.raises(errors.Error):
        container.session()  # nothing outlives the lifecycle


async def test_running_closes_everything_when_the_command_fails() -> None:
    container, notifier = container_with_notifier()
    seen: list[aiohttp.ClientSession] = []

    async def failing_command() -> None:
        async with running(container):
            seen.append(container.session())
            raise RuntimeError("command failed")

    with pytest.raises(RuntimeError, match="command failed"):
        await failing_command()
    assert seen[0].closed
    assert notifier.drained == 1
