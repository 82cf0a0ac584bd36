"""The outbox (events after commit only, never twice, stale ones swept) and both job runners."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, update

from debtgraph.domain.core import outbox
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from debtgraph.jobs.registry import RetryLater, task
from debtgraph.resolvers.context import UnitOfWork
from debtgraph.resolvers.errors import NotFound
from debtgraph.resolvers.events import subscriber_count
from debtgraph.server.app import Runtime

CALLS: list[tuple[int, int]] = []


@task("tests.flaky")
async def flaky(ctx: dict[str, Any], marker: int) -> None:
    """Fails with RetryLater on its first try, succeeds on the second."""
    CALLS.append((marker, ctx.get("job_try", 0)))
    if ctx.get("job_try", 1) < 2:
        raise RetryLater(defer=0.05)


async def _collect(runtime: Runtime, into: list[Any]) -> asyncio.Task[None]:
    async def run() -> None:
        async for message in runtime.services.bus.subscribe():
            into.append(message)

    listener = asyncio.create_task(run())
    for _ in range(200):
        if subscriber_count(runtime.services):
            break
        await asyncio.sleep(0.01)
    return listener


def _record(session: Any, runtime: Runtime, object_id: str) -> Event:
    return outbox.record_event(
        session,
        runtime.services.clock,
        type="upload.completed",
        object_type="upload",
        object_id=object_id,
        obj={"id": object_id},
    )


async def test_rolled_back_events_and_jobs_go_nowhere(runtime: Runtime, db: Any) -> None:
    received: list[Any] = []
    listener = await _collect(runtime, received)
    async with db() as session:
        _record(session, runtime, "1")
        outbox.enqueue_after_commit(session, "tests.flaky", 99)
        await session.flush()
        outbox.discard_pending(session)
        await session.rollback()
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
    await asyncio.sleep(0.1)
    listener.cancel()
    assert received == []
    assert all(marker != 99 for marker, _ in CALLS)


async def test_committed_event_is_published_once(runtime: Runtime, db: Any) -> None:
    received: list[Any] = []
    listener = await _collect(runtime, received)
    async with db() as session:
        event = _record(session, runtime, "2")
        ids = await outbox.commit(session, runtime.services.jobs)
        assert ids == [event.id]
        assert await outbox.relay(session, runtime.services.bus, runtime.services.clock, ids) == 1
        assert await outbox.relay(session, runtime.services.bus, runtime.services.clock, ids) == 0
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    listener.cancel()
    assert [m.id for m in received] == [event.public_id]


async def test_relay_task_sweeps_events_a_dead_process_left(
    runtime: Runtime, db: Any, drain: Any, clock: Any
) -> None:
    async with db() as session:
        event = _record(session, runtime, "3")
        await outbox.commit(session, runtime.services.jobs)  # committed, never relayed
    await runtime.services.jobs.enqueue("outbox.relay")
    await drain()
    async with db() as session:
        assert (await session.get(Event, event.id)).published_at is None  # too fresh to sweep
    clock.advance(timedelta(seconds=11))
    await runtime.services.jobs.enqueue("outbox.relay")
    await drain()
    async with db() as session:
        assert (await session.get(Event, event.id)).published_at is not None


async def test_jobs_run_after_commit_and_retry_on_request(
    runtime: Runtime, db: Any, drain: Any
) -> None:
    CALLS.clear()
    async with db() as session:
        outbox.enqueue_after_commit(session, "tests.flaky", 7)
        assert CALLS == []
        await outbox.commit(session, runtime.services.jobs)
    await drain()
    for _ in range(100):
        if len(CALLS) >= 2:
            break
        await asyncio.sleep(0.05)
        await drain()
    assert CALLS == [(7, 1), (7, 2)]


async def test_a_bus_failure_after_commit_neither_fails_the_caller_nor_loses_events(
    runtime: Runtime, db: Any, drain: Any, clock: Any, monkeypatch: Any
) -> None:
    from debtgraph.resolvers.context import Context

    bus = runtime.services.bus

    async def refuse(message: Any) -> None:
        raise ConnectionError("bus down")

    monkeypatch.setattr(bus, "publish", refuse)
    ctx = Context.create(runtime.services)
    try:
        async with ctx.uow.session() as session:
            event = _record(session, runtime, "4")
        await ctx.uow.commit()  # must not raise: the change is committed
    finally:
        await ctx.uow.close()
    async with db() as session:
        stored = await session.get(Event, event.id)
        assert stored is not None
        assert stored.published_at is None  # given back to the relay
    monkeypatch.undo()
    received: list[Any] = []
    listener = await _collect(runtime, received)
    clock.advance(timedelta(seconds=11))
    await runtime.services.jobs.enqueue("outbox.relay")
    await drain()
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.02)
    listener.cancel()
    assert [m.id for m in received] == [event.public_id]


async def test_an_enqueue_failure_after_commit_is_logged_not_raised(
    runtime: Runtime, db: Any, monkeypatch: Any, caplog: Any
) -> None:
    async def refuse(name: str, *args: Any) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(runtime.services.jobs, "enqueue", refuse)
    async with db() as session:
        _record(session, runtime, "5")
        outbox.enqueue_after_commit(session, "tests.flaky", 5)
        await outbox.commit(session, runtime.services.jobs)
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
    assert any("could not enqueue tests.flaky" in r.getMessage() for r in caplog.records)


SEEN: list[Any] = []


@task("tests.services")
async def record_services(ctx: dict[str, Any]) -> None:
    """Keeps the services bundle the job ran with."""
    SEEN.append(ctx["services"])


async def test_jobs_and_requests_share_one_services_bundle(runtime: Runtime, drain: Any) -> None:
    from debtgraph.resolvers.context import Context

    SEEN.clear()
    await runtime.services.jobs.enqueue("tests.services")
    await drain()
    for _ in range(100):
        if SEEN:
            break
        await asyncio.sleep(0.02)
    ctx = Context.create(runtime.services)
    # One type for both (the arq worker builds its own instance of it, from the same settings).
    assert [type(s) for s in SEEN] == [type(ctx.services)]
    assert SEEN[0].settings == ctx.settings
    if runtime.services.settings.redis_url is None:
        assert SEEN[0] is ctx.services


async def test_a_refused_write_is_rolled_back_but_a_refused_read_expires_nothing(
    runtime: Runtime, admin: Any
) -> None:
    uow = UnitOfWork(runtime.services)
    async with uow.session() as session:
        operator = await session.get(User, admin.id)
    assert operator is not None
    # A read refused part-way (a NotFound): the rows siblings already loaded stay readable.
    with pytest.raises(NotFound):
        await _refused_inside(uow, None)
    assert not inspect(operator).expired_attributes
    assert operator.email == "admin@tether.test"
    # A write refused part-way: gone, and nothing of it reaches the next commit.
    change = update(User).where(User.id == admin.id).values(name="Changed Then Refused")
    with pytest.raises(NotFound):
        await _refused_inside(uow, change)
    await uow.commit()
    await uow.end()
    async with runtime.services.session_factory() as fresh:
        name = await fresh.scalar(select(User.name).where(User.id == admin.id))
    assert name == "Admin User"


async def _refused_inside(uow: UnitOfWork, statement: Any) -> None:
    async with uow.session() as session:
        if statement is not None:
            await session.execute(statement)
        await session.get(User, 987654)
        raise NotFound("User")
