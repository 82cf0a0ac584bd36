"""Per-request dataloaders: every edge of the graph costs one statement per batch, not per row.

``Loaders`` is created fresh for each request (and each subscription event), so cached rows
never outlive the unit of work that loaded them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiodataloader import DataLoader
from sqlalchemy import Boolean, ColumnElement, Select, any_, bindparam, column, func, select, true
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.visitors import InternalTraversal

T = TypeVar("T")
MAX_PAGE = 100


class SessionSource(Protocol):
    """What the loaders need of the unit of work (``context.UnitOfWork``, which builds them)."""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """Exclusive use of the request's session."""
        ...

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for Core reads (the session's while it has a transaction open)."""
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


class PageGroup:
    """Many parents' pages of one window and filters, asked of a page loader as one key.

    A batched field (schema.base.batched) asks for the pages of every parent of a list at once:
    as one key per parent, that is a key, a future and some hashing of the window per parent
    (a nested page asks for two such fields under 100 parents), while the batch reads them all
    in one statement anyway. As one key it still joins the batch of whatever else asks that
    loader in the same tick (a list field under each of several parents' lists coalesces).
    Hashed by identity, so the loader's cache never answers one group from another: the batch
    answers a group's parents from the pages it has read before (see Loaders.pages), and
    load_pages drops the group's entry once it settles."""

    __slots__ = ("filters", "parent_ids", "window")

    def __init__(
        self,
        parent_ids: Sequence[Any],
        window: Window,
        filters: tuple[tuple[str, Hashable], ...] = (),
    ) -> None:
        self.parent_ids = parent_ids
        self.window = window
        self.filters = filters


async def load_pages(
    loader: DataLoader,
    parent_ids: Sequence[Any],
    window: Window,
    filters: tuple[tuple[str, Hashable], ...] = (),
) -> list[Page[Any] | Exception]:
    """Each parent's page of a page loader (Loaders.pages), in the parents' order, or for all of
    them the error the batch failed with (its one statement failed for every parent)."""
    if not parent_ids:
        return []
    group = PageGroup(tuple(parent_ids), window, filters)
    try:
        pages: list[Page[Any] | Exception] = await loader.load(group)
    except Exception as error:
        return [error] * len(parent_ids)
    finally:
        # No later load can name this group (identity): its entry would only hold its pages.
        loader.clear(group)
    return pages


class _DataLoader(DataLoader):
    """aiodataloader's, forgetting a cached future that was cancelled.

    A task awaiting a loader's future that is cancelled cancels the future too (graphql-core
    cancels the siblings of a non-null root field that failed), and the loader keeps it: every
    later load of that key in the request would raise CancelledError, as if the request itself
    were cancelled. Such a key is loaded anew instead.
    """

    def load(self, key: Any) -> Any:
        future = super().load(key)
        if future.cancelled():
            self.clear(key)
            future = super().load(key)
        return future


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

    def clear(self) -> None:
        """Drop every loader and what it cached, once the unit of work is over.

        Each loader's batch function holds these loaders (and often the request's context),
        which hold the loader: a cycle that reference counting never frees. Without this, all a
        request loaded (its rows, pages and futures) waits for the collector, whose young
        collections then walk some tens of thousands of such objects every few dozen requests.
        """
        self._loaders.clear()

    def custom(
        self, name: str, batch: Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
    ) -> DataLoader:
        """A request-scoped loader with its own batch function (aggregates, counts, …)."""
        return self._get(("custom", name), lambda: _DataLoader(batch))

    def by(
        self,
        attr: InstrumentedAttribute[Any],
        columns: Sequence[ColumnElement[Any]] | None = None,
    ) -> DataLoader:
        """Load one row per key by a unique column (``Model.id``, ``Model.public_id``).

        The model's entities, or with ``columns`` (labelled by attribute name, ``attr`` among
        them) Core rows of those columns, read as Loaders.pages reads its rows.
        """
        model = attr.class_
        if columns is None:

            async def batch(keys: Sequence[Any]) -> list[Any]:
                async with self._uow.session() as session:
                    stmt = select(model).where(attr.in_(set(keys)))
                    rows = (await session.scalars(stmt)).all()
                found = {getattr(row, attr.key): row for row in rows}
                return [found.get(k) for k in keys]

            return self._get(
                ("by", model, attr.key), lambda: _DataLoader(batch, max_batch_size=1000)
            )
        stmt = select(*columns).where(_AmongBound(attr, "keys"))

        async def batch_rows(keys: Sequence[Any]) -> list[Any]:
            async with self._uow.reading() as conn:
                rows = (await conn.execute(stmt, {"keys": list(set(keys))})).all()
            found = {getattr(row, attr.key): row for row in rows}
            return [found.get(k) for k in keys]

        # Keyed by its columns too: two callers reading different columns of the same model
        # by the same attribute must not share a loader (review).
        return self._get(
            ("by", model, attr.key, "rows", _shape(columns)),
            lambda: _DataLoader(batch_rows, max_batch_size=1000),
        )

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
            ("many", model, attr.key, tuple(map(str, order_by))), lambda: _DataLoader(batch)
        )

    def pages(
        self,
        attr: InstrumentedAttribute[Any],
        filter_builder: Callable[[dict[str, Any]], list[ColumnElement[bool]]] | None = None,
        name: str = "",
        columns: Sequence[ColumnElement[Any]] | None = None,
    ) -> DataLoader:
        """Newest-first pages of children per parent, one windowed query per distinct request.

        Keys are ``PageKey``, or a ``PageGroup`` of many parents (``load_pages``); parents
        asking for the same window and filters share the ids ranked per parent (ROW_NUMBER)
        and their rows, two statements, and past a cursor a third, a grouped count (without one
        the ranked window counts the children itself). A parent's page once read is kept for
        the request, whichever key asked it: a later key or group asking it again (the same
        edge reached at another depth of the query) is answered without a statement.

        The children are the model's entities, or with ``columns`` (labelled by attribute name,
        the parent's column among them) Core rows of those columns only: a nested page asks
        for a page under each of 100 parents, and entities cost their identity map, state and
        instrumented reads for rows that are only shown. Such a loader's statements are also
        built once per window and filters and kept (see _page_statements), so its
        ``filter_builder`` must answer the same conditions for the same values (no clock). On
        PostgreSQL a row loader's page is one statement whatever the cursor (see
        _lateral_page_statement).
        """
        model = attr.class_
        row_columns = tuple(columns) if columns is not None else None
        as_rows = row_columns is not None
        shape = _shape(row_columns) if row_columns is not None else None
        # The pages read so far, per window and filters, by parent (the loader's own cache
        # keeps a PageKey's, never a group's: see PageGroup). Only this call's batch uses it:
        # a loader asked for again is the first one, with its batch and its pages.
        known: dict[tuple[Any, ...], dict[Any, Page[Any]]] = {}

        def statements(
            window: Window, filters: tuple[tuple[str, Hashable], ...], lateral: bool
        ) -> _Statements:
            if row_columns is None:
                return _page_statements(
                    attr, filter_builder, window, filters, select(model), _among_expanded
                )
            # Everything the statements are built from: a name shared by two callers with other
            # columns or conditions must not hand one the other's statements (the kept
            # statements outlive the request).
            key = (model, attr.key, name, shape, filter_builder, window, filters, lateral)
            found = _KEPT_STATEMENTS.get(key)
            if found is None:
                if lateral:
                    found = _lateral_page_statement(
                        attr, filter_builder, window, filters, row_columns
                    )
                else:
                    found = _page_statements(
                        attr, filter_builder, window, filters, select(*row_columns), _AmongBound
                    )
                _KEPT_STATEMENTS[key] = found
                if len(_KEPT_STATEMENTS) > _MAX_KEPT_STATEMENTS:
                    del _KEPT_STATEMENTS[next(iter(_KEPT_STATEMENTS))]
            return found

        async def read(
            execute: Callable[..., Awaitable[Any]], stmts: _Statements, parents: list[Any]
        ) -> tuple[Sequence[Any], dict[Any, int]]:
            """The kept rows of the parents' pages, and each parent's total."""
            if stmts.single is not None:
                answered = (await execute(stmts.single, {"parents": parents})).all()
                # By position (page_parent, page_total, page_row lead the statement's columns):
                # by name, each read is a look-up in Python, three per parent.
                return (
                    [row for row in answered if row[2] is not None],
                    {row[0]: int(row[1]) for row in answered},
                )
            assert stmts.kept is not None
            assert stmts.rows is not None
            kept_rows = (await execute(stmts.kept, {"parents": parents})).all()
            result = await execute(stmts.rows, {"kept": [row[0] for row in kept_rows]})
            rows = result.all() if as_rows else result.scalars().all()
            counted: Sequence[tuple[Any, Any]]
            if stmts.counts is not None:
                counted = [(p, n) for p, n in (await execute(stmts.counts, {"parents": parents}))]
            else:
                counted = [(row[2], row[3]) for row in kept_rows]
            return rows, {p: int(n) for p, n in counted}

        async def batch(keys: Sequence[PageKey | PageGroup]) -> list[Any]:
            # The parents asked per window and filters, each once, in the order first asked.
            asked: dict[tuple[Window, tuple[tuple[str, Hashable], ...]], dict[Any, None]] = {}
            for key in keys:
                wanted = asked.setdefault((key.window, key.filters), {})
                if isinstance(key, PageGroup):
                    wanted.update(dict.fromkeys(key.parent_ids))
                else:
                    wanted[key.parent_id] = None
            fresh: dict[tuple[Any, ...], dict[Any, Page[Any]]] = {}
            for (window, filters), asked_parents in asked.items():
                read_before = known.get((window, filters), {})
                parents = [parent for parent in asked_parents if parent not in read_before]
                if not parents:
                    continue
                if as_rows:
                    # Rows are no entities of the session: read on the request's connection
                    # for reads (its transaction's when it has one open, so a mutation's
                    # payload sees what it wrote), without a transaction begun for them.
                    async with self._uow.reading() as conn:
                        lateral = conn.dialect.name == "postgresql"
                        stmts = statements(window, filters, lateral)
                        rows, totals = await read(conn.execute, stmts, parents)
                else:
                    stmts = statements(window, filters, False)
                    async with self._uow.session() as session:
                        rows, totals = await read(session.execute, stmts, parents)
                grouped: dict[Any, list[Any]] = defaultdict(list)
                if as_rows:
                    if rows:
                        # A row's column by position: by name, each read is a look-up in Python.
                        at = rows[0]._fields.index(attr.key)
                        for row in rows:
                            grouped[row[at]].append(row)
                else:
                    parent_key = attr.key
                    for row in rows:
                        grouped[getattr(row, parent_key)].append(row)
                    # The children are loaded now: their own edges back (VopLog.debtor, …) and
                    # any later look-up by id in this request read them from here, not from SQL
                    # (rows are not entities: the loader by id answers entities only).
                    by_id = self.by(model.id)
                    for row in rows:
                        by_id.prime(row.id, row)
                empty: list[Any] = []
                fresh[(window, filters)] = {
                    parent: window.page(grouped.get(parent, empty), totals.get(parent, 0))
                    for parent in parents
                }
            # Kept once every read of the batch is done: a batch that fails keeps nothing.
            for asked_key, pages in fresh.items():
                known.setdefault(asked_key, {}).update(pages)
            answers: list[Any] = []
            for key in keys:
                found = known[(key.window, key.filters)]
                if isinstance(key, PageGroup):
                    answers.append([found[parent] for parent in key.parent_ids])
                else:
                    answers.append(found[key.parent_id])
            return answers

        # Keyed by its columns too: two callers of one name reading other columns must not
        # share a loader (review). Not by its filter builder: some callers build theirs anew
        # per parent (a closure), and the filters' values are in each key.
        return self._get(("pages", model, attr.key, name, shape), lambda: _DataLoader(batch))


