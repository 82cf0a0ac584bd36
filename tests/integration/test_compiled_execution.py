"""The compiled execution path (schema/compiled.py): what it covers, what it leaves to
graphql-core, and that the check the whole suite runs under does catch a difference.

Every query of the suite runs through both executors (``graphql_check_compiled`` in the test
settings, the autouse fixture in tests/conftest.py); these tests pin the edges of that proof.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import strawberry
from graphql import GraphQLObjectType, parse
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission

from debtgraph.schema import compiled, schema
from debtgraph.schema.base import batched, one_of
from debtgraph.schema.caches import DOCUMENTS
from debtgraph.server.app import Runtime
from tests.conftest import both_executors, gql
from tests.integration.uploads_support import csv_text, upload

PAGE = """query($u: ID!) { debtors(first: 100, uploadId: $u) { totalCount
  edges { cursor node { id databaseId fullName amount status createdAt __typename } }
  nodes { id upload { id databaseId status } vopLogs(first: 5) { totalCount nodes { id } }
    billingAttempts(first: 5) { totalCount nodes { id } } }
  pageInfo { hasNextPage endCursor } } }"""


def executor_for(query: str, variables: dict[str, Any] | None = None) -> Any:
    built = compiled.CompiledExecutor.build(
        schema._schema, parse(query), raw_variable_values=variables or {}
    )
    assert not isinstance(built, list), built
    return built


@pytest.mark.parametrize(
    ("query", "covered"),
    [
        (PAGE, True),
        ("query { debtors(first: 1) { nodes { ...D } } } fragment D on Debtor { id city }", True),
        ("query { debtors(first: 1) { nodes { ... on Debtor { id } } } }", True),
        # Directives, abstract types, introspection and mutations go to graphql-core.
        ("query($x: Boolean!) { debtors(first: 1) { nodes { id @include(if: $x) } } }", False),
        ('query { node(id: "VXBsb2FkOjE=") { id } }', False),
        ("query { __schema { queryType { name } } }", False),
        ('query { debtors(first: 1) { totalCount } __type(name: "Debtor") { name } }', False),
        (
            'mutation { debtorValidate(input: {debtorId: "1"}) { userErrors { code } } }',
            False,
        ),
    ],
)
def test_what_the_compiled_path_covers(query: str, covered: bool) -> None:
    variables = {"u": "1", "x": True}
    plan = compiled.compile_plan(executor_for(query, variables))
    assert (plan is not None) is covered


def test_plain_fields_are_attributes_and_resolvers_are_called() -> None:
    plan = compiled.compile_plan(executor_for(PAGE, {"u": "1"}))
    assert plan is not None
    (debtors,) = plan.fields
    assert debtors.resolve is not None  # the root field's resolver
    kinds = {f.key: f for f in debtors.complete[1][2]}  # type: ignore[index]
    assert kinds["totalCount"].attr == "total_count"
    nodes = {f.key: f for f in kinds["nodes"].complete[1][1][1][2]}  # type: ignore[index]
    assert nodes["upload"].resolve is not None
    assert nodes["id"].node_type is not None  # the Relay id, built without its resolver


async def test_the_page_answers_the_same_through_both(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await upload(client, admin_headers, csv_text(3))
    upload_id = str(response.json()["data"]["id"])
    body = await gql(client, PAGE, {"u": upload_id}, admin_headers)
    assert "errors" not in body
    page = body["data"]["debtors"]
    assert page["totalCount"] == 3
    assert [e["node"]["__typename"] for e in page["edges"]] == ["Debtor"] * 3
    assert {n["upload"]["databaseId"] for n in page["nodes"]} == {int(upload_id)}
    # The autouse fixture has compared this answer with graphql-core's.
    assert compiled.MISMATCHES == []


async def test_errors_and_nulls_answer_the_same_through_both(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # A NotFound on a nullable field beside a good one: nulled and located alike.
    body = await gql(
        client,
        'query { b: debtor(id: "999999") { id } c: debtors(first: 1) { totalCount } }',
        headers=admin_headers,
    )
    assert body["data"] == {"b": None, "c": {"totalCount": 0}}
    assert [e["path"] for e in body["errors"]] == [["b"]]
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # A refusal in a non-null root field nulls the whole answer, on both paths.
    refused = await gql(
        client, "query { debtors(first: -1) { totalCount } }", headers=admin_headers
    )
    assert refused["data"] is None
    assert refused["errors"][0]["path"] == ["debtors"]
    anonymous = await gql(client, "query { debtors(first: 1) { totalCount } }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert compiled.MISMATCHES == []


async def test_an_object_asked_for_its_typename_only_answers_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # A selection of constants only: its generated reader once had an empty ``try`` block, and
    # every such query answered the SyntaxError's text, anonymous callers included.
    await upload(client, admin_headers, csv_text(1))
    for query, data in [
        ("{ dashboard { __typename } }", {"dashboard": {"__typename": "Dashboard"}}),
        (
            "{ debtors(first: 1) { __typename nodes { __typename t: __typename } } }",
            {
                "debtors": {
                    "__typename": "DebtorConnection",
                    "nodes": [{"__typename": "Debtor", "t": "Debtor"}],
                }
            },
        ),
        (
            "{ ... on Query { dashboard { __typename } } }",
            {"dashboard": {"__typename": "Dashboard"}},
        ),
    ]:
        body = await gql(client, query, headers=admin_headers)
        assert body == {"data": data}, query
    anonymous = await gql(client, "{ me { __typename } }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert compiled.MISMATCHES == []


async def test_a_document_the_compiler_fails_on_is_answered_by_graphql_core_once_logged(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[object] = []

    def broken(executor: object) -> None:
        calls.append(executor)
        raise RuntimeError("a compiler defect")

    monkeypatch.setattr(compiled, "compile_plan", broken)
    query = "{ dashboard { uploads { total } } }"
    for _ in range(3):
        body = await gql(client, query, headers=admin_headers)
        assert body == {"data": {"dashboard": {"uploads": {"total": 0}}}}
    # Compiled once, kept as uncovered: one trace in the log, not one per request.
    assert len(calls) == 1
    failures = [r for r in caplog.records if "compiling the query failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    # Under the check, the failure counts as a mismatch (the suite fails on it): taken back here.
    assert compiled.MISMATCHES == ["compiling the query failed (see the log)"]
    compiled.MISMATCHES.clear()


async def test_the_check_catches_a_difference(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await upload(client, admin_headers, csv_text(1))
    assert response.status_code == 201, response.text
    real_leaf = compiled._leaf

    def wrong_leaf(return_type: Any, value: Any) -> Any:
        result = real_leaf(return_type, value)
        return result + "!" if isinstance(result, str) else result

    monkeypatch.setattr(compiled, "_leaf", wrong_leaf)
    # Field by field (the readers have their own test below).
    monkeypatch.setattr(compiled, "_reader", lambda plans: None)
    DOCUMENTS.clear()
    await gql(
        client, "query { debtors(first: 5) { nodes { city status } } }", headers=admin_headers
    )
    assert len(compiled.MISMATCHES) == 1
    assert "compiled execution differs" in compiled.MISMATCHES[0]
    compiled.MISMATCHES.clear()  # seen: the autouse fixture must not fail this test
    DOCUMENTS.clear()  # its plans were built without readers


async def test_the_check_catches_a_wrong_reader(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await upload(client, admin_headers, csv_text(1))
    assert response.status_code == 201, response.text
    real_reader = compiled._reader

    def wrong_reader(plans: list[compiled.FieldPlan], **kwargs: Any) -> Any:
        # Every reader wrong, of nodes (partial ones too) and of their rows (``shape=``).
        read = real_reader(plans, **kwargs)
        if read is None:
            return None
        return lambda source: {
            k: v + "!" if isinstance(v, str) else v for k, v in read(source).items()
        }  # type: ignore[union-attr]

    monkeypatch.setattr(compiled, "_reader", wrong_reader)
    DOCUMENTS.clear()  # compiled again, with the wrong reader
    await gql(client, "query { debtors(first: 5) { nodes { id city } } }", headers=admin_headers)
    assert len(compiled.MISMATCHES) == 1
    compiled.MISMATCHES.clear()
    DOCUMENTS.clear()


async def test_the_check_catches_a_wrong_batch(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await upload(client, admin_headers, csv_text(2))
    assert response.status_code == 201, response.text

    async def no_uploads(self: Any, field: Any, sources: list[Any], paths: list[Any]) -> Any:
        return [None] * len(sources)

    monkeypatch.setattr(compiled._Run, "resolve_batch", no_uploads)
    await gql(
        client, "query { debtors(first: 5) { nodes { id upload { id } } } }", headers=admin_headers
    )
    assert len(compiled.MISMATCHES) == 1
    compiled.MISMATCHES.clear()


def test_the_debtor_edges_are_batched_and_plain_objects_read() -> None:
    plan = compiled.compile_plan(executor_for(PAGE, {"u": "1"}))
    assert plan is not None
    (debtors,) = plan.fields
    kinds = {f.key: f for f in debtors.complete[1][2]}  # type: ignore[index]
    node = kinds["nodes"].complete[1][1][1]  # type: ignore[index]
    assert node[3] is True  # a Debtor with batched fields: the list goes field by field
    fields = {f.key: f for f in node[2]}
    assert {k for k, f in fields.items() if f.batch is not None} == {
        "upload",
        "vopLogs",
        "billingAttempts",
    }
    assert node[5] is not None  # its scalars read at once
    edge = {f.key: f for f in kinds["edges"].complete[1][1][1][2]}  # type: ignore[index]
    debtor = edge["node"].complete[1]  # type: ignore[index]
    assert debtor[3] is False  # only scalars: one reader
    assert debtor[4] is not None


async def test_batched_errors_answer_the_same_through_both(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await upload(client, admin_headers, csv_text(3))
    upload_id = str(response.json()["data"]["id"])
    # Refused for every debtor: the non-null connection nulls each debtor, then the page.
    body = await gql(
        client,
        "query($u: ID!) { debtors(first: 5, uploadId: $u) { nodes { id vopLogs(first: -1) "
        "{ totalCount } } } }",
        {"u": upload_id},
        admin_headers,
    )
    assert body["data"] is None
    assert body["errors"][0]["path"][:2] == ["debtors", "nodes"]
    assert body["errors"][0]["path"][3] == "vopLogs"
    # Beside a good batched field, in an aliased and repeated selection.
    body = await gql(
        client,
        "query($u: ID!) { debtors(first: 5, uploadId: $u) { nodes { a: upload { id } "
        "b: upload { status } vopLogs(first: 1) { totalCount } "
        "billingAttempts(last: 2, status: APPROVED) { totalCount nodes { id } } } } }",
        {"u": upload_id},
        admin_headers,
    )
    assert "errors" not in body
    assert len(body["data"]["debtors"]["nodes"]) == 3
    assert compiled.MISMATCHES == []


async def test_statements_of_the_check_are_not_the_requests(
    client: httpx.AsyncClient, admin_headers: dict[str, str], sql_counter: Any, runtime: Runtime
) -> None:
    # The suite pins statement counts with the check on: the second run must not be counted.
    response = await upload(client, admin_headers, csv_text(2))
    upload_id = str(response.json()["data"]["id"])
    with sql_counter:
        await gql(client, PAGE, {"u": upload_id}, admin_headers)
    checked = sql_counter.count
    services = runtime.services
    settings = services.settings
    assert settings.graphql_check_compiled
    services.settings = dataclasses.replace(settings, graphql_check_compiled=False)
    try:
        with sql_counter:
            await gql(client, PAGE, {"u": upload_id}, admin_headers)
    finally:
        services.settings = settings
    assert sql_counter.count == checked


class _Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


class _Shout(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs).upper()


@strawberry.type
class _Thing:
    plain: str = "plain"
    # No resolver of their own: Strawberry still marks their resolver ``_is_default``.
    guarded: str | None = strawberry.field(default="secret", permission_classes=[_Deny])
    shouted: str = strawberry.field(default="quiet", extensions=[_Shout()])


@strawberry.type
class _Query:
    @strawberry.field
    def thing(self) -> _Thing:
        return _Thing()


async def test_a_field_with_a_permission_or_an_extension_is_not_an_attribute() -> None:
    tiny = strawberry.Schema(query=_Query, execution_context_class=compiled.CompiledExecutor)
    query = "{ thing { plain guarded shouted } }"
    built = compiled.CompiledExecutor.build(tiny._schema, parse(query))
    assert not isinstance(built, list), built
    plan = compiled.compile_plan(built)
    assert plan is not None
    (thing,) = plan.fields
    fields = {f.key: f for f in thing.complete[1][2]}  # type: ignore[index]
    assert fields["plain"].attr == "plain"
    assert fields["guarded"].attr is None
    assert fields["guarded"].resolve is not None
    assert fields["shouted"].attr is None
    assert fields["shouted"].resolve is not None
    result = await tiny.execute(query)  # the compiled path: no settings to turn it off
    assert result.data == {"thing": {"plain": "plain", "guarded": None, "shouted": "QUIET"}}
    assert [e.message for e in result.errors or []] == ["denied"]


def test_the_schemas_plain_fields_still_take_the_attribute_path() -> None:
    attributes = [
        (graphql_type.name, name)
        for graphql_type in schema._schema.type_map.values()
        if isinstance(graphql_type, GraphQLObjectType) and not graphql_type.name.startswith("__")
        for name, field_def in graphql_type.fields.items()
        if compiled._is_plain_attribute(
            field_def.resolve, (field_def.extensions or {}).get("strawberry-definition")
        )
    ]
    assert ("Debtor", "fullName") in attributes
    assert len(attributes) > 50


# A tiny schema on both executors, for what real data cannot show: a batched field failing for
# one parent, values a reader does not take as they are.


_ODD = timezone(timedelta(hours=5, minutes=30, seconds=15))


class _Wrong(Exception):
    pass


async def _labels(info: Any, parents: Any, suffix: str = "") -> list[Any]:
    return [_Wrong(f"no label {p.n}") if p.n == 2 else f"label {p.n}{suffix}" for p in parents]


async def _strict(info: Any, parents: Any) -> list[Any]:
    return [_Wrong("strict") if p.n == 3 else p.n for p in parents]


@strawberry.type
class _Tag:
    name: str


class _NotATag:
    name = "impostor"


async def _tags(info: Any, parents: Any) -> list[Any]:
    # Per parent: a tag, a tag its reader refuses (an Int name), a failure, none.
    answers = {1: _Tag(name="one"), 2: _Tag(name=5), 3: _Wrong("no tag")}  # type: ignore[arg-type]
    return [answers.get(p.n) for p in parents]


async def _impostors(info: Any, parents: Any) -> list[Any]:
    return [_NotATag() for _ in parents]


@strawberry.type
class _Item:
    n: int
    name: str
    tags: list[str] | None
    maybe: str | None
    when: datetime | None = None
    # A plain object attribute: a tag, one its reader refuses, an impostor, none.
    owner: _Tag | None = None

    @strawberry.field(metadata=batched(_labels))
    async def label(self, info: strawberry.Info, suffix: str = "") -> str | None:
        return await one_of(_labels(info, [self], suffix))

    @strawberry.field(metadata=batched(_tags))
    async def tag(self, info: strawberry.Info) -> _Tag | None:
        return await one_of(_tags(info, [self]))

    @strawberry.field(metadata=batched(_impostors))
    async def impostor(self, info: strawberry.Info) -> _Tag | None:
        return await one_of(_impostors(info, [self]))

    @strawberry.field(metadata=batched(_strict))
    async def strict(self, info: strawberry.Info) -> int:
        return await one_of(_strict(info, [self]))

    # Batched, but a permission runs per parent: never called set-wise.
    @strawberry.field(metadata=batched(_labels), permission_classes=[_Deny])
    async def guarded(self, info: strawberry.Info) -> str | None:
        return await one_of(_labels(info, [self]))


def _items() -> list[_Item]:
    return [
        _Item(
            n=1,
            name="one",
            tags=["a"],
            maybe=None,
            when=datetime(2026, 1, 2, tzinfo=UTC),
            owner=_Tag(name="o"),
        ),
        _Item(n=2, name=22, tags=["b", 3], maybe="x", owner=_Tag(name=5)),  # type: ignore[arg-type,list-item]
        # Datetimes a reader's UTC shortcut does not take: another offset (with seconds), none.
        _Item(
            n=3,
            name="three",
            tags=None,
            maybe=None,
            when=datetime(2026, 1, 2, tzinfo=_ODD),
            owner=_NotATag(),  # type: ignore[arg-type]
        ),
        _Item(n=4, name=None, tags=[], maybe="y", when=datetime(2026, 1, 2, 3, 4, 5, 6)),  # type: ignore[arg-type]
    ]


@strawberry.type
class _ItemQuery:
    @strawberry.field
    def items(self) -> list[_Item]:
        return _items()

    @strawberry.field
    def maybe_items(self) -> list[_Item | None] | None:
        return [*_items(), None]


_TINY = strawberry.Schema(query=_ItemQuery)


async def _both(query: str) -> tuple[Any, Any]:
    return await both_executors(_TINY, query)


@pytest.mark.parametrize(
    "query",
    [
        "{ items { n label } }",
        '{ items { n label(suffix: "!") name } }',
        "{ maybeItems { n label tags maybe } }",
        "{ maybeItems { n name } }",
        "{ maybeItems { n strict label } }",
        "{ items { n tags maybe } }",
        "{ items { n when } }",
        "{ items { n tag { name } } }",
        "{ maybeItems { n tag { name __typename } label } }",
        "{ items { n impostor { name } tag { name } } }",
        "{ maybeItems { n when label } }",
        "{ maybeItems { strict } }",
        "{ items { n guarded label } }",
        "{ items { n owner { name } } }",
        "{ maybeItems { owner { name __typename } label } }",
        "{ items { owner { __typename } } }",
    ],
)
async def test_batched_fields_and_readers_answer_as_graphql_core(query: str) -> None:
    standard, fast = await _both(query)
    assert compiled._describe(fast) == compiled._describe(standard)
    assert fast.data == standard.data


async def test_the_tiny_schema_takes_the_batched_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = compiled._Run.resolve_batch

    async def counted(self: Any, field: Any, sources: list[Any], paths: list[Any]) -> Any:
        calls.append(len(sources))
        return await real(self, field, sources, paths)

    monkeypatch.setattr(compiled._Run, "resolve_batch", counted)
    standard, fast = await _both("{ maybeItems { n label } }")
    assert calls == [4]  # once for the four items, the null one left out
    assert fast.data == standard.data
    assert [e.path for e in fast.errors] == [["maybeItems", 1, "label"]]


def test_a_guarded_field_is_not_batched() -> None:
    built = compiled.CompiledExecutor.build(_TINY._schema, parse("{ items { guarded label } }"))
    assert not isinstance(built, list), built
    plan = compiled.compile_plan(built)
    assert plan is not None
    (items,) = plan.fields
    fields = {f.key: f for f in items.complete[1][1][1][2]}  # type: ignore[index]
    assert fields["guarded"].batch is None
    assert fields["label"].batch is not None
