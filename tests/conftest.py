"""Test harness: the real ASGI app against a real database (SQLite, or PostgreSQL + Redis).

``DATABASE_URL`` selects PostgreSQL (the database must exist and be disposable); ``REDIS_URL``
switches the event bus, throttle and job queue to Redis, with an arq worker running inside the
test session. Each test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import execute, parse
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from debtgraph.domain.core.clock import FrozenClock
from debtgraph.domain.core.database import create_engine, is_sqlite, session_factory
from debtgraph.domain.creditors.operators import upsert_operator
from debtgraph.domain.migrations.runner import upgrade
from debtgraph.domain.models import Base
from debtgraph.domain.oauth.platforms import register_platform
from debtgraph.jobs.queue import InProcessJobQueue
from debtgraph.jobs.registry import LANE_QUEUE
from debtgraph.schema import compiled
from debtgraph.schema.live import SharedEventExecutor
from debtgraph.server.app import Runtime, create_app, start_runtime, stop_runtime
from debtgraph.settings import Settings

_TMP = Path(tempfile.mkdtemp(prefix="debtgraph-tests-"))
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{_TMP / 'test.db'}"
REDIS_URL = os.environ.get("REDIS_URL") or None
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def pytest_report_header() -> list[str]:
    """Say which backends the run uses, so a log shows what was tested."""
    return [f"debtgraph database: {DATABASE_URL.split('@')[-1]}", f"debtgraph redis: {REDIS_URL}"]


@pytest.fixture(scope="session")
async def migrated() -> AsyncIterator[str]:
    """Apply the migration history once per session (the real path, on the real backend)."""
    engine = create_engine(DATABASE_URL)
    async with engine.begin() as conn:
        if is_sqlite(DATABASE_URL):
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        else:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    await engine.dispose()
    if REDIS_URL:
        from redis import asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
    return DATABASE_URL


async def _truncate(engine: AsyncEngine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if is_sqlite(DATABASE_URL):
            for name in tables:
                await conn.execute(text(f'DELETE FROM "{name}"'))
            with contextlib.suppress(Exception):
                await conn.execute(text("DELETE FROM sqlite_sequence"))
        else:
            joined = ", ".join(f'"{n}"' for n in tables)
            await conn.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a fixed instant; tests move it explicitly."""
    return FrozenClock(NOW)


@pytest.fixture
def settings(migrated: str, tmp_path: Path) -> Settings:
    """Settings for a test app."""
    return Settings(
        env="test",
        database_url=migrated,
        redis_url=REDIS_URL,
        allow_private_webhook_urls=True,
        upload_dir=str(tmp_path / "uploads"),
        public_base_url="http://testserver",
        # Every query of the suite runs through the compiled and the standard executor.
        graphql_check_compiled=True,
    )


@pytest.fixture(autouse=True)
def compiled_matches_standard() -> Any:
    """Fail any test during which a query answered differently through the two executors."""
    compiled.MISMATCHES.clear()
    yield
    mismatches = list(compiled.MISMATCHES)
    compiled.MISMATCHES.clear()
    assert not mismatches, "\n\n".join(mismatches)


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[Any]:
    """The ASGI app with its runtime started (and an arq worker when Redis is configured)."""
    application = create_app(settings, clock=clock, periodic=False)
    runtime: Runtime = application.state.runtime
    await _truncate(runtime.services.engine)
    if REDIS_URL:
        from redis import asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        await client.flushdb()
        await client.aclose()
    await start_runtime(runtime, periodic=False)
    workers: list[tuple[Any, asyncio.Task[Any]]] = []
    if REDIS_URL:
        from arq.worker import Worker

        from debtgraph.server.worker import worker_settings

        # As in a `debtgraph worker` process: the main worker and the lane worker.
        for lane in (False, True):
            options = worker_settings(settings, clock=clock, lane=lane) | {"poll_delay": 0.05}
            worker = Worker(**options, handle_signals=False)
            workers.append((worker, asyncio.create_task(worker.async_run())))
    try:
        yield application
    finally:
        try:
            await _stop_workers(workers)
        finally:
            await stop_runtime(runtime)


async def _stop_workers(workers: list[tuple[Any, asyncio.Task[Any]]]) -> None:
    """Stop the test's arq workers as `debtgraph worker` does on SIGTERM: running jobs (a
    cron's included) are cancelled, not waited for. Bounded, so a worker that does not stop
    fails its test by name instead of holding the whole run until CI's limit."""
    for worker, run in workers:
        worker.handle_sig(signal.SIGTERM)
        run.cancel()  # a worker whose run has not begun has no main task for arq to cancel
    runs = [task for _, task in workers]
    jobs = [job for worker, _ in workers for job in worker.tasks.values()]
    try:
        async with asyncio.timeout(30):
            await asyncio.gather(*runs, *jobs, return_exceptions=True)
    except TimeoutError:
        stuck = [repr(t) for t in (*runs, *jobs) if not t.done()]
        raise AssertionError(f"arq workers did not stop within 30 s: {stuck}") from None
    for worker, _ in workers:
        # Ended, every one: close() would gather them again, and a job cancelled by the stop
        # would re-raise its cancellation there, before the worker's own runtime is stopped.
        worker.tasks.clear()
        await worker.close()