@dataclass(frozen=True, slots=True)
class _Statements:
    """A page loader's statements for one window and filters, the parents and the ids kept
    bound by name (``parents``, ``kept``): the same statements serve any parents. On
    PostgreSQL a row loader's are one statement, ``single`` (see _lateral_page_statement)."""

    kept: Select[Any] | None
    rows: Select[Any] | None
    counts: Select[Any] | None
    single: Select[Any] | None = None


# The statements of row loaders (Loaders.pages with columns), by model, parent, loader name,
# window and filters. Building them is a good part of a nested page's cost (the ranked subquery
# and its columns are coerced anew, then walked for SQLAlchemy's cache key). At most
# _MAX_KEPT_STATEMENTS, the first built dropped first (a cursor's window is its own entry).
def _shape(columns: Sequence[ColumnElement[Any]]) -> tuple[str, ...]:
    """What a row loader's columns are, for its keys: their labels and what each reads.

    Remembered by the column objects themselves (a column hashes by identity, and the entry
    holds it, so no other column can take its identity while the entry lives): rendering each
    column is an SQL compilation, and the callers pass the same module-level columns on every
    call. Two callers with other columns still get other shapes; equal columns built apart
    share one, as do columns differing only in a literal value (rendered as the same bound
    parameter): the callers' columns are module-level constants naming model attributes.
    """
    identity = tuple(columns)
    shape = _SHAPES.get(identity)
    if shape is None:
        shape = _SHAPES[identity] = tuple(
            f"{getattr(column, 'key', '')}={column}" for column in identity
        )
        if len(_SHAPES) > _MAX_KEPT_STATEMENTS:
            del _SHAPES[next(iter(_SHAPES))]
    return shape


