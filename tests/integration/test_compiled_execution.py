"""The compiled execution path (schema/compiled.py): what it covers, what it leaves to
graphql-core, and that the check the whole suite runs under does catch a difference.

Every query of the suite runs through both executors (``graphql_check_compiled`` in the test
settings, the autouse fixture in tests/conftest.py); these tests pin the edges of that proof.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
import strawberry
from graphql import GraphQLObjectType, parse
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission

from debtgraph.schema import compiled, schema
from debtgraph.server.app import Runtime
from tests.conftest import gql
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
    await gql(client, "query { debtors(first: 5) { nodes { city } } }", headers=admin_headers)
    assert len(compiled.MISMATCHES) == 1
    assert "compiled execution differs" in compiled.MISMATCHES[0]
    compiled.MISMATCHES.clear()  # seen: the autouse fixture must not fail this test


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
