"""Stopping background tasks: a stop that is itself cancelled ends cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from debtgraph.domain.core.tasks import cancel_and_wait
from debtgraph.jobs.queue import InProcessJobQueue


async def _slow_to_stop(stopping: asyncio.Event) -> None:
    """A task whose cleanup takes a while once cancelled (closing a connection, say)."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        stopping.set()
        await asyncio.sleep(0.2)
        raise


async def _cancel_while_waiting(stop: asyncio.Task[None], stopping: asyncio.Event) -> None:
    await asyncio.wait_for(stopping.wait(), 5)
    stop.cancel()
    await asyncio.wait([stop], timeout=5)
    assert stop.done()


async def test_a_cancelled_stop_ends_cancelled() -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(_slow_to_stop(stopping))
    stop = asyncio.create_task(cancel_and_wait(task, None))
    await _cancel_while_waiting(stop, stopping)
    # Before, the stopper's CancelledError was taken for the task's and swallowed.
    assert stop.cancelled()
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()


async def test_a_stop_waits_for_every_task_and_logs_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup broke") from None

    quiet = asyncio.create_task(asyncio.sleep(60))
    broken = asyncio.create_task(fails_on_cancel(), name="broken-task")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="debtgraph.domain.core.tasks"):
        await cancel_and_wait(quiet, broken)
    assert quiet.cancelled()
    assert broken.done()
    assert "broken-task" in caplog.text
    assert "cleanup broke" in caplog.text


async def test_closing_the_job_queue_cancelled_ends_cancelled() -> None:
    queue = InProcessJobQueue()
    stopping = asyncio.Event()
    job = asyncio.create_task(_slow_to_stop(stopping))
    queue._running.add(job)  # a job the queue started, still running
    await asyncio.sleep(0)
    close = asyncio.create_task(queue.close())
    await _cancel_while_waiting(close, stopping)
    assert close.cancelled()


async def test_events_a_stalled_reader_loses_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    from debtgraph.domain.core.eventbus import BusMessage, _Fanout

    fanout = _Fanout(maxsize=2)
    listening = fanout.listen()
    first = asyncio.ensure_future(anext(listening))  # registers the reader's queue
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="debtgraph.domain.core.eventbus"):
        for n in range(5):
            fanout.deliver(BusMessage(str(n), "upload.updated", "upload", "1", None, None, 0))
    assert fanout.dropped >= 2
    assert "events behind: its oldest are dropped" in caplog.text
    # The reader takes what was kept: the newest two.
    assert (await first).id == "3"
    await listening.aclose()


async def test_a_task_left_by_a_cancelled_stop_still_has_its_failure_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopping = asyncio.Event()

    async def breaks_after_a_while() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.sleep(0.1)
            raise RuntimeError("cleanup broke late") from None

    task = asyncio.create_task(breaks_after_a_while(), name="late-task")
    stop = asyncio.create_task(cancel_and_wait(task))
    with caplog.at_level(logging.ERROR, logger="debtgraph.domain.core.tasks"):
        await _cancel_while_waiting(stop, stopping)
        assert stop.cancelled()
        await asyncio.wait([task], timeout=5)
        await asyncio.sleep(0)  # its done callbacks
    assert "late-task" in caplog.text
    assert "cleanup broke late" in caplog.text
