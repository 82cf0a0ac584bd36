"""A connection of Core rows read from its rows (schema.base.RowsConnection, the compiled
executor's _FusedRows): the answer is graphql-core's for the nodes the shape builds, clean rows
build no node, and any row that does not read clean sends the page the way that builds them."""

from __future__ import annotations

import enum
import inspect
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import strawberry
from graphql import execute, parse
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from strawberry import relay

from debtgraph.resolvers.loaders import Page
from debtgraph.schema import compiled
from debtgraph.schema.base import Connection, RowsConnection, RowShape
from tests.conftest import both_executors


class _Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


Colour = strawberry.enum(_Colour, name="Colour")


class _Odd(Exception):
    pass


def _label(name: str | None, n: int) -> str | None:
    if n == 13:
        raise _Odd("unlucky")  # a shape function failing on one row (a field not asked, too)
    return None if n == 3 else f"{name}#{n}"


@strawberry.type(name="Thing")
class Thing(relay.Node):
    id: relay.NodeID[str]
    database_id: int
    name: str
    label: str | None
    colour: Colour
    tags: list[str] | None
    seen_at: datetime | None


THINGS = RowShape(Thing, {"label": (_label, "name", "id"), "colour": (Colour, "colour")})


@strawberry.type(name="Other")
class Other(relay.Node):
    id: relay.NodeID[str]
    name: str


OTHERS = RowShape(Other, {})

_ODD_ZONE = timezone(timedelta(hours=2))
NOW = datetime(2026, 12, 4, 1, 2, 3, 456789, tzinfo=UTC)
ROWS: dict[str, list[tuple[Any, ...]]] = {
    "clean": [
        (1, "one", "red", ["a"], NOW),
        (2, "two", "blue", None, None),
        (3, "three", "red", [], NOW.astimezone(_ODD_ZONE)),  # a null label, another offset
    ],
    # Null where non-null, of another type, an unknown enum value, a list item of another type,
    # a shape function that raises: each fails its row (or the page) alike on both paths.
    "null_name": [(1, "one", "red", None, None), (4, None, "red", None, None)],
    "int_name": [(5, 5, "red", None, None)],
    "bad_colour": [(6, "six", "green", None, None)],
    "bad_tag": [(7, "seven", "blue", ["x", 8], None)],
    "raises": [(13, "thirteen", "red", None, None)],
    "empty": [],
}
COLUMNS = ["id", "name", "colour", "tags", "seen_at"]


def _rows(name: str, columns: list[str] | None = None) -> list[Any]:
    names = columns or COLUMNS
    return IteratorResult(SimpleResultMetaData(names), iter(ROWS[name])).all()


def _page(rows: list[Any]) -> Page[Any]:
    return Page(rows, has_next=False, total=len(rows))


@strawberry.type
class _Query:
    @strawberry.field
    def things(self, rows: str) -> Connection[Thing]:
        return RowsConnection(_page(_rows(rows)), THINGS)

    @strawberry.field
    def maybe_things(self, rows: str) -> Connection[Thing] | None:
        return RowsConnection(_page(_rows(rows)), THINGS)

    @strawberry.field
    def shuffled(self) -> Connection[Thing]:
        # The same columns in another order, and an unnamed column first.
        order = ["seen_at", "tags", "colour", "name", "id"]
        rows = IteratorResult(
            SimpleResultMetaData(order), iter([row[::-1] for row in ROWS["clean"]])
        ).all()
        unnamed = IteratorResult(
            SimpleResultMetaData([None, *COLUMNS]), iter([("?", *ROWS["clean"][0])])
        ).all()
        return RowsConnection(_page([*rows, *unnamed]), THINGS)

    @strawberry.field
    def impostors(self) -> Connection[Thing]:
        # Rows an Other's shape builds, under a Thing connection: never read as Things.
        rows = IteratorResult(SimpleResultMetaData(["id", "name"]), iter([(9, "x")])).all()
        return RowsConnection(_page(rows), OTHERS)  # type: ignore[arg-type]

    @strawberry.field
    def plain(self) -> Connection[Thing]:
        # A connection whose rows are no Core rows: its nodes are built as ever.
        return RowsConnection(_page(list(ROWS["clean"])), THINGS)


_SCHEMA = strawberry.Schema(query=_Query, types=[Other])
NODE = "id databaseId name label colour tags seenAt __typename"


async def _both(query: str) -> tuple[Any, Any]:
    return await both_executors(_SCHEMA, query)