_SHAPES: dict[tuple[ColumnElement[Any], ...], tuple[str, ...]] = {}


_KEPT_STATEMENTS: dict[tuple[Any, ...], _Statements] = {}
_MAX_KEPT_STATEMENTS = 512


class _AmongBound(ColumnElement[bool]):
    """``column IN (:name)`` of a list bound at execution; on PostgreSQL ``column = ANY(:name)``,
    the list one array parameter: SQLAlchemy renders a list's parameters one by one on every
    execution (a cast each), some hundreds of them for a nested page."""

    inherit_cache = True
    type = Boolean()
    # A condition as it is: no "= 1" appended where it stands alone (SQLite).
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: InstrumentedAttribute[Any], name: str) -> None:
        self.column = column.__clause_element__()
        self.name = name


@compiles(_AmongBound)
def _among_in(element: _AmongBound, compiler: Any, **kw: Any) -> str:
    return compiler.process(  # type: ignore[no-any-return]
        element.column.in_(bindparam(element.name, expanding=True)), **kw
    )


@compiles(_AmongBound, "postgresql")
def _among_any(element: _AmongBound, compiler: Any, **kw: Any) -> str:
    array = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    return compiler.process(element.column == any_(array), **kw)  # type: ignore[no-any-return]


def _among_expanded(column: InstrumentedAttribute[Any], name: str) -> ColumnElement[bool]:
    return column.in_(bindparam(name, expanding=True))