@pytest.fixture
def runtime(app: Any) -> Runtime:
    """The app's wiring."""
    return app.state.runtime  # type: ignore[no-any-return]


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client driving the app in-process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.0.0.1", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def db(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    """Sessions to arrange and inspect rows directly."""
    return session_factory(runtime.services.engine)


@pytest.fixture
def drain(runtime: Runtime) -> Callable[[], Any]:
    """Wait until background jobs are done (in-process queue or the arq worker)."""

    async def _drain(timeout: float = 30) -> None:
        jobs = runtime.services.jobs
        if isinstance(jobs, InProcessJobQueue):
            await jobs.drain(timeout)
            return
        from redis import asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL or "")
        try:
            try:
                await _wait_for_due_jobs(client, timeout)
            except TimeoutError:
                # Name what never finished: a hung job, or one that keeps coming due.
                now_ms = time.time() * 1000
                queued = [
                    *await client.zrange("arq:queue", 0, 20, withscores=True),
                    *await client.zrange(LANE_QUEUE, 0, 20, withscores=True),
                ]
                due = [(k.decode(), round(score - now_ms)) for k, score in queued]
                raise AssertionError(f"jobs not done after {timeout}s: {due}") from None
        finally:
            await client.aclose()

    async def _wait_for_due_jobs(client: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while True:
                # arq keeps a job in its queue until the job is finished, running ones included,
                # so the queue alone says what is left. Not the in-progress keys: arq keeps a
                # cron job's for a while after it ends (so two workers never run it twice).
                # Jobs due now count; a retry deferred into the future (arq scores the queue by
                # run time, seconds ahead) is not work this test waits for. arq rounds its score
                # to the millisecond, so a job queued this very millisecond may score one ahead
                # of a truncated now: a second of slack keeps it counted.
                due_ms = int(time.time() * 1000) + 1000
                waiting = 0
                for queue in ("arq:queue", LANE_QUEUE):
                    waiting += await client.zcount(queue, "-inf", due_ms)
                if not waiting:
                    return
                await asyncio.sleep(0.05)

    return _drain


@pytest.fixture
async def admin(db: async_sessionmaker[AsyncSession], clock: FrozenClock) -> Any:
    """The seed's operator, admin@tether.test / password."""
    async with db() as session:
        user = await upsert_operator(session, clock, "admin@tether.test", "password", "Admin User")
        await session.commit()
        return user


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient, admin: Any) -> dict[str, str]:
    """Authorization headers of a signed-in operator."""
    response = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "password"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
async def make_platform(db: async_sessionmaker[AsyncSession], clock: FrozenClock) -> Any:
    """Factory of platforms; returns (platform, client_secret, api_key)."""

    async def _make(
        name: str = "Acme", scopes: list[str] | None = None, redirect: str = "https://acme.test/cb"
    ) -> Any:
        async with db() as session:
            created = await register_platform(session, clock, name, [redirect], scopes)
            await session.commit()
            return created

    return _make


@pytest.fixture
def sql_counter(runtime: Runtime) -> Any:
    """Counts SQL statements the app runs while the block is active."""

    class Counter:
        def __init__(self) -> None:
            self.statements: list[str] = []
            self.active = False

        def __enter__(self) -> Counter:
            self.statements.clear()
            self.active = True
            return self

        def __exit__(self, *exc: object) -> None:
            self.active = False

        @property
        def count(self) -> int:
            return len(self.statements)

    counter = Counter()
    sync_engine = runtime.services.engine.sync_engine

    def _on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if compiled.SHADOW_RUN.get():
            return  # the check's second run of a query, not the request's own statements
        if counter.active and not statement.lstrip().upper().startswith(("PRAGMA", "SAVEPOINT")):
            counter.statements.append(statement)

    event.listen(sync_engine, "before_cursor_execute", _on_execute)
    yield counter
    event.remove(sync_engine, "before_cursor_execute", _on_execute)


async def both_executors(schema: Any, query: str) -> tuple[Any, Any]:
    """``query`` on a Strawberry schema by graphql-core's executor, then by the compiled one."""
    document = parse(query)
    answers = []
    for executor in (SharedEventExecutor, compiled.CompiledExecutor):
        answer = execute(schema._schema, document, executor_class=executor)
        answers.append(await answer if inspect.isawaitable(answer) else answer)
    return answers[0], answers[1]


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST a GraphQL operation and return the decoded body."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
