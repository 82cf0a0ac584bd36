"""Engine and session factory for SQLite (embedded default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import json
import operator
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy import JSON, ColumnElement, String, Table, bindparam, event, func, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    """Whether a database URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


# Failures that say the database cannot serve right now, not that the request is wrong: PostgreSQL
# shutting down, refusing or dropping connections, or out of connection slots.
_UNAVAILABLE_DRIVER_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    ConnectionError,
)


UNAVAILABLE_MESSAGE = "The service is busy; retry the request shortly."


def is_unavailable(exc: BaseException) -> bool:
    """Whether a failure means the database cannot serve now, so the client should retry later.

    A connection pool with no free connection within its timeout, a SQLite file still locked by
    another writer after the busy timeout, or a server that refuses, drops or shuts down
    connections: none of these is the request's fault, and none is a bug to page anyone about.
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, _UNAVAILABLE_DRIVER_ERRORS):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        original = exc.orig
        if isinstance(original, _UNAVAILABLE_DRIVER_ERRORS):
            return True
        cause = getattr(original, "__cause__", None)
        if isinstance(cause, _UNAVAILABLE_DRIVER_ERRORS):
            return True
        message = str(original).lower()
        return "database is locked" in message or "database table is locked" in message
    return False


def _int_or_float(text: str) -> int | float:
    value = int(text)
    return value if -(2**63) <= value < 2**64 else float(value)


def json_loads(text: str) -> Any:
    """JSON columns as the API parsed them: integers beyond 64 bits come back as floats.

    Request bodies are parsed with orjson, which reads such integers as floats; PostgreSQL's
    JSONB then prints a float like 1e+23 as a 24-digit integer, which orjson cannot render.

    orjson itself is the fast path (a nested page's raw_data is most of its decoding): it keeps
    integers from -2**63 to 2**64 - 1 and reads the others as the nearest float, the rule
    ``_int_or_float`` spells out for the standard parser. What orjson refuses and the standard
    parser reads (NaN, infinities and numbers beyond a float's range written by other clients,
    lone surrogates) goes to the standard parser, which answers as before.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_int=_int_or_float)


def _lower(value: object) -> object:
    """SQL ``lower()`` for SQLite, over every letter: NULL stays NULL, a number is its text."""
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    """An async engine tuned for the backend, its connection pool sized by the arguments."""
    kwargs: dict[str, Any] = {"echo": echo, "json_deserializer": json_loads}
    asyncpg_url = make_url(url).get_driver_name() == "asyncpg"
    if is_sqlite(url):
        # Concurrent requests and in-process jobs share the file: wait for locks, don't fail.
        kwargs["connect_args"] = {"timeout": 30}
    elif not asyncpg_url:
        kwargs["pool_pre_ping"] = True
    if make_url(url).database not in (None, "", ":memory:"):
        # A file or server database is pooled (an in-memory SQLite one is a single connection).
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # SQLite's own lower() folds ASCII only, so a case-insensitive search (ILIKE, which
            # SQLAlchemy renders as lower() LIKE lower()) missed "MARÍA" for "maría"; Python's
            # folds every letter, as PostgreSQL's does under its UTF-8 locale.
            dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    elif asyncpg_url:

        @event.listens_for(engine.sync_engine, "checkout")
        def _refuse_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            # A connection the server closed (a restart, pg_terminate_backend, an idle timeout)
            # is known closed as soon as the event loop has read the end of its socket: the pool
            # then discards it and hands out another. This replaces pool_pre_ping, whose ping
            # costs three round trips on asyncpg (BEGIN, ";", ROLLBACK) on every checkout, i.e.
            # twice per request (the caller's token, then the request's own unit of work).
            if server_closed(dbapi_conn):
                raise sa_exc.DisconnectionError("the server closed this connection")

    return engine


def server_closed(dbapi_conn: Any) -> bool:
    """Whether the server closed this (adapted DBAPI) connection, as far as the event loop has
    read: asyncpg knows it from the end of the socket; other drivers are taken as open."""
    is_closed = getattr(dbapi_conn.driver_connection, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection outside any transaction, for reads of one statement each.

    One statement is its own snapshot, so it needs no transaction around it; on PostgreSQL that
    saves the BEGIN and ROLLBACK round trips a session pays (SQLite begins none for reads).
    """
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no hidden refresh queries)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def among_texts(
    session: AsyncSession, column: Any, values: Sequence[str], name: str
) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """``column IN values`` for thousands of text values, and the parameters it needs.

    PostgreSQL: one array parameter joined as a set (``IN (SELECT unnest(:name))``). An IN
    list of thousands of values cost more to compile and plan than the lookup, and
    ``= ANY(:name)`` under the generic plan a prepared statement takes after five runs
    compares each row with the whole array instead of hashing it. Elsewhere: a plain IN.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        given = select(func.unnest(bindparam(name, type_=ARRAY(String)))).scalar_subquery()
        return column.in_(given), {name: list(values)}
    return column.in_(list(values)), {}


async def insert_rows(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows given as values in ``columns`` order, in bulk, in the caller's transaction.

    PostgreSQL: binary COPY on the asyncpg connection (JSON values go as text). Elsewhere: one
    executemany of a plain INSERT, each value converted by its column's own bind processor, so
    the stored values are what a Core insert stores, without its per-row bookkeeping; None is
    SQL NULL in every column, JSON ones included (as COPY stores it).
    """
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        json_at = [at for at, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]

        def copy_values(row: Sequence[Any]) -> Sequence[Any]:
            values = list(row)
            for at in json_at:
                if values[at] is not None:
                    values[at] = orjson.dumps(values[at]).decode()
            return values

        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            table.name,
            records=map(copy_values, rows) if json_at else rows,
            columns=list(columns),
        )
        return
    processors = [
        (at, process)
        for at, name in enumerate(columns)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]

    statement = insert(table).compile(dialect=dialect, column_keys=list(columns))
    # The compiled statement's parameters, by position, as indexes into ``columns``.
    order = [columns.index(name) for name in statement.positiontup or ()]

    # The parameters in the statement's order, picked in C (one column: still a tuple).
    pick = operator.itemgetter(*order) if len(order) > 1 else lambda v: tuple(v[at] for at in order)
    # The value last converted in each column, and what it became: a batch's rows share their
    # timestamps (one ``now`` object), whose conversion is most of a row's cost here.
    last: list[tuple[Any, Any]] = [(None, None)] * len(processors)

    def converted(row: Sequence[Any]) -> tuple[Any, ...]:
        values = list(row)
        for slot, (at, process) in enumerate(processors):
            value = values[at]
            if value is not None:
                seen, result = last[slot]
                if value is not seen:
                    result = process(value)
                    last[slot] = (value, result)
                values[at] = result
        return pick(values)

    params = list(map(converted, rows))
    if params:
        await connection.exec_driver_sql(str(statement), params)