@pytest.mark.parametrize("rows", list(ROWS))
@pytest.mark.parametrize(
    "selection",
    [
        f"totalCount nodes {{ {NODE} }}",
        "nodes { id name }",
        # The page info read by its own reader beside the nodes read from the rows.
        f"pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} nodes {{ {NODE} }}",
        # Edges and page info build the nodes: the same answer either way.
        f"nodes {{ {NODE} }} edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage }}",
    ],
)
@pytest.mark.parametrize("field", ["things", "maybeThings"])
async def test_rows_answer_as_graphql_core(field: str, selection: str, rows: str) -> None:
    standard, fast = await _both(f'{{ {field}(rows: "{rows}") {{ {selection} }} }}')
    assert compiled._describe(fast) == compiled._describe(standard)
    assert fast.data == standard.data


@pytest.mark.parametrize("field", ["shuffled", "impostors", "plain"])
async def test_layouts_and_other_rows_answer_as_graphql_core(field: str) -> None:
    standard, fast = await _both(f"{{ {field} {{ totalCount nodes {{ {NODE} }} }} }}")
    assert compiled._describe(fast) == compiled._describe(standard)
    assert fast.data == standard.data


async def test_clean_rows_build_no_node(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = RowShape.build_all

    def counted(self: RowShape[Any], rows: Any) -> Any:
        built.append(len(rows))
        return real(self, rows)

    monkeypatch.setattr(RowShape, "build_all", counted)
    document = parse(
        f'{{ things(rows: "clean") {{ totalCount pageInfo {{ hasNextPage endCursor }}'
        f" nodes {{ {NODE} }} }} }}"
    )
    fast = execute(_SCHEMA._schema, document, executor_class=compiled.CompiledExecutor)
    assert not inspect.isawaitable(fast)
    assert fast.errors is None
    assert [node["label"] for node in fast.data["things"]["nodes"]] == ["one#1", "two#2", None]
    assert built == []
    # A row that does not read clean: the page's nodes are built, and answered as they are.
    document = parse(f'{{ maybeThings(rows: "raises") {{ nodes {{ {NODE} }} }} }}')
    failed = execute(_SCHEMA._schema, document, executor_class=compiled.CompiledExecutor)
    assert not inspect.isawaitable(failed)
    assert built  # built (and built again where its error is located)
    assert failed.errors is not None
    assert failed.errors[0].path == ["maybeThings", "nodes"]


async def test_a_row_that_cannot_be_shown_fails_the_nodes_alone() -> None:
    # PRODUCT-DECISIONS.md, "A row that cannot be shown": the count and page info still answer.
    query = '{ maybeThings(rows: "bad_colour") { totalCount pageInfo { hasNextPage } } }'
    standard, fast = await _both(query)
    for answer in (standard, fast):
        assert answer.errors is None
        assert answer.data == {"maybeThings": {"totalCount": 1, "pageInfo": {"hasNextPage": False}}}
    standard, fast = await _both(
        f'{{ maybeThings(rows: "bad_colour") {{ totalCount nodes {{ {NODE} }} }} }}'
    )
    assert compiled._describe(fast) == compiled._describe(standard)
    assert [e.path for e in fast.errors or []] == [["maybeThings", "nodes"]]


def test_nodes_already_built_are_what_is_answered() -> None:
    connection = RowsConnection(_page(_rows("clean")), THINGS)
    connection.nodes[0].name = "changed"  # built, then changed, before it is answered
    fused = compiled._FusedRows(_nodes_selection('{ things(rows: "clean") { nodes { name } } }'))
    assert fused(connection) is None  # the built nodes are read, not the rows
    fresh = RowsConnection(_page(_rows("clean")), THINGS)
    assert fused(fresh) == [{"name": "one"}, {"name": "two"}, {"name": "three"}]


def test_a_reader_the_compiler_fails_on_is_logged_and_the_nodes_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a defect of the compiler")

    fused = compiled._FusedRows(_nodes_selection('{ things(rows: "clean") { nodes { name } } }'))
    monkeypatch.setattr(compiled, "_reader", failing)
    connection = RowsConnection(_page(_rows("clean")), THINGS)
    assert fused(connection) is None
    assert fused(connection) is None  # kept as None for the layout: generated and logged once
    assert [r.message for r in caplog.records].count(
        "generating a reader of rows failed; the nodes are built"
    ) == 1
    assert compiled.MISMATCHES == ["generating a reader of rows failed (see the log)"]
    compiled.MISMATCHES.clear()


def _nodes_selection(query: str) -> Any:
    """The compiled object completion of the one connection's nodes in ``query``."""
    built = compiled.CompiledExecutor.build(_SCHEMA._schema, parse(query))
    assert not isinstance(built, list), built
    plan = compiled.compile_plan(built)
    assert plan is not None
    (connection,) = plan.fields
    completion = connection.complete
    assert completion is not None
    target = completion[1] if completion[0] == "nonnull" else completion
    (nodes,) = [f for f in target[2] if f.key == "nodes"]
    listed = nodes.complete[1]  # non-null list
    item = listed[1]
    return item[1] if item[0] == "nonnull" else item
