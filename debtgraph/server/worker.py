"""arq workers: the same task functions the API runs in-process without Redis.

Every worker process runs two arq workers on one event loop: the main one (every task but the
lanes, up to 20 at once, and the crons) and a lane worker (the lane queue, one job at a time).
A lane job is CPU-bound (parsing, deriving and judging rows), so one per process is all a
process can run at full speed, and a queue of their own keeps a process from taking two while
another sits idle: N processes ingest N ranges of an upload at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from multiprocessing.connection import wait
from typing import Any, cast

from arq import Retry, cron
from arq.typing import WorkerCoroutine
from arq.worker import func

from debtgraph.domain.core.clock import Clock
from debtgraph.jobs.queue import deserialize, redis_settings, serialize
from debtgraph.jobs.registry import LANE_QUEUE, LANE_TASKS, PERIODIC, TASKS, RetryLater, TaskFn
from debtgraph.server.app import (
    Runtime,
    build_runtime,
    start_runtime,
    stop_runtime,
    tune_collector,
)
from debtgraph.settings import Settings


def _minutes(every: int) -> set[int] | None:
    """arq cron granularity is the minute: a period under a minute runs every minute."""
    step = max(1, every // 60)
    return None if step == 1 else set(range(0, 60, step))


def _arq_task(fn: TaskFn) -> WorkerCoroutine:
    """Translate the runner-neutral RetryLater into arq's Retry."""

    async def run(ctx: dict[str, Any], *args: Any) -> Any:
        try:
            return await fn(ctx, *args)
        except RetryLater as retry:
            raise Retry(defer=retry.defer) from retry

    run.__qualname__ = fn.__qualname__
    return run


