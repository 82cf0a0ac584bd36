"""The two job queues behind one port: in-process (no Redis) and arq (Redis)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import msgpack

from debtgraph.domain.core.services import Services
from debtgraph.domain.core.tasks import cancel_and_wait
from debtgraph.jobs.registry import LANE_QUEUE, LANE_TASKS, PERIODIC, TASKS, RetryLater

log = logging.getLogger(__name__)


def serialize(obj: Any) -> bytes:
    """Job payloads as msgpack (arq's default would be pickle)."""
    return msgpack.packb(obj, datetime=True)


def deserialize(data: bytes) -> Any:
    """Inverse of :func:`serialize`."""
    return msgpack.unpackb(data, raw=False, timestamp=3)


class InProcessJobQueue:
    """Runs tasks as asyncio tasks of the API process, retrying failures with backoff."""

    def __init__(self, max_tries: int = 8) -> None:
        self.services: Services[Any] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._periodic: list[asyncio.Task[Any]] = []
        self._max_tries = max_tries
        # Lane tasks take turns, as one arq lane worker would run them (SQLite has one writer).
        self._lane = asyncio.Lock()

    def bind(self, services: Services[Any]) -> None:
        """Attach the services tasks run with (they include this queue)."""
        self.services = services

    async def enqueue(self, name: str, *args: Any) -> None:
        """Start the task now, in the background."""
        if name not in TASKS:
            raise KeyError(f"unknown task {name!r}")
        # Same round trip as arq, so a non-serialisable argument fails here in tests too.
        args = tuple(deserialize(serialize(list(args))))
        job = asyncio.create_task(self._run(name, args), name=f"job:{name}")
        self._running.add(job)
        job.add_done_callback(self._running.discard)

    async def _run(self, name: str, args: tuple[Any, ...]) -> Any:
        if name in LANE_TASKS:
            async with self._lane:
                return await self._attempts(name, args)
        return await self._attempts(name, args)

    async def _attempts(self, name: str, args: tuple[Any, ...]) -> Any:
        assert self.services is not None, "InProcessJobQueue used before bind()"
        # One id for every try of this job, as arq keeps its job id across retries.
        job_id = uuid.uuid4().hex
        for attempt in range(1, self._max_tries + 1):
            try:
                ctx = {"services": self.services, "job_try": attempt, "job_id": job_id}
                return await TASKS[name](ctx, *args)
            except RetryLater as retry:
                if attempt == self._max_tries:
                    log.error("job %s gave up after %d tries", name, attempt)
                    return None
                await asyncio.sleep(retry.defer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed", name)
                return None
        return None

    async def drain(self, timeout: float = 30) -> None:
        """Wait until no job is running (jobs may enqueue more jobs)."""
        async with asyncio.timeout(timeout):
            while self._running:
                await asyncio.gather(*list(self._running), return_exceptions=True)

    def start_periodic(self) -> None:
        """Run the periodic tasks on their schedule (the in-process cron)."""
        for name, every in PERIODIC:
            self._periodic.append(asyncio.create_task(self._every(name, every)))

    async def _every(self, name: str, every: int) -> None:
        while True:
            await asyncio.sleep(every)
            await self.enqueue(name)

    async def close(self) -> None:
        """Stop the cron and cancel running jobs (arq would re-run them; here the cron does)."""
        jobs = [*self._periodic, *self._running]
        self._periodic.clear()
        await cancel_and_wait(*jobs)


class ArqJobQueue:
    """Enqueues on Redis for ``debtgraph worker`` processes."""

    def __init__(self, redis_url: str) -> None:
        self._redis_url = redis_url
        self._pool: Any = None

    async def start(self) -> None:
        """Open the arq pool."""
        from arq import create_pool

        self._pool = await create_pool(
            redis_settings(self._redis_url),
            job_serializer=serialize,
            job_deserializer=deserialize,
        )

    async def enqueue(self, name: str, *args: Any) -> None:
        """Queue the job on Redis."""
        if name not in TASKS:
            raise KeyError(f"unknown task {name!r}")
        if self._pool is None:
            await self.start()
        if name in LANE_TASKS:
            await self._pool.enqueue_job(name, *args, _queue_name=LANE_QUEUE)
            return
        await self._pool.enqueue_job(name, *args)

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


def redis_settings(url: str) -> Any:
    """arq connection settings from a redis:// URL."""
    from arq.connections import RedisSettings

    return RedisSettings.from_dsn(url)