def _page_statements(
    attr: InstrumentedAttribute[Any],
    filter_builder: Callable[[dict[str, Any]], list[ColumnElement[bool]]] | None,
    window: Window,
    filters: tuple[tuple[str, Hashable], ...],
    selected: Select[Any],
    among: Callable[[InstrumentedAttribute[Any], str], ColumnElement[bool]],
) -> _Statements:
    model = attr.class_
    conditions: list[ColumnElement[bool]] = [among(attr, "parents")]
    if filter_builder is not None:
        conditions += filter_builder(dict(filters))
    # The totals apart, narrow and grouped: a window function counting the whole partition in
    # the page's statement makes the database read every child row in full (raw_data and all)
    # before it returns the first one.
    # The page ranks ids only, over rows already past the cursor, so the database never
    # carries full rows through the window; the full rows of the size + 1 kept per parent are
    # then read by primary key. A join instead lets PostgreSQL, which cannot estimate the rank
    # bound, hash the whole table to find them.
    rank = func.row_number().over(partition_by=attr, order_by=window.order(model.id))
    bounds = window.bounds(model.id)
    columns = [model.id.label("id"), rank.label("rn")]
    if not bounds:
        # Without a cursor the ranked ids are all the parent's children: their count over the
        # same narrow window is the total, with no statement apart (a parent without children
        # is absent, and its total 0).
        columns += [attr.label("parent"), func.count().over(partition_by=attr).label("total")]
    ranked = select(*columns).where(*conditions, *bounds).subquery()
    return _Statements(
        kept=select(*ranked.c).where(ranked.c.rn <= window.size + 1),
        rows=selected.where(among(model.id, "kept")).order_by(window.order(model.id)),
        counts=(select(attr, func.count()).where(*conditions).group_by(attr) if bounds else None),
    )