def worker_settings(
    settings: Settings,
    clock: Clock | None = None,
    *,
    lane: bool = False,
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker``: the main worker, or with ``lane`` the
    lane worker (lane tasks only, one at a time). Given a ``runtime`` (started and stopped by
    the caller, shared by the workers of a process) it uses that one, else its own."""
    if not settings.redis_url:
        raise SystemExit("debtgraph worker needs REDIS_URL (without it jobs run in the API).")
    shared = runtime is not None
    own = runtime if runtime is not None else build_runtime(settings, clock)

    async def on_startup(ctx: dict[str, Any]) -> None:
        if not shared:
            await start_runtime(own, periodic=False)
        ctx["services"] = own.services

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        if not shared:
            await stop_runtime(own)

    if lane:
        return {
            "functions": [
                func(_arq_task(fn), name=name, max_tries=8)
                for name, fn in TASKS.items()
                if name in LANE_TASKS
            ],
            "queue_name": LANE_QUEUE,
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "redis_settings": redis_settings(settings.redis_url),
            "job_serializer": serialize,
            "job_deserializer": deserialize,
            "max_jobs": 1,
            # A lane picks its next range as soon as it is free.
            "poll_delay": 0.1,
            "job_timeout": 600,
            "keep_result": 3600,
        }
    crons = []
    for name, every in PERIODIC:

        async def periodic_job(ctx: dict[str, Any], _name: str = name) -> None:
            await TASKS[_name](ctx)

        periodic_job.__qualname__ = f"cron:{name}"
        crons.append(cron(periodic_job, name=f"cron:{name}", minute=_minutes(every), second=0))
    return {
        "functions": [
            func(_arq_task(fn), name=name, max_tries=8)
            for name, fn in TASKS.items()
            if name not in LANE_TASKS
        ],
        "cron_jobs": crons,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "max_jobs": 20,
        # arq's default 0.5 s is, on average, a quarter second added to every upload's wait
        # before its job starts; a poll is one cheap Redis read per worker.
        "poll_delay": 0.1,
        "job_timeout": 600,
        "keep_result": 3600,
    }


async def serve_workers(settings: Settings) -> None:
    """Run the main and the lane worker of one process until SIGINT or SIGTERM.

    If either worker ends on its own (Redis gone for good, a bug), the other is stopped too and
    the error propagates: a process serving half its queues would look alive to its supervisor
    while lane jobs (or the crons) pile up unserved.
    """
    from arq.worker import Worker

    runtime = build_runtime(settings)
    await start_runtime(runtime, periodic=False)
    tune_collector()
    workers = [
        Worker(**worker_settings(settings, runtime=runtime), handle_signals=False),
        Worker(**worker_settings(settings, lane=True, runtime=runtime), handle_signals=False),
    ]
    signalled: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        signalled.append(signum)
        # arq's own handler, for both: running jobs are cancelled and run again by arq.
        for worker in workers:
            worker.handle_sig(signum)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    supervisor = multiprocessing.parent_process()
    if supervisor is not None:
        # A supervisor killed outright (SIGKILL, the OOM killer) forwards no signal: its
        # processes would go on serving the queues unsupervised, with the code they started
        # with, taking jobs from whatever set replaces it. Its sentinel is ready once it is gone.
        sentinel = supervisor.sentinel

        def orphaned() -> None:
            loop.remove_reader(sentinel)
            stop(signal.SIGTERM)

        loop.add_reader(sentinel, orphaned)
    runs = [asyncio.ensure_future(w.async_run()) for w in workers]
    try:
        await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
        if not signalled:
            for worker in workers:
                worker.handle_sig(signal.SIGTERM)
        outcomes = await asyncio.gather(*runs, return_exceptions=True)
    finally:
        for worker in workers:
            # The jobs the signal cancelled (arq runs them again) are let end first: close()
            # gathers them too, and one ending cancelled re-raised there, before close() had
            # deleted the health key and closed the worker's Redis pool.
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            worker.tasks.clear()
            await worker.close()
        await stop_runtime(runtime)
    if signalled:
        return
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise WorkerEnded("an arq worker of this process failed") from outcome
    raise WorkerEnded("an arq worker of this process ended without a stop signal")


class WorkerEnded(RuntimeError):
    """One of a process's arq workers stopped on its own: the process exits non-zero."""


def _serve_one(settings: Settings) -> None:
    from debtgraph.server.logging import configure_logging

    configure_logging(settings.log_level)
    asyncio.run(serve_workers(settings))


def run_processes(settings: Settings, processes: int) -> int:
    """Run ``processes`` worker processes (0: one per CPU); one runs in this process itself.

    The supervisor lives as long as all of its processes: when one dies on its own (killed,
    crashed) the others are stopped and it exits non-zero, so the service manager restarts the
    whole set instead of a half-strength one running on silently. Its ranges are resumed after
    their lease by whichever worker comes up. When the supervisor itself is killed, its
    processes stop as if sent SIGTERM (serve_workers watches it).
    """
    count = processes or os.cpu_count() or 1
    if count == 1:
        _serve_one(settings)
        return 0
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_serve_one, args=(settings,), name=f"debtgraph-worker-{n}")
        for n in range(count)
    ]
    forwarded: list[int] = []

    def stop_children() -> None:
        # SIGTERM whatever stopped the supervisor: a process still starting dies of it (-15),
        # which is told apart from a failure below; Python's own SIGINT handler, in place from
        # the interpreter's start, made such a process exit 1 like a crash.
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    def forward(signum: int, _frame: Any) -> None:
        forwarded.append(signum)
        stop_children()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # Handlers first: a stop that comes while the set is starting reaches the children started
    # so far, and no further one is started.
    for child in children:
        if forwarded:
            break
        child.start()
    if forwarded:
        # The signal may have come inside start(), before that child had a pid to send it to.
        stop_children()
    running = {child.sentinel: child for child in children if child.pid is not None}
    failed = False
    while running:
        for sentinel in wait(list(running)):
            child = running.pop(cast("int", sentinel))
            child.join()
            if not forwarded:
                # Nobody asked it to stop: whatever its code, the set is no longer whole.
                failed = True
                forward(signal.SIGTERM, None)
            elif child.exitcode not in (0, -signal.SIGTERM):
                # Killed by the SIGTERM it was sent: it was still starting (the signal came
                # before its handlers were in place), so it had taken no job. That is a stop.
                failed = True
    return 1 if failed else 0
