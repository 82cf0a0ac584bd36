"""Per-request dataloaders: every edge of the graph costs one statement per batch, not per row.

``Loaders`` is created fresh for each request (and each subscription event), so cached rows
never outlive the unit of work that loaded them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")
MAX_PAGE = 100


class SessionSource(Protocol):
    """What the loaders need of the unit of work (``context.UnitOfWork``, which builds them)."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """Exclusive use of the request's session."""
        ...


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a newest-first list, with what a connection needs around it."""

    items: list[T]
    has_next: bool
    total: int
    has_previous: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """Which rows of a list a page holds, by row id (Relay's four arguments).

    Lists are newest first (``oldest_first`` for the one REST shows oldest first). Forward
    (``first``/``after``): the ``size`` rows that follow ``after``. Backward (``last``/
    ``before``): the ``size`` rows that precede ``before``, still shown in the list's order.
    ``after`` and ``before`` together bound the rows on both sides.
    """

    size: int
    after: int | None = None
    before: int | None = None
    backward: bool = False
    oldest_first: bool = False

    def bounds(self, id_col: Any) -> list[ColumnElement[bool]]:
        """The cursor conditions on ``id_col``."""
        conditions: list[ColumnElement[bool]] = []
        if self.after is not None:
            conditions.append(id_col > self.after if self.oldest_first else id_col < self.after)
        if self.before is not None:
            conditions.append(id_col < self.before if self.oldest_first else id_col > self.before)
        return conditions

    def order(self, id_col: Any) -> Any:
        """The order rows are fetched in: away from the cursor the page starts at."""
        return id_col.asc() if self.backward != self.oldest_first else id_col.desc()

    def page(self, rows: Sequence[T], total: int) -> Page[T]:
        """The page of ``rows`` fetched in :meth:`order` (at most ``size + 1`` of them).

        The extra row says whether more lie beyond the page's far end; a cursor on the near end
        means rows lie before it (the row it names, at least).
        """
        more = len(rows) > self.size
        items = list(rows[: self.size])
        if self.backward:
            items.reverse()
            return Page(items, has_next=self.before is not None, total=total, has_previous=more)
        return Page(items, has_next=more, total=total, has_previous=self.after is not None)


@dataclass(frozen=True, slots=True)
class PageKey:
    """What one parent's page request is: parent id, window and filter values."""

    parent_id: Any
    window: Window
    filters: tuple[tuple[str, Hashable], ...] = ()


async def load_each(loader: DataLoader, keys: Sequence[Any]) -> list[Any]:
    """Each key's value, or the exception its own load failed with, in the keys' order.

    ``load_many`` fails every key with the first failure; a parent's field fails alone.
    """
    answers = await asyncio.gather(*(loader.load(key) for key in keys), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, Exception):
            raise answer  # cancelled, or an interpreter exit: not a field's failure
    return answers


class Loaders:
    """Factory and cache of the request's dataloaders."""

    def __init__(self, uow: SessionSource) -> None:
        self._uow = uow
        self._loaders: dict[tuple[Any, ...], DataLoader] = {}

    def _get(self, key: tuple[Any, ...], make: Callable[[], DataLoader]) -> DataLoader:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = make()
        return loader

    def custom(
        self, name: str, batch: Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
    ) -> DataLoader:
        """A request-scoped loader with its own batch function (aggregates, counts, …)."""
        return self._get(("custom", name), lambda: DataLoader(batch))

    def by(self, attr: InstrumentedAttribute[Any]) -> DataLoader:
        """Load one row per key by a unique column (``Model.id``, ``Model.public_id``)."""
        model = attr.class_

        async def batch(keys: Sequence[Any]) -> list[Any]:
            async with self._uow.session() as session:
                rows = (await session.scalars(select(model).where(attr.in_(set(keys))))).all()
            found = {getattr(row, attr.key): row for row in rows}
            return [found.get(k) for k in keys]

        return self._get(("by", model, attr.key), lambda: DataLoader(batch, max_batch_size=1000))

    def many(
        self,
        attr: InstrumentedAttribute[Any],
        order_by: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]] = (),
    ) -> DataLoader:
        """Load every row whose ``attr`` equals the key (a small, bounded to-many edge)."""
        model = attr.class_

        async def batch(keys: Sequence[Any]) -> list[list[Any]]:
            stmt = select(model).where(attr.in_(set(keys)))
            if order_by:
                stmt = stmt.order_by(*order_by)
            async with self._uow.session() as session:
                rows = (await session.scalars(stmt)).all()
            grouped: dict[Any, list[Any]] = defaultdict(list)
            for row in rows:
                grouped[getattr(row, attr.key)].append(row)
            return [grouped.get(k, []) for k in keys]

        return self._get(
            ("many", model, attr.key, tuple(map(str, order_by))), lambda: DataLoader(batch)
        )

    def pages(
        self,
        attr: InstrumentedAttribute[Any],
        filter_builder: Callable[[dict[str, Any]], list[ColumnElement[bool]]] | None = None,
        name: str = "",
    ) -> DataLoader:
        """Newest-first pages of children per parent, one windowed query per distinct request.

        Keys are ``PageKey``; parents asking for the same window and filters share the ids
        ranked per parent (ROW_NUMBER) and their rows, two statements, and past a cursor a
        third, a grouped count (without one the ranked window counts the children itself).
        """
        model = attr.class_

        async def batch(keys: Sequence[PageKey]) -> list[Page[Any]]:
            groups: dict[tuple[Any, ...], list[PageKey]] = defaultdict(list)
            for key in keys:
                groups[(key.window, key.filters)].append(key)
            results: dict[PageKey, Page[Any]] = {}
            for (window, filters), group in groups.items():
                parents = {k.parent_id for k in group}
                conditions: list[ColumnElement[bool]] = [attr.in_(parents)]
                if filter_builder is not None:
                    conditions += filter_builder(dict(filters))
                # The totals apart, narrow and grouped: a window function counting the whole
                # partition in the page's statement makes the database read every child row
                # in full (raw_data and all) before it returns the first one.
                # The page ranks ids only, over rows already past the cursor, so the database
                # never carries full rows through the window; the full rows of the size + 1
                # kept per parent are then read by primary key. A join instead lets PostgreSQL,
                # which cannot estimate the rank bound, hash the whole table to find them.
                rank = func.row_number().over(partition_by=attr, order_by=window.order(model.id))
                bounds = window.bounds(model.id)
                columns = [model.id.label("id"), rank.label("rn")]
                if not bounds:
                    # Without a cursor the ranked ids are all the parent's children: their
                    # count over the same narrow window is the total, with no statement apart
                    # (a parent without children is absent, and its total 0).
                    columns += [
                        attr.label("parent"),
                        func.count().over(partition_by=attr).label("total"),
                    ]
                ranked = select(*columns).where(*conditions, *bounds).subquery()
                kept_stmt = select(*ranked.c).where(ranked.c.rn <= window.size + 1)
                async with self._uow.session() as session:
                    kept_rows = (await session.execute(kept_stmt)).all()
                    kept = [row[0] for row in kept_rows]
                    rows_stmt = (
                        select(model).where(model.id.in_(kept)).order_by(window.order(model.id))
                    )
                    rows = (await session.scalars(rows_stmt)).all()
                    counted: Sequence[tuple[Any, Any]]
                    if bounds:
                        counts_stmt = select(attr, func.count()).where(*conditions).group_by(attr)
                        counted = [(p, n) for p, n in (await session.execute(counts_stmt)).all()]
                    else:
                        counted = [(row[2], row[3]) for row in kept_rows]
                    totals = {p: int(n) for p, n in counted}
                grouped: dict[Any, list[Any]] = defaultdict(list)
                # The children are loaded now: their own edges back (VopLog.debtor, …) and any
                # later look-up by id in this request read them from here, not from SQL.
                by_id = self.by(model.id)
                for row in rows:
                    grouped[getattr(row, attr.key)].append(row)
                    by_id.prime(row.id, row)
                for key in group:
                    results[key] = window.page(
                        grouped.get(key.parent_id, []), totals.get(key.parent_id, 0)
                    )
            return [results[k] for k in keys]

        return self._get(("pages", model, attr.key, name), lambda: DataLoader(batch))
