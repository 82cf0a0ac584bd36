"""Stopping background tasks without swallowing the stopper's own cancellation."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel ``tasks`` (None ones skipped) and wait until each has ended.

    ``task.cancel()`` then ``await task`` under ``suppress(CancelledError)`` cannot tell the
    task's own CancelledError from one delivered to the caller while it waits: a stop that was
    itself cancelled (a shutdown deadline, a test's teardown) went on as if nothing had happened,
    and its caller never learned it. ``asyncio.wait`` raises nothing of the tasks', so a
    CancelledError here is the caller's, and propagates. A task that ended with another error
    is logged: it has no one else to report it to.
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    if not pending:
        return
    try:
        await asyncio.wait(pending)
    except asyncio.CancelledError:
        # Ours: the tasks end on their own (cancelled already), and what one fails with is
        # still logged when it does, never left unread.
        for task in pending:
            task.add_done_callback(_log_failure)
        raise
    for task in pending:
        _log_failure(task)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed as it stopped", task.get_name(), exc_info=task.exception())