def _lateral_page_statement(
    attr: InstrumentedAttribute[Any],
    filter_builder: Callable[[dict[str, Any]], list[ColumnElement[bool]]] | None,
    window: Window,
    filters: tuple[tuple[str, Hashable], ...],
    columns: Sequence[ColumnElement[Any]],
) -> _Statements:
    """A row page loader's one statement on PostgreSQL: per parent of the bound array, the ids
    of its ``size + 1`` rows past the cursor (read from the (parent, id) index alone, stopped at
    the limit), their rows joined by id, and its total: its children under the filters but not
    the cursor, counted once for all the parents (the same total as the grouped count apart, for
    a cursor or none). A parent without rows in its window still answers its total, on a row
    whose page columns are NULL (``page_row``).

    The lateral selects ids only (review): selecting the row's columns there let PostgreSQL walk
    the primary key backwards, filtering on the parent, which for a parent with no row in its
    window (an empty upload, a cursor past the end) read the whole table. And the count is one
    grouped scan, not a lateral per parent: under a filter served by a partial index (``result``)
    each parent's count read the whole index."""
    model = attr.class_
    parents = (
        func.unnest(bindparam("parents", type_=postgresql.ARRAY(attr.type)))
        .table_valued(column("id", attr.type))
        .render_derived(name="p")
    )
    parent = parents.c.id
    conditions: list[ColumnElement[bool]] = []
    if filter_builder is not None:
        conditions += filter_builder(dict(filters))
    kept = (
        select(model.id.label("page_row"))
        .where(attr == parent, *conditions, *window.bounds(model.id))
        .order_by(window.order(model.id))
        .limit(window.size + 1)
        # Its own table, not the outer query's (which joins the kept rows by id).
        .correlate_except(model)
        .lateral("page")
    )
    counted = (
        select(attr.label("counted_parent"), func.count().label("page_total"))
        .where(_AmongBound(attr, "parents"), *conditions)
        .group_by(attr)
        .subquery("counted")
    )
    single = (
        select(
            parent.label("page_parent"),
            func.coalesce(counted.c.page_total, 0).label("page_total"),
            kept.c.page_row,
            *columns,
        )
        .select_from(parents)
        .outerjoin(counted, counted.c.counted_parent == parent)
        .outerjoin(kept, true())
        .outerjoin(model, model.id == kept.c.page_row)
        .order_by(window.order(kept.c.page_row))
    )
    return _Statements(kept=None, rows=None, counts=None, single=single)
