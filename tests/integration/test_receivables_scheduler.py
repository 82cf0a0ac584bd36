"""The recovery scheduler job starts pending receivables of active creditors, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from debtgraph.domain.core.idempotency import IdempotencyKey
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from debtgraph.domain.receivables.models import Receivable, ReceivableEvent
from debtgraph.jobs.registry import PERIODIC
from debtgraph.server.app import Runtime
from tests.integration.cleavr_support import bearer, complete_user, count, create_user
from tests.integration.test_receivables import receivable_payload


async def test_scheduler_starts_pending_receivables_of_active_users_once(
    client: httpx.AsyncClient, make_platform: Any, db: Any, runtime: Runtime, drain: Any
) -> None:
    assert ("receivables.start_pending", 300) in PERIODIC
    acme = await make_platform()
    active = (await create_user(client, acme.api_key))["id"]
    suspended = (await create_user(client, acme.api_key, complete_user("s@x.test")))["id"]
    ids = {}
    for uid in (active, suspended):
        response = await client.post(
            "/v1/receivables", json=receivable_payload(uid), headers=bearer(acme.api_key)
        )
        ids[uid] = response.json()["id"]
    async with db() as session:
        await session.execute(
            update(User).where(User.public_id == suspended).values(status="suspended")
        )
        await session.commit()
    for _ in range(2):
        await runtime.services.jobs.enqueue("receivables.start_pending")
        await drain()
    async with db() as session:
        statuses = {
            r.public_id: r.status for r in (await session.scalars(select(Receivable))).all()
        }
        starts = (
            await session.scalars(select(ReceivableEvent).where(ReceivableEvent.action == "start"))
        ).all()
        events = (
            await session.scalars(select(Event).where(Event.type == "receivable.in_process"))
        ).all()
    assert statuses == {ids[active]: "in_process", ids[suspended]: "pending"}
    assert [(s.actor_type, s.actor_id) for s in starts] == [("system", None)]
    assert len(events) == 1
    assert events[0].published_at is not None


async def test_expired_idempotency_keys_are_purged(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    runtime: Runtime,
    drain: Any,
    clock: Any,
) -> None:
    acme = await make_platform()
    headers = {**bearer(acme.api_key), "Idempotency-Key": "purge-me"}
    await client.post("/v1/users", json={"email": "a@x.test"}, headers=headers)
    await runtime.services.jobs.enqueue("idempotency.purge")
    await drain()
    assert await count(db, IdempotencyKey) == 1
    clock.advance(timedelta(hours=24))
    await runtime.services.jobs.enqueue("idempotency.purge")
    await drain()
    assert await count(db, IdempotencyKey) == 0


async def test_a_bus_failure_after_a_jobs_commit_neither_fails_the_job_nor_loses_events(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    runtime: Runtime,
    drain: Any,
    clock: Any,
    monkeypatch: Any,
) -> None:
    # The request path's policy (test_outbox_and_jobs) holds for jobs: they commit the same way.
    from debtgraph.jobs.receivables import start_pending

    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    response = await client.post(
        "/v1/receivables", json=receivable_payload(uid), headers=bearer(acme.api_key)
    )
    receivable_id = response.json()["id"]
    await drain()

    async def refuse(message: Any) -> None:
        raise ConnectionError("bus down")

    monkeypatch.setattr(runtime.services.bus, "publish", refuse)
    assert await start_pending({"services": runtime.services, "job_try": 1}) == 1
    monkeypatch.undo()
    async with db() as session:
        receivable = await session.scalar(
            select(Receivable).where(Receivable.public_id == receivable_id)
        )
        events = (
            await session.scalars(select(Event).where(Event.type == "receivable.in_process"))
        ).all()
    assert receivable is not None
    assert receivable.status == "in_process"
    assert [e.published_at for e in events] == [None]  # given back to the relay cron
    clock.advance(timedelta(seconds=11))
    await runtime.services.jobs.enqueue("outbox.relay")
    await drain()
    async with db() as session:
        assert (await session.get(Event, events[0].id)).published_at is not None
