"""Log lines reach the stream once per event-loop iteration, and at once outside a loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from connaisseur.entrypoints.logs import JsonFormatter, LoopFlushingHandler
from tests.support.fakes import CountingStream


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, CountingStream]]:
    stream = CountingStream()
    handler = LoopFlushingHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.loop_flushing")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def test_without_a_running_loop_every_record_is_flushed(
    logged: tuple[logging.Logger, CountingStream],
) -> None:
    logger, stream = logged
    logger.info("one")
    assert '"msg":"one"' in stream.visible
    logger.info("two")
    assert stream.flushes == 2
    assert '"msg":"two"' in stream.visible


async def test_in_a_loop_records_are_flushed_after_the_current_iteration(
    logged: tuple[logging.Logger, CountingStream],
) -> None:
    logger, stream = logged
    for n in range(5):
        logger.info("admission %d", n)
    assert stream.flushes == 0
    await asyncio.sleep(0)
    assert stream.flushes == 1
    assert stream.visible.count("\n") == 5
    logger.info("later")
    await asyncio.sleep(0)
    assert stream.flushes == 2
    assert '"msg":"later"' in stream.visible
