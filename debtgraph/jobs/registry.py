"""Task registry: every background task is an ``async def (ctx, *ids)`` named ``<area>.<verb>``.

The same functions run under arq (``debtgraph worker``) or in the API process when no Redis is
configured. Arguments are ids and plain JSON values only, so they serialise with msgpack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from debtgraph.domain.core.services import Services

TaskFn = Callable[..., Awaitable[Any]]
TASKS: dict[str, TaskFn] = {}
# (task name, period in seconds): what the cron re-runs so nothing stays pending forever.
PERIODIC: list[tuple[str, int]] = []
# Tasks that run one at a time per process (the ingestion lanes): under arq they have a queue
# of their own, taken by a worker with max_jobs=1 in every worker process, so N processes
# run N of them at once and one process never hoards them; in-process they run in turn.
LANE_QUEUE = "arq:lanes"
LANE_TASKS: set[str] = set()


class RetryLater(Exception):
    """Raised by a task to be run again after ``defer`` seconds (arq's Retry, in either runner).

    Any other exception fails the job without a retry, as arq does; rows a failed job left
    pending are picked up again by the task's periodic sweep.
    """

    def __init__(self, defer: float = 1.0) -> None:
        super().__init__(f"retry in {defer}s")
        self.defer = defer


def task(name: str, *, every: int | None = None, lane: bool = False) -> Callable[[TaskFn], TaskFn]:
    """Register a task under ``name``; ``every`` seconds makes it periodic too, ``lane`` puts
    it on the lane queue (one at a time per process)."""

    def register(fn: TaskFn) -> TaskFn:
        if name in TASKS:
            raise RuntimeError(f"task {name!r} registered twice")
        TASKS[name] = fn
        if every is not None:
            PERIODIC.append((name, every))
        if lane:
            LANE_TASKS.add(name)
        return fn

    return register


def services_of(ctx: dict[str, Any]) -> Services[Any]:
    """The process's services from a job context (the same bundle requests use)."""
    services = ctx["services"]
    assert isinstance(services, Services)
    return services
