"""Closing check-then-write races in the database, alike on PostgreSQL and SQLite.

A read followed by a write is only safe when the database orders concurrent writers: a row lock
held from before the read until the commit, a conditional ``UPDATE … RETURNING`` whose ``WHERE``
is the check, or a unique constraint whose violation is answered as the rule's own error.

A unique column whose duplicate the API documents as an error names that error in its ``info``
under :data:`DUPLICATE_ERROR`; :func:`duplicate_refusal` is the one mapping from a violation to
it, applied by :func:`flush_refusing_duplicates` and by every commit (``outbox.commit``).

SQLite has no row locks, and pysqlite opens a transaction only at the first write, so reads
before it see no lock at all. There a write that changes nothing takes the database's write lock
instead: later writers queue behind it (``busy_timeout``) until the commit, and the reads that
follow it see every committed row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from debtgraph.domain.core.base import Base
from debtgraph.domain.core.errors import DomainValidationError, FieldError

# Key of a unique column's ``info`` holding the FieldError its duplicate is refused with.
DUPLICATE_ERROR = "duplicate_error"


def dialect_of(session: AsyncSession) -> str:
    """The session's backend: ``postgresql`` or ``sqlite``."""
    return session.get_bind().dialect.name


async def lock_row(session: AsyncSession, model: type[DeclarativeBase], row_id: int) -> bool:
    """Hold the write lock of ``model``'s row ``row_id`` until the transaction ends.

    Returns False when there is no such row. Concurrent callers for one row run one at a time.
    """
    table: Any = model.__table__
    if dialect_of(session) == "sqlite":
        column = _plain_column(table)
        result: Any = await session.execute(
            update(table).where(table.c.id == row_id).values({column.name: column})
        )
        return bool(result.rowcount)
    # NO KEY UPDATE: orders writers of this row without blocking inserts that reference it.
    locked = await session.execute(
        select(table.c.id).where(table.c.id == row_id).with_for_update(key_share=True)
    )
    return locked.first() is not None


def _plain_column(table: Table) -> Column[Any]:
    """A column outside every key and index: setting it to itself costs SQLite no checks."""
    indexed = {column for index in table.indexes for column in index.columns}
    return next(
        column
        for column in table.columns
        if not (column.primary_key or column.foreign_keys or column.unique or column in indexed)
    )


async def insert_unless_exists(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    unique_columns: Sequence[str],
) -> int | None:
    """``INSERT … ON CONFLICT DO NOTHING``: the new row's id, or None when one already existed.

    A concurrent insert of the same key waits for the other transaction and then does nothing,
    so a read after it finds the row either way.
    """
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    table: Any = model.__table__
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(unique_columns))
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar()


def is_unique_violation(exc: IntegrityError, table: str, column: str) -> bool:
    """Whether ``exc`` is the unique constraint on ``table.column`` refusing a duplicate."""
    cause = exc.orig.__cause__ if exc.orig is not None else None
    constraint = getattr(cause, "constraint_name", None)
    if constraint is not None:
        # PostgreSQL (asyncpg) names the constraint; names follow base.NAMING_CONVENTION.
        return bool(constraint == f"uq_{table}_{column}")
    return f"UNIQUE constraint failed: {table}.{column}" in str(exc.orig)


def duplicate_refusal(exc: IntegrityError) -> DomainValidationError | None:
    """The documented error for a unique violation, or None when the column documents none."""
    for table in Base.metadata.tables.values():
        for column in table.columns:
            error = column.info.get(DUPLICATE_ERROR)
            if isinstance(error, FieldError) and is_unique_violation(exc, table.name, column.name):
                return DomainValidationError([error])
    return None


async def flush_refusing_duplicates(session: AsyncSession) -> None:
    """Flush; a duplicate in a unique column is raised as the error the column documents.

    The failed statement leaves the transaction to be rolled back by the caller.
    """
    try:
        await session.flush()
    except IntegrityError as exc:
        refusal = duplicate_refusal(exc)
        if refusal is None:
            raise
        raise refusal from None
