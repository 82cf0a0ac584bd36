"""A read that ends while another waits hands it its connection (UnitOfWork.reading): one pool
checkout for the edges of one level of a query, and never a connection held while no read runs
or waits (a waiting read cancelled, a session taking the lock, the request's end)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from debtgraph.resolvers.context import UnitOfWork
from debtgraph.schema import compiled
from tests.conftest import gql
from tests.integration.uploads_support import csv_text, upload


@pytest.fixture
def checkouts(runtime: Any) -> Any:
    counted = [0]

    def on_checkout(*_: Any) -> None:
        if not compiled.SHADOW_RUN.get():  # the check's second run is not the request's
            counted[0] += 1

    engine = runtime.services.engine.sync_engine
    event.listen(engine, "checkout", on_checkout)
    yield counted
    event.remove(engine, "checkout", on_checkout)


async def _settle() -> None:
    for _ in range(20):  # let a connection given back by a task of its own go home
        await asyncio.sleep(0.01)


async def test_reads_waiting_their_turn_share_one_checkout(runtime: Any, checkouts: Any) -> None:
    uow = UnitOfWork(runtime.services)
    holding, release = asyncio.Event(), asyncio.Event()
    used: list[Any] = []

    async def read(hold: bool = False) -> None:
        async with uow.reading() as conn:
            used.append((await conn.get_raw_connection()).driver_connection)
            await conn.execute(text("SELECT 1"))
            if hold:
                holding.set()
                await release.wait()

    first = asyncio.create_task(read(hold=True))
    await holding.wait()
    waiting = [asyncio.create_task(read()) for _ in range(2)]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting)
    assert checkouts[0] == 1
    assert len({id(conn) for conn in used}) == 1
    assert runtime.services.engine.pool.checkedout() == 0
    # A read alone later checks out again: nothing was kept between them.
    await read()
    assert checkouts[0] == 2
    assert runtime.services.engine.pool.checkedout() == 0
    await uow.end()


async def test_a_waiting_read_cancelled_gives_its_connection_back(
    runtime: Any, checkouts: Any
) -> None:
    uow = UnitOfWork(runtime.services)
    holding, release = asyncio.Event(), asyncio.Event()
    waiting: list[asyncio.Task[None]] = []

    async def read() -> None:
        async with uow.reading() as conn:
            await conn.execute(text("SELECT 1"))

    async def hold_then_cancel_the_next() -> None:
        async with uow.reading() as conn:
            await conn.execute(text("SELECT 1"))
            holding.set()
            await release.wait()
            # Cancelled while it still waits: this read hands it the connection all the same.
            waiting[0].cancel()

    first = asyncio.create_task(hold_then_cancel_the_next())
    await holding.wait()
    waiting.append(asyncio.create_task(read()))
    await asyncio.sleep(0)
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    await _settle()
    assert runtime.services.engine.pool.checkedout() == 0
    assert checkouts[0] == 1
    await uow.end()


async def test_a_session_taking_the_lock_returns_a_passed_connection(runtime: Any) -> None:
    uow = UnitOfWork(runtime.services)
    holding, release = asyncio.Event(), asyncio.Event()
    held_by_session: list[int] = []

    async def read(hold: bool = False) -> None:
        async with uow.reading() as conn:
            await conn.execute(text("SELECT 1"))
            if hold:
                holding.set()
                await release.wait()

    async def in_session() -> None:
        async with uow.session():
            # The passed read connection is back in the pool; the session holds none yet.
            held_by_session.append(runtime.services.engine.pool.checkedout())

    first = asyncio.create_task(read(hold=True))
    await holding.wait()
    session = asyncio.create_task(in_session())
    later = asyncio.create_task(read())  # waits behind the session
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, session, later)
    assert held_by_session == [0]
    assert runtime.services.engine.pool.checkedout() == 0
    await uow.end()


async def test_a_nested_page_checks_out_once_for_its_edges(
    client: httpx.AsyncClient, admin_headers: dict[str, str], checkouts: Any, runtime: Any
) -> None:
    response = await upload(client, admin_headers, csv_text(3))
    upload_id = str(response.json()["data"]["id"])
    query = """query($u: ID!) { debtors(first: 10, uploadId: $u) { nodes { id
      upload { id } vopLogs(first: 5) { totalCount } billingAttempts(first: 5) { totalCount }
    } } }"""
    await gql(client, query, {"u": upload_id}, admin_headers)  # warm
    checkouts[0] = 0
    body = await gql(client, query, {"u": upload_id}, admin_headers)
    assert "errors" not in body
    assert len(body["data"]["debtors"]["nodes"]) == 3
    # The caller's token, the page, then its three edges read one after another on one.
    assert checkouts[0] == 3
    await _settle()
    assert runtime.services.engine.pool.checkedout() == 0
