"""`debtgraph worker` as a real process: it takes jobs from Redis and runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.core.secrets import public_id
from debtgraph.jobs.queue import ArqJobQueue
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="the worker needs REDIS_URL")


async def test_worker_process_runs_enqueued_jobs(migrated: str) -> None:
    engine = create_engine(migrated)
    factory = session_factory(engine)
    async with factory() as session:
        event = Event(
            public_id=public_id("evt"),
            type="upload.completed",
            object_type="upload",
            object_id="1",
            data={"object": {"id": 1}, "previous_attributes": {}},
            created_at=datetime.now(UTC) - timedelta(minutes=1),
        )
        session.add(event)
        await session.commit()
    env = {**os.environ, "DATABASE_URL": migrated, "REDIS_URL": REDIS_URL or ""}
    worker = subprocess.Popen(  # noqa: ASYNC220  (a long-lived child, not awaited)
        [sys.executable, "-m", "debtgraph.server.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    queue = ArqJobQueue(REDIS_URL or "")
    try:
        await queue.enqueue("outbox.relay")
        published = None
        for _ in range(300):
            async with factory() as session:
                published = (await session.get(Event, event.id)).published_at  # type: ignore[union-attr]
            if published is not None:
                break
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            await asyncio.sleep(0.1)
        assert published is not None
    finally:
        await queue.close()
        worker.terminate()
        worker.wait(timeout=30)
        async with factory() as session:
            await session.delete(await session.get(Event, event.id))
            await session.commit()
        await engine.dispose()
