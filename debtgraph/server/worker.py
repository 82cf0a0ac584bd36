"""arq worker settings: the same task functions the API runs in-process without Redis."""

from __future__ import annotations

from typing import Any

from arq import Retry, cron
from arq.typing import WorkerCoroutine
from arq.worker import func

from debtgraph.domain.core.clock import Clock
from debtgraph.jobs.queue import deserialize, redis_settings, serialize
from debtgraph.jobs.registry import PERIODIC, TASKS, RetryLater, TaskFn
from debtgraph.server.app import build_runtime, start_runtime, stop_runtime
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


def worker_settings(settings: Settings, clock: Clock | None = None) -> dict[str, Any]:
    """Keyword arguments for ``arq.worker.Worker`` / ``run_worker``."""
    if not settings.redis_url:
        raise SystemExit("debtgraph worker needs REDIS_URL (without it jobs run in the API).")
    runtime = build_runtime(settings, clock)

    async def on_startup(ctx: dict[str, Any]) -> None:
        await start_runtime(runtime, periodic=False)
        ctx["services"] = runtime.services

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await stop_runtime(runtime)

    crons = []
    for name, every in PERIODIC:

        async def periodic_job(ctx: dict[str, Any], _name: str = name) -> None:
            await TASKS[_name](ctx)

        periodic_job.__qualname__ = f"cron:{name}"
        crons.append(cron(periodic_job, name=f"cron:{name}", minute=_minutes(every), second=0))
    return {
        "functions": [func(_arq_task(fn), name=name, max_tries=8) for name, fn in TASKS.items()],
        "cron_jobs": crons,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "max_jobs": 20,
        "job_timeout": 600,
        "keep_result": 3600,
    }
