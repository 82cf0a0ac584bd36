"""GraphQL limits (PRODUCT.md §12): refused before execution, each naming its limit and value."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import httpx
import pytest

from debtgraph.server.app import create_app
from debtgraph.settings import Settings
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user
from tests.integration.test_receivables import receivable_payload


def nested_receivables(first: int, levels: int) -> str:
    """``user { receivables(first:) { nodes { … } } }`` nested ``levels`` times."""
    inner = "id"
    for _ in range(levels):
        inner = f"user {{ receivables(first: {first}) {{ nodes {{ id {inner} }} }} }}"
    return inner


def refusal(body: dict[str, Any], limit: str) -> dict[str, Any]:
    """The one error naming ``limit``; nothing ran."""
    assert body["data"] is None, body
    errors = [e for e in body["errors"] if e.get("extensions", {}).get("limit") == limit]
    assert errors, body
    assert errors[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    return errors[0]


async def test_the_issues_nodes_attack_is_refused_before_execution(
    client: httpx.AsyncClient, make_platform: Any, sql_counter: Any
) -> None:
    # Three receivables, each asked for its user's receivables three levels deep: 3 x 100^3.
    platform = await make_platform()
    user = await create_user(client, platform.api_key)
    ids = []
    for i in range(3):
        payload = receivable_payload(user["id"])
        payload["invoice"]["numbers"] = [f"INV-{i}"]
        created = await client.post(
            "/v1/receivables", json=payload, headers=bearer(platform.api_key)
        )
        assert created.status_code == 201, created.text
        ids.append(base64.b64encode(f"Receivable:{created.json()['id']}".encode()).decode())
    query = (
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Receivable { "
        + nested_receivables(100, 3)
        + " } } }"
    )
    with sql_counter:
        await gql(client, "{ __typename }", headers=bearer(platform.api_key))
    baseline = sql_counter.count
    with sql_counter:
        body = await gql(client, query, {"ids": ids}, headers=bearer(platform.api_key))
    error = refusal(body, "GRAPHQL_MAX_COST")
    assert error["extensions"]["max"] == 10_000
    assert "10000" in error["message"]
    assert "GRAPHQL_MAX_COST" in error["message"]
    # Only authentication touched the database, as for a query that reads nothing.
    assert sql_counter.count == baseline
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_cost_multiplies_down_the_path_just_under_and_over(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    platform = await make_platform()
    headers = bearer(platform.api_key)
    query = (
        "query($n: Int) { receivables(first: $n) { nodes { "
        + nested_receivables(0, 0)
        + " user { receivables(first: $n) { totalCount } } } } }"
    )
    # 99 + 99 x 99 = 9,900 runs; 100 + 100 x 100 = 10,100 is refused.
    under = await gql(client, query, {"n": 99}, headers=headers)
    assert "errors" not in under, under
    assert under["data"]["receivables"]["nodes"] == []
    refusal(await gql(client, query, {"n": 100}, headers=headers), "GRAPHQL_MAX_COST")
    # graphql-core reads 100.0 as the Int 100: it must cost the same.
    refusal(await gql(client, query, {"n": 100.0}, headers=headers), "GRAPHQL_MAX_COST")
    # Literal sizes count the same, and a connection without first counts 20.
    literal = (
        "{ receivables(first: 100) { nodes { user { receivables(first: 100) { totalCount } } } } }"
    )
    refusal(await gql(client, literal, headers=headers), "GRAPHQL_MAX_COST")
    default = "{ receivables { nodes { user { receivables { totalCount } } } } }"
    assert "errors" not in await gql(client, default, headers=headers)


async def test_fragments_count_once_per_spread_and_cannot_blow_up(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    platform = await make_platform()
    headers = bearer(platform.api_key)
    spread = (
        "{ receivables(first: 100) { ...R } } "
        "fragment R on ReceivableConnection "
        "{ nodes { user { receivables(first: 100) { totalCount } } } }"
    )
    refusal(await gql(client, spread, headers=headers), "GRAPHQL_MAX_COST")
    # Each fragment spreads the next one twice: 2^60 paths for a walker that does not remember
    # fragments; 60 levels of nesting are also well inside the recursion limit.
    fan = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    body = await gql(
        client, "{ ...F0 } " + fan + " fragment F60 on Query { __typename }", headers=headers
    )
    assert body == {"data": {"__typename": "Query"}}, body
    # A chain of 500 fragments used to overflow graphql-core's recursive rules.
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(500))
    deep = await gql(client, "{ ...F0 } " + chain + " fragment F500 on Query { __typename }")
    error = refusal(deep, "nesting")
    assert error["extensions"]["max"] == 64


def deep_query(depth: int) -> str:
    """A query whose deepest path has ``depth`` fields with a selection set."""
    steps = ["receivables(first: 1)", "nodes", "user"]
    leaves = {"receivables(first: 1)": "totalCount", "nodes": "id", "user": "id"}
    fields = [steps[i % 3] for i in range(depth)]
    inner = leaves[fields[-1]]
    for name in reversed(fields):
        inner = f"{name} {{ {inner} }}"
    return "{ " + inner + " }"


async def test_depth_over_and_just_under(client: httpx.AsyncClient, make_platform: Any) -> None:
    platform = await make_platform()
    headers = bearer(platform.api_key)
    assert "errors" not in await gql(client, deep_query(12), headers=headers)
    error = refusal(await gql(client, deep_query(13), headers=headers), "GRAPHQL_MAX_DEPTH")
    assert error["extensions"]["max"] == 12
    assert "13 levels" in error["message"]
    assert "GRAPHQL_MAX_DEPTH" in error["message"]
    # A document nested past the parser's reach is a clean syntax error, not a recursion error.
    nested = await gql(client, "{" + "receivables { " * 5000 + "id" + " }" * 5001, headers=headers)
    assert nested["data"] is None
    assert nested["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_the_depth_limit_follows_the_setting(
    settings: Settings, clock: Any, admin_headers: dict[str, str]
) -> None:
    app = create_app(replace(settings, graphql_max_depth=0, graphql_max_cost=5), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        deep = await gql(c, "{ me { email } }", headers=admin_headers)
        assert refusal(deep, "GRAPHQL_MAX_DEPTH")["extensions"]["max"] == 0
        costly = await gql(c, "{ __typename receivables(first: 6) { totalCount } }")
        assert refusal(costly, "GRAPHQL_MAX_COST")["extensions"]["max"] == 5


async def test_aliases_over_and_just_under(client: httpx.AsyncClient) -> None:
    def aliased(n: int) -> str:
        return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"

    assert "errors" not in await gql(client, aliased(100))
    error = refusal(await gql(client, aliased(101)), "GRAPHQL_MAX_ALIASES")
    assert error["extensions"]["max"] == 100
    assert "101 aliases" in error["message"]
    # Aliases in a fragment count once per spread.
    fragment = (
        "{ ...A ...B } fragment A on Query { "
        + " ".join(f"a{i}: __typename" for i in range(51))
        + " } fragment B on Query { ...A }"
    )
    refusal(await gql(client, fragment), "GRAPHQL_MAX_ALIASES")


async def test_nodes_takes_at_most_100_ids(client: httpx.AsyncClient, make_platform: Any) -> None:
    platform = await make_platform()
    headers = bearer(platform.api_key)
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    # 20,000 ids (about 600 KB) stay within the request body limit, so GRAPHQL_MAX_NODES answers.
    ids = [base64.b64encode(f"Receivable:rcv_{i}".encode()).decode() for i in range(20_000)]
    under = await gql(client, query, {"ids": ids[:100]}, headers=headers)
    assert under["data"] == {"nodes": [None] * 100}, under
    assert {e["extensions"]["code"] for e in under["errors"]} == {"NOT_FOUND"}
    error = refusal(await gql(client, query, {"ids": ids}, headers=headers), "GRAPHQL_MAX_NODES")
    assert error["extensions"]["max"] == 100
    assert "20000" in error["message"]
    literal = "{ nodes(ids: [" + ", ".join(f'"{i}"' for i in ids[:101]) + "]) { id } }"
    refusal(await gql(client, literal, headers=headers), "GRAPHQL_MAX_NODES")


async def test_batches_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=[{"query": "{ __typename }"}] * 2)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.fixture
async def production(settings: Settings, clock: Any) -> Any:
    app = create_app(
        replace(settings, env="production", secret_key="k" * 40, allow_private_webhook_urls=False),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_introspection_is_closed_to_anonymous_callers_in_production(
    production: httpx.AsyncClient, make_platform: Any
) -> None:
    query = "{ __schema { queryType { name } } }"
    anonymous = await gql(production, query)
    assert anonymous["data"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    typed = await gql(production, '{ __type(name: "User") { name } }')
    assert typed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # __typename is not introspection of the schema.
    assert await gql(production, "{ __typename }") == {"data": {"__typename": "Query"}}
    platform = await make_platform()
    signed_in = await gql(production, query, headers=bearer(platform.api_key))
    assert signed_in == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_introspection_is_open_outside_production(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ __schema { queryType { name } } }")
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_operator_only_fields_tell_a_platform_it_is_not_an_operator(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    platform = await make_platform()
    body = await gql(client, "{ uploads { totalCount } }", headers=bearer(platform.api_key))
    assert body["data"] is None
    error = body["errors"][0]
    # As the operator API answers it (401): a platform key is no operator credential.
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "Only operators may use this field."
    anonymous = await gql(client, "{ uploads { totalCount } }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    operator = await gql(client, "{ uploads { totalCount } }", headers=admin_headers)
    assert operator == {"data": {"uploads": {"totalCount": 0}}}
    # The operator API still answers other tokens as it always has: 401.
    rest = await client.get("/api/admin/uploads", headers=bearer(platform.api_key))
    assert rest.status_code == 401
    assert rest.json() == {"message": "Unauthenticated.", "status": 401}
