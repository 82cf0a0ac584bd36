"""The generic dataloaders: one statement per batch whatever the number of parents."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from aiodataloader import DataLoader
from sqlalchemy import ColumnElement

from debtgraph.domain.debtors.models import Debtor, Upload
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.loaders import PageGroup, PageKey, Window, _shape, load_pages
from debtgraph.server.app import Runtime


@pytest.fixture
async def new_context(runtime: Runtime) -> AsyncIterator[Callable[[], Context]]:
    """Contexts of the runtime, as many as a test asks for, each closed when it ends."""
    made: list[Context] = []

    def create() -> Context:
        made.append(Context.create(runtime.services))
        return made[-1]

    yield create
    for ctx in made:
        await ctx.uow.close()


async def _arrange(db: Any, clock: Any, uploads: int, debtors_each: int) -> list[int]:
    now = clock.now()
    ids = []
    async with db() as session:
        for u in range(uploads):
            upload = Upload(
                filename=f"{u}.csv",
                original_filename=f"{u}.csv",
                file_size=1,
                mime_type="text/csv",
                created_at=now,
                updated_at=now,
            )
            session.add(upload)
            await session.flush()
            ids.append(upload.id)
            for r in range(debtors_each):
                session.add(
                    Debtor(
                        upload_id=upload.id,
                        row_number=r + 2,
                        raw_data={},
                        first_name=f"d{u}-{r}",
                        amount=Decimal("10.00"),
                        validation_status="valid" if r % 2 else "pending",
                        created_at=now,
                        updated_at=now,
                    )
                )
        await session.commit()
    return ids


async def test_pages_loader_is_one_windowed_query_per_request_shape(
    new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    upload_ids = await _arrange(db, clock, uploads=5, debtors_each=7)
    ctx = new_context()
    loader = ctx.loaders.pages(Debtor.upload_id)
    with sql_counter:
        pages = [await p for p in [loader.load(PageKey(u, Window(3))) for u in upload_ids]]
    # The ranked ids carry their partition's count (no cursor), then their rows.
    assert sql_counter.count == 2
    for upload_id, page in zip(upload_ids, pages, strict=True):
        assert page.total == 7
        assert page.has_next is True
        assert len(page.items) == 3
        assert all(d.upload_id == upload_id for d in page.items)
        ids = [d.id for d in page.items]
        assert ids == sorted(ids, reverse=True)  # newest first

    last = pages[0].items[-1].id
    with sql_counter:
        nxt = await ctx.loaders.pages(Debtor.upload_id).load(
            PageKey(upload_ids[0], Window(10, last))
        )
    # Past a cursor the ranked rows are not all the children: the count is its own query.
    assert sql_counter.count == 3
    assert len(nxt.items) == 4
    assert nxt.has_next is False
    assert all(d.id < last for d in nxt.items)

    def only_valid(filters: dict[str, Any]) -> list[Any]:
        return [Debtor.validation_status == filters["status"]]

    filtered_loader = ctx.loaders.pages(Debtor.upload_id, only_valid, name="by-status")
    filtered = await filtered_loader.load(
        PageKey(upload_ids[1], Window(100), (("status", "valid"),))
    )
    assert filtered.total == 3
    assert {d.validation_status for d in filtered.items} == {"valid"}


async def test_by_and_many_loaders_batch(
    new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    upload_ids = await _arrange(db, clock, uploads=4, debtors_each=2)
    ctx = new_context()
    with sql_counter:
        uploads = [await f for f in [ctx.loaders.by(Upload.id).load(i) for i in upload_ids]]
    assert sql_counter.count == 1
    assert [u.id for u in uploads] == upload_ids
    assert await ctx.loaders.by(Upload.id).load(10_000) is None
    with sql_counter:
        groups = [
            await f
            for f in [
                ctx.loaders.many(Debtor.upload_id, order_by=[Debtor.row_number]).load(i)
                for i in upload_ids
            ]
        ]
    assert sql_counter.count == 1
    assert [[d.row_number for d in g] for g in groups] == [[2, 3]] * 4


async def test_a_load_cancelled_by_its_waiter_is_loaded_anew(
    new_context: Callable[[], Context], db: Any, clock: Any
) -> None:
    # graphql-core cancels the siblings of a non-null root field that failed: the task waiting
    # on a loader's future cancels the future, which the loader kept for the rest of the request.
    (upload_id,) = await _arrange(db, clock, uploads=1, debtors_each=1)
    ctx = new_context()
    loader = ctx.loaders.by(Upload.id)
    waiter = asyncio.ensure_future(loader.load(upload_id))
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    upload = await ctx.loaders.by(Upload.id).load(upload_id)
    assert upload is not None
    assert upload.id == upload_id


def _windowed_subquery(statement: str) -> str:
    """The parenthesised SELECT that computes ROW_NUMBER in ``statement``."""
    lowered = statement.lower()
    start = lowered.rindex("(select", 0, lowered.index("row_number()"))
    depth = 0
    for end in range(start, len(statement)):
        depth += {"(": 1, ")": -1}.get(statement[end], 0)
        if depth == 0:
            return lowered[start : end + 1]
    raise AssertionError(f"unbalanced subquery in {statement}")


async def test_a_page_ranks_ids_only_past_the_cursor(
    new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    """The windowed subquery reads ids, not full rows, and applies the cursor before ranking.

    Ranking full rows (``debtors.raw_data`` and all) over a parent's whole partition made every
    nested page read all of the parent's children in full, however deep the cursor.
    """
    upload_ids = await _arrange(db, clock, uploads=2, debtors_each=7)
    ctx = new_context()
    first = await ctx.loaders.pages(Debtor.upload_id).load(PageKey(upload_ids[0], Window(3)))
    cursor = first.items[-1].id
    with sql_counter:
        page = await ctx.loaders.pages(Debtor.upload_id).load(
            PageKey(upload_ids[0], Window(3, after=cursor))
        )
    assert [d.id for d in page.items] == [cursor - 1, cursor - 2, cursor - 3]
    assert page.total == 7
    ranking, rows, count = (s.lower() for s in sql_counter.statements)
    assert "raw_data" not in ranking, ranking
    windowed = _windowed_subquery(ranking)
    assert "debtors.id <" in windowed, windowed  # the cursor bound, inside the ranking
    # Full rows only for the ranks kept, by primary key.
    assert "raw_data" in rows, rows
    assert "debtors.id in" in rows, rows
    assert " over " not in rows, rows
    assert "raw_data" not in count, count
    assert " over " not in count, count


async def test_row_pages_and_rows_by_id_answer_what_entities_answer(
    runtime: Runtime, new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    """Loaders with ``columns`` read Core rows of those columns: the same pages (items, order,
    totals, has_next) in the same statements as the entity loaders, cursor and filter included,
    the id lists bound whole (one array parameter on PostgreSQL)."""
    upload_ids = await _arrange(db, clock, uploads=3, debtors_each=7)
    columns: list[ColumnElement[Any]] = [
        Debtor.id.label("id"),
        Debtor.upload_id.label("upload_id"),
        Debtor.validation_status.label("validation_status"),
    ]

    def only(filters: dict[str, Any]) -> list[Any]:
        return [Debtor.validation_status == filters["status"]] if filters else []

    def shape(page: Any) -> tuple[Any, ...]:
        return (
            [(d.id, d.upload_id, d.validation_status) for d in page.items],
            page.total,
            page.has_next,
            page.has_previous,
        )

    ctx = new_context()
    entities = ctx.loaders.pages(Debtor.upload_id, only, name="e")
    rows = ctx.loaders.pages(Debtor.upload_id, only, name="r", columns=columns)
    first = await entities.load(PageKey(upload_ids[0], Window(3)))
    cursor = first.items[-1].id
    windows = [
        (Window(3), ()),
        (Window(3, after=cursor), ()),
        (Window(2, backward=True), ()),
        (Window(2, before=cursor, backward=True), ()),
        (Window(2, after=cursor, oldest_first=True), ()),
        (Window(100), (("status", "valid"),)),
        (Window(1, after=cursor), (("status", "valid"),)),
    ]
    # On PostgreSQL one statement per window (a lateral page and count per parent), else
    # the ranked ids, their rows, and past a cursor the counts apart: the entities' pages,
    # read the second way on both databases, are what the rows must match.
    lateral = runtime.services.engine.dialect.name == "postgresql"
    for window, filters in windows:
        keys = [PageKey(u, window, filters) for u in [*upload_ids, 10_000]]
        expected = [shape(await entities.load(k)) for k in keys]
        with sql_counter:
            got = [await p for p in [rows.load(k) for k in keys]]
        assert [shape(p) for p in got] == expected, window
        bounded = window.after is not None or window.before is not None
        assert sql_counter.count == (1 if lateral else 3 if bounded else 2), window
        assert all(type(d) is not Debtor for p in got for d in p.items)  # rows, not entities
        if lateral:
            # The totals one grouped count for all the parents (not a count per parent or
            # per row), and the lateral page ids only, its rows joined by id (review: a
            # lateral of full rows let PostgreSQL walk the primary key for an empty parent).
            (single,) = (s.lower() for s in sql_counter.statements)
            assert "count(*) as page_total" in single, single
            assert "group by debtors.upload_id) as counted" in single, single
            assert "join lateral (select debtors.id as page_row from debtors" in " ".join(
                single.split()
            ), single
    # The same statements again, built once: other parents, the same answers.
    again = await ctx.loaders.pages(Debtor.upload_id, only, name="r", columns=columns).load(
        PageKey(upload_ids[1], Window(3))
    )
    assert shape(again) == shape(await entities.load(PageKey(upload_ids[1], Window(3))))

    by_rows = ctx.loaders.by(Upload.id, [Upload.id.label("id"), Upload.filename.label("f")])
    with sql_counter:
        found = [await f for f in [by_rows.load(i) for i in [*upload_ids, 10_000]]]
    assert sql_counter.count == 1
    assert [(r.id, r.f) for r in found[:-1]] == [(u, f"{n}.csv") for n, u in enumerate(upload_ids)]
    assert found[-1] is None


def _nobody(values: dict[str, Any]) -> list[ColumnElement[bool]]:
    return [Debtor.validation_status == "nope"]


async def test_row_loaders_of_one_name_never_share_statements_or_loaders(
    runtime: Runtime, db: Any, clock: Any
) -> None:
    """The kept page statements outlive the request: two callers naming their loader alike but
    reading other columns, or under other conditions, each get their own (review)."""
    (upload_id,) = await _arrange(db, clock, uploads=1, debtors_each=3)
    narrow = [Debtor.id.label("id"), Debtor.upload_id.label("upload_id")]
    wide = [*narrow, Debtor.first_name.label("first_name")]
    first = Context.create(runtime.services)
    try:
        loader = first.loaders.pages(Debtor.upload_id, _nobody, name="shared", columns=narrow)
        none = await loader.load(PageKey(upload_id, Window(5)))
    finally:
        await first.uow.close()
    second = Context.create(runtime.services)
    try:
        loader = second.loaders.pages(Debtor.upload_id, None, name="shared", columns=wide)
        page = await loader.load(PageKey(upload_id, Window(5)))
        one = await second.loaders.by(Debtor.id, narrow).load(page.items[0].id)
        other = await second.loaders.by(Debtor.id, wide).load(page.items[0].id)
    finally:
        await second.uow.close()
    assert (none.items, none.total) == ([], 0)
    assert page.total == 3
    assert sorted(row.first_name for row in page.items) == ["d0-0", "d0-1", "d0-2"]
    assert "first_name" not in one._fields
    assert other.first_name == page.items[0].first_name


def test_a_row_loaders_shape_is_rendered_once_per_columns() -> None:
    """Rendering columns is an SQL compilation: the same columns answer the same shape without
    rendering again, other columns (or equal ones built apart) by what they render."""
    narrow = [Debtor.id.label("id"), Debtor.upload_id.label("upload_id")]
    wide = [*narrow, Debtor.first_name.label("first_name")]
    assert _shape(narrow) is _shape(list(narrow))
    assert _shape(narrow) != _shape(wide)
    assert _shape([Debtor.id.label("id"), Debtor.upload_id.label("upload_id")]) == _shape(narrow)
    assert _shape([Debtor.id.label("id"), Debtor.first_name.label("upload_id")]) != _shape(narrow)


async def test_row_page_loaders_of_one_name_and_other_columns_are_apart(
    new_context: Callable[[], Context],
) -> None:
    narrow = [Debtor.id.label("id"), Debtor.upload_id.label("upload_id")]
    wide = [*narrow, Debtor.first_name.label("first_name")]
    ctx = new_context()
    one = ctx.loaders.pages(Debtor.upload_id, None, name="shared", columns=narrow)
    assert ctx.loaders.pages(Debtor.upload_id, None, name="shared", columns=narrow) is one
    assert ctx.loaders.pages(Debtor.upload_id, None, name="shared", columns=wide) is not one


def _debtor_columns() -> list[ColumnElement[Any]]:
    return [
        Debtor.id.label("id"),
        Debtor.upload_id.label("upload_id"),
        Debtor.first_name.label("first_name"),
    ]


def _page_statements(runtime: Runtime) -> int:
    """A row page loader's statements for one window without a cursor: one on PostgreSQL (see
    _lateral_page_statement), the ranked ids and their rows elsewhere."""
    return 1 if runtime.services.engine.dialect.name == "postgresql" else 2


async def test_load_pages_answers_each_parent_as_a_load_per_parent_does(
    runtime: Runtime, new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    upload_ids = await _arrange(db, clock, uploads=3, debtors_each=4)
    columns = _debtor_columns()
    window = Window(2)
    asked = [upload_ids[2], 10_000, upload_ids[0], upload_ids[2]]  # unknown and repeated
    grouped = new_context()
    single = new_context()
    loader = grouped.loaders.pages(Debtor.upload_id, name="t", columns=columns)
    with sql_counter:
        pages = await load_pages(loader, asked, window)
    assert sql_counter.count == _page_statements(runtime)  # one batch for all the parents
    each = single.loaders.pages(Debtor.upload_id, name="t", columns=columns)
    expected = [await each.load(PageKey(u, window)) for u in asked]
    assert [(p.total, p.has_next, p.has_previous) for p in pages] == [
        (p.total, p.has_next, p.has_previous) for p in expected
    ]
    assert [[tuple(r) for r in p.items] for p in pages] == [
        [tuple(r) for r in p.items] for p in expected
    ]
    assert pages[1].items == []
    assert pages[1].total == 0
    assert pages[0] is pages[3]  # a parent asked twice is read once
    assert await load_pages(loader, [], window) == []
    # Pages once read are kept for the request, whichever key or group asks them again;
    # a group's own entry is not (it names no later load).
    with sql_counter:
        again = await load_pages(loader, asked[:2], window)
        alone = await loader.load(PageKey(upload_ids[0], window))
    assert sql_counter.count == 0
    assert again == pages[:2]
    assert alone is pages[2]
    assert all(not isinstance(key, PageGroup) for key in loader._cache)
    with sql_counter:
        other = await load_pages(loader, [upload_ids[1], upload_ids[0]], window)
    assert sql_counter.count == _page_statements(runtime)  # only upload 1 is read
    assert other[1] is pages[2]


async def test_load_pages_coalesces_with_other_loads_of_the_tick(
    runtime: Runtime, new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    upload_ids = await _arrange(db, clock, uploads=3, debtors_each=2)
    ctx = new_context()
    loader = ctx.loaders.pages(Debtor.upload_id, name="t", columns=_debtor_columns())
    window = Window(5)
    with sql_counter:
        first, second, alone = await asyncio.gather(
            load_pages(loader, upload_ids[:1], window),
            load_pages(loader, upload_ids[1:2], window),
            loader.load(PageKey(upload_ids[2], window)),
        )
    assert sql_counter.count == _page_statements(runtime)
    assert [p.total for p in (*first, *second, alone)] == [2, 2, 2]
    assert {r.upload_id for r in alone.items} == {upload_ids[2]}


async def test_load_pages_fails_every_parent_of_a_failed_batch_and_keeps_nothing(
    new_context: Callable[[], Context], db: Any, clock: Any, sql_counter: Any
) -> None:
    upload_ids = await _arrange(db, clock, uploads=2, debtors_each=1)
    broken = {1: False, 2: True}

    def conditions(filters: dict[str, Any]) -> list[Any]:
        if broken[filters["k"]]:
            raise RuntimeError("the batch failed")
        return []

    ctx = new_context()
    # One batch of two filter values: the first is read, the second fails, and with it
    # every parent of the batch.
    loader = ctx.loaders.pages(Debtor.upload_id, conditions, name="t")
    read, failed = await asyncio.gather(
        load_pages(loader, upload_ids, Window(3), (("k", 1),)),
        load_pages(loader, upload_ids, Window(3), (("k", 2),)),
    )
    assert [type(a) for a in (*read, *failed)] == [RuntimeError] * 4
    assert read[0] is failed[1]
    # Nothing of the failed batch was kept: asked again, both are read.
    broken[2] = False
    with sql_counter:
        again = await load_pages(loader, upload_ids, Window(3), (("k", 1),))
    assert sql_counter.count > 0
    assert [p.total for p in again] == [1, 1]
    assert [p.total for p in await load_pages(loader, upload_ids, Window(3), (("k", 2),))] == [
        1,
        1,
    ]


class _Groups:
    """A page loader's batch stand-in: each parent's answer ``parent * 10``, for its keys and
    its groups; it records its batches and can be told to fail."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.batches: list[list[Any]] = []
        self.started = asyncio.Event()

    async def load(self, keys: list[Any]) -> list[Any]:
        self.batches.append(list(keys))
        self.started.set()
        await asyncio.sleep(0)  # a batch yields to the loop, as a database read does
        if self.broken:
            raise RuntimeError("the batch failed")
        return [
            [p * 10 for p in k.parent_ids] if isinstance(k, PageGroup) else k * 10 for k in keys
        ]


async def test_a_load_during_load_pages_joins_nothing_and_waits_for_its_own_batch() -> None:
    batch = _Groups()
    loader = DataLoader(batch.load)
    grouped = asyncio.create_task(load_pages(loader, [1, 2], Window(1)))
    await batch.started.wait()  # the group's batch is under way
    assert await loader.load(2) == 20
    assert await grouped == [10, 20]
    assert len(batch.batches) == 2


async def test_a_cancelled_load_pages_leaves_no_failure_unretrieved() -> None:
    # Cancelled while its batch is under way, the group's future is cancelled with it: when
    # the batch then fails, nothing is left whose failure nobody retrieves (asyncio would log
    # each as "never retrieved").
    batch = _Groups(broken=True)
    loader = DataLoader(batch.load)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        grouped = asyncio.create_task(load_pages(loader, [1, 2, 3], Window(1)))
        await batch.started.wait()
        grouped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await grouped
        for _ in range(3):
            await asyncio.sleep(0)  # the batch fails its keys
        del grouped, loader
        gc.collect()  # a future never retrieved reports when it is freed
    finally:
        loop.set_exception_handler(previous)
    assert [c for c in reported if "never retrieved" in str(c.get("message"))] == []
