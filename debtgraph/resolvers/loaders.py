"""Per-request dataloaders: every edge of the graph costs one statement per batch, not per row.

``Loaders`` is created fresh for each request (and each subscription event), so cached rows
never outlive the unit of work that loaded them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Coroutine, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

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


@dataclass(frozen=True, slots=True)
class PageKey:
    """What one parent's page request is: parent id, size, cursor and filter values."""

    parent_id: Any
    first: int
    after: int | None = None
    filters: tuple[tuple[str, Hashable], ...] = ()


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

        Keys are ``PageKey``; parents asking for the same size, cursor and filters share one
        statement (ROW_NUMBER over the parent) and one count.
        """
        model = attr.class_
        id_col = model.id

        async def batch(keys: Sequence[PageKey]) -> list[Page[Any]]:
            groups: dict[tuple[Any, ...], list[PageKey]] = defaultdict(list)
            for key in keys:
                groups[(key.first, key.after, key.filters)].append(key)
            results: dict[PageKey, Page[Any]] = {}
            for (first, after, filters), group in groups.items():
                parents = {k.parent_id for k in group}
                conditions: list[ColumnElement[bool]] = [attr.in_(parents)]
                if filter_builder is not None:
                    conditions += filter_builder(dict(filters))
                counts_stmt = select(attr, func.count()).where(*conditions).group_by(attr)
                if after is not None:
                    conditions.append(id_col < after)
                rn = func.row_number().over(partition_by=attr, order_by=id_col.desc()).label("rn")
                inner = select(model, rn).where(*conditions).subquery()
                aliased_model = aliased(model, inner)
                stmt: Select[Any] = (
                    select(aliased_model)
                    .where(inner.c.rn <= first + 1)
                    .order_by(inner.c[attr.key], inner.c.id.desc())
                )
                async with self._uow.session() as session:
                    rows = (await session.scalars(stmt)).all()
                    counts: dict[Any, int] = {
                        parent: n for parent, n in (await session.execute(counts_stmt)).all()
                    }
                grouped: dict[Any, list[Any]] = defaultdict(list)
                for row in rows:
                    grouped[getattr(row, attr.key)].append(row)
                for key in group:
                    items = grouped.get(key.parent_id, [])
                    results[key] = Page(
                        items=items[:first],
                        has_next=len(items) > first,
                        total=int(counts.get(key.parent_id, 0)),
                    )
            return [results[k] for k in keys]

        return self._get(("pages", model, attr.key, name), lambda: DataLoader(batch))
