"""A read that ends while another waits hands it its connection (UnitOfWork.reading): one pool
checkout for the edges of one level of a query, and never a connection held while no read runs
or waits (a waiting read cancelled, a session taking the lock, the request's end)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
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


class _Reads:
    """Reads of one unit of work: one holding its lock until released (``held``), and others
    queued behind it, each a task."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.used: list[Any] = []

    async def read(self) -> None:
        async with self.uow.reading() as conn:
            self.used.append((await conn.get_raw_connection()).driver_connection)
            await conn.execute(text("SELECT 1"))

    async def held(self, last: Callable[[Any], Awaitable[None]] | None = None) -> None:
        """A read that holds the lock until released; ``last`` runs last in its block (it hands
        its connection on in the same step, before any other task runs)."""
        async with self.uow.reading() as conn:
            self.used.append((await conn.get_raw_connection()).driver_connection)
            await conn.execute(text("SELECT 1"))
            self.holding.set()
            await self.release.wait()
            if last is not None:
                await last(conn)

    async def start(self, held: Awaitable[None], *queued: Awaitable[None]) -> list[Any]:
        """The held read, then the others queued behind it, then the release: their tasks."""
        tasks = [asyncio.create_task(held)]  # type: ignore[arg-type]
        await self.holding.wait()
        tasks += [asyncio.create_task(q) for q in queued]  # type: ignore[arg-type]
        await asyncio.sleep(0)
        self.release.set()
        return tasks


async def test_reads_waiting_their_turn_share_one_checkout(runtime: Any, checkouts: Any) -> None:
    reads = _Reads(UnitOfWork(runtime.services))
    await asyncio.gather(*await reads.start(reads.held(), reads.read(), reads.read()))
    assert checkouts[0] == 1
    assert len({id(conn) for conn in reads.used}) == 1
    assert runtime.services.engine.pool.checkedout() == 0
    # A read alone later checks out again: nothing was kept between them.
    await reads.read()
    assert checkouts[0] == 2
    assert runtime.services.engine.pool.checkedout() == 0
    await reads.uow.end()


async def test_a_waiting_read_cancelled_gives_its_connection_back(
    runtime: Any, checkouts: Any
) -> None:
    reads = _Reads(UnitOfWork(runtime.services))
    waiting: list[asyncio.Task[None]] = []

    async def cancel_the_next(_conn: Any) -> None:
        waiting[0].cancel()  # cancelled while it waits: this read hands it the connection

    first, queued = await reads.start(reads.held(cancel_the_next), reads.read())
    waiting.append(queued)
    await first
    with pytest.raises(asyncio.CancelledError):
        await queued
    await _settle()
    assert runtime.services.engine.pool.checkedout() == 0
    assert checkouts[0] == 1
    await reads.uow.end()


async def test_a_session_taking_the_lock_returns_a_passed_connection(
    runtime: Any, checkouts: Any
) -> None:
    reads = _Reads(UnitOfWork(runtime.services))
    held_by_session: list[int] = []

    async def in_session() -> None:
        async with reads.uow.session():
            # The passed read connection is back in the pool; the session holds none yet.
            held_by_session.append(runtime.services.engine.pool.checkedout())

    # The later read waits behind the session: the first read hands it on, the session returns it.
    await asyncio.gather(*await reads.start(reads.held(), in_session(), reads.read()))
    assert held_by_session == [0]
    assert runtime.services.engine.pool.checkedout() == 0
    assert checkouts[0] == 2  # the first read's, then the later read's own
    assert reads.uow._passed is None
    await reads.uow.end()


async def test_the_end_of_the_request_returns_a_passed_connection(
    runtime: Any, checkouts: Any
) -> None:
    reads = _Reads(UnitOfWork(runtime.services))
    handed = asyncio.Event()

    async def hand_on(_conn: Any) -> None:
        handed.set()

    # A batch left behind: the straggler has not run when the request ends.
    first, straggler = await reads.start(reads.held(hand_on), reads.read())
    await handed.wait()
    assert reads.uow._passed is not None
    await reads.uow.end()
    assert runtime.services.engine.pool.checkedout() == 0
    with pytest.raises(RuntimeError, match="the request is over"):
        await straggler
    await first
    assert checkouts[0] == 1


async def test_a_read_that_failed_hands_nothing_on(runtime: Any, checkouts: Any) -> None:
    reads = _Reads(UnitOfWork(runtime.services))

    async def fail(_conn: Any) -> None:
        raise ValueError("the read failed")

    first, waiting = await reads.start(reads.held(fail), reads.read())
    with pytest.raises(ValueError, match="the read failed"):
        await first
    await waiting
    assert checkouts[0] == 2
    assert runtime.services.engine.pool.checkedout() == 0
    await reads.uow.end()


async def test_a_connection_the_server_closed_is_not_handed_on(runtime: Any) -> None:
    engine = runtime.services.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL terminates a backend; SQLite has none")
    reads = _Reads(UnitOfWork(runtime.services))

    async def terminated(conn: Any) -> None:
        # The server drops this backend after the read's last statement (a restart, an idle
        # timeout), and the event loop reads the end of its socket.
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        for _ in range(50):
            if (await conn.get_raw_connection()).driver_connection.is_closed():
                break
            await asyncio.sleep(0.01)

    await asyncio.gather(*await reads.start(reads.held(terminated), reads.read()))
    first, second = reads.used
    assert first.is_closed()
    assert second is not first  # a fresh connection, whose read answered
    await reads.uow.end()
    assert engine.pool.checkedout() == 0


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
