"""GraphQL limits (PRODUCT.md §12): refused before execution, each naming its limit and value."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from graphql import parse

from debtgraph.schema import limits
from debtgraph.schema import schema as debtgraph_schema
from debtgraph.schema.caches import DOCUMENTS
from debtgraph.server.app import create_app
from debtgraph.settings import ConfigError, Settings
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
    # A document nested past the parser's reach is refused by its size (80 KB) or, within the
    # size limit, is a clean syntax error: never a recursion error.
    nested = await gql(client, "{" + "receivables { " * 5000 + "id" + " }" * 5001, headers=headers)
    assert refusal(nested, "GRAPHQL_MAX_DOCUMENT_KB")["extensions"]["max"] == 64
    nested = await gql(client, "{" + "receivables { " * 3000 + "id" + " }" * 3001, headers=headers)
    assert nested["data"] is None
    assert nested["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    # 6,002 tokens in 12 KB: the parser stops at 5,000 and says which limit.
    error = refusal(await gql(client, "{ " + "a " * 6000 + "}", headers=headers), "tokens")
    assert error["extensions"]["max"] == 5000
    assert "5000 tokens" in error["message"]


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


async def test_validation_that_stops_at_its_error_limit_names_it(
    client: httpx.AsyncClient,
) -> None:
    def unknown(n: int) -> str:
        return "{ " + " ".join(f"nope{i}" for i in range(n)) + " }"

    errors = (await gql(client, unknown(100)))["errors"]
    assert len(errors) == 100  # every one reported
    assert {e["extensions"]["code"] for e in errors} == {"GRAPHQL_VALIDATION_FAILED"}
    errors = (await gql(client, unknown(150)))["errors"]
    assert len(errors) == 101
    # graphql-core stops after 100 with "Validation aborted.", which named no limit.
    assert errors[-1] == {
        "message": "Too many validation errors: at most 100 are reported.",
        "extensions": {
            "code": "GRAPHQL_VALIDATION_FAILED",
            "limit": "validation_errors",
            "max": 100,
        },
    }


async def test_validation_out_of_its_work_budget_names_it(client: httpx.AsyncClient) -> None:
    # graphql-core compares the fields of one selection pairwise within a budget: ~720 of one
    # name (within the token and size limits) ran it out, refused with a bare "Validation
    # aborted." that named no limit.
    errors = (await gql(client, "{ " + "__typename " * 900 + "}"))["errors"]
    assert len(errors) == 1
    assert errors[0]["message"].startswith("Validation aborted: the document takes more work")
    assert "500,000 comparisons" in errors[0]["message"]
    assert errors[0]["extensions"] == {
        "code": "GRAPHQL_VALIDATION_FAILED",
        "limit": "validation_work",
        "max": 500_000,
    }


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


@contextlib.asynccontextmanager
async def app_client(settings: Settings, clock: Any, **changes: Any) -> AsyncIterator[Any]:
    """A client of an app built with ``changes`` to the test settings."""
    app = create_app(replace(settings, **changes), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


PRODUCTION = {
    "env": "production",
    "secret_key": "k" * 40,
    "allow_private_webhook_urls": False,
    "graphql_check_compiled": False,  # refused in production
}
INTROSPECT = "{ __schema { queryType { name } } }"
SCHEMA = {"data": {"__schema": {"queryType": {"name": "Query"}}}}


def introspection_refused(body: dict[str, Any], setting: str) -> None:
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"] == {"code": "INTROSPECTION_DISABLED"}
    assert f"GRAPHQL_INTROSPECTION={setting}" in body["errors"][0]["message"]


async def test_introspection_is_off_for_every_caller_in_production(
    settings: Settings, clock: Any, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    platform = await make_platform()
    async with app_client(settings, clock, **PRODUCTION) as production:
        introspection_refused(await gql(production, INTROSPECT), "false")
        introspection_refused(await gql(production, '{ __type(name: "User") { name } }'), "false")
        for headers in (bearer(platform.api_key), admin_headers):
            introspection_refused(await gql(production, INTROSPECT, headers=headers), "false")
        # __typename is not introspection of the schema.
        assert await gql(production, "{ __typename }") == {"data": {"__typename": "Query"}}


async def test_introspection_follows_its_setting(
    settings: Settings, clock: Any, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    platform = await make_platform()
    async with app_client(
        settings, clock, **PRODUCTION, graphql_introspection="operators"
    ) as operators:
        assert await gql(operators, INTROSPECT, headers=admin_headers) == SCHEMA
        introspection_refused(await gql(operators, INTROSPECT), "operators")
        refused = await gql(operators, INTROSPECT, headers=bearer(platform.api_key))
        introspection_refused(refused, "operators")
    async with app_client(settings, clock, **PRODUCTION, graphql_introspection="true") as opened:
        assert await gql(opened, INTROSPECT) == SCHEMA
    async with app_client(settings, clock, graphql_introspection="false") as closed:
        introspection_refused(await gql(closed, INTROSPECT, headers=admin_headers), "false")
    assert Settings.from_env({"GRAPHQL_INTROSPECTION": "off"}).introspection == "false"
    assert Settings.from_env({"ENV": "production"}).introspection == "false"
    assert Settings.from_env({}).introspection == "true"
    with pytest.raises(ConfigError, match="GRAPHQL_INTROSPECTION"):
        Settings(graphql_introspection="maybe").check()


async def test_introspection_is_open_outside_production(client: httpx.AsyncClient) -> None:
    assert await gql(client, INTROSPECT) == SCHEMA


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


# --- the issue's bad input: each a clear GraphQL error, none a 500, none executed -----------------

BLACKLIST_ADD = (
    'mutation { blacklistAdd(input: {iban: "ES9121000418450200051332", reason: "x"}) '
    "{ entry { iban } } }"
)


async def blacklisted(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    body = await gql(client, "{ blacklistedIbans { totalCount } }", headers=headers)
    return int(body["data"]["blacklistedIbans"]["totalCount"])


async def test_ten_thousand_aliases_are_refused_by_size_and_a_thousand_by_count(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # 10,000 aliases (about 170 KB) beside a mutation that must not run.
    aliases = " ".join(f"a{i}: __typename" for i in range(10_000))
    wide = await gql(client, "mutation { " + aliases + BLACKLIST_ADD[10:], headers=admin_headers)
    assert "GRAPHQL_MAX_DOCUMENT_KB" in refusal(wide, "GRAPHQL_MAX_DOCUMENT_KB")["message"]
    # A thousand aliases of __typename fit the size and the tokens: the alias limit answers.
    typenames = "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }"
    assert refusal(await gql(client, typenames), "GRAPHQL_MAX_ALIASES")["extensions"]["max"] == 100
    assert await blacklisted(client, admin_headers) == 0


async def test_the_document_size_limit_counts_bytes_of_the_document_only(
    client: httpx.AsyncClient, settings: Settings, clock: Any
) -> None:
    head = "{ __typename }\n#"
    exactly = head + "x" * (64 * 1024 - len(head))
    assert await gql(client, exactly) == {"data": {"__typename": "Query"}}
    error = refusal(await gql(client, exactly + "x"), "GRAPHQL_MAX_DOCUMENT_KB")
    assert error["extensions"]["max"] == 64
    assert "larger than 64 KB" in error["message"]
    # UTF-8 bytes, not characters: é is two.
    refusal(await gql(client, exactly[:-1] + "é"), "GRAPHQL_MAX_DOCUMENT_KB")
    # Variables are not the document: 600 KB of them stay within MAX_BODY_KB and run.
    query = "query($n: String!) { __type(name: $n) { name } }"
    assert await gql(client, query, {"n": "x" * 600_000}) == {"data": {"__type": None}}
    async with app_client(settings, clock, graphql_max_document_kb=1) as small:
        refusal(await gql(small, head + "x" * 1024), "GRAPHQL_MAX_DOCUMENT_KB")
        assert await gql(small, "{ __typename }") == {"data": {"__typename": "Query"}}


async def authentication_only(
    client: httpx.AsyncClient, make_platform: Any, sql_counter: Any
) -> tuple[dict[str, str], int]:
    """A platform's headers and the statements a request that reads nothing costs."""
    platform = await make_platform()
    headers = bearer(platform.api_key)
    with sql_counter:
        await gql(client, "{ __typename }", headers=headers)
    return headers, sql_counter.count


async def test_first_100000_is_refused_before_anything_is_read(
    client: httpx.AsyncClient, make_platform: Any, sql_counter: Any
) -> None:
    headers, baseline = await authentication_only(client, make_platform, sql_counter)
    with sql_counter:
        body = await gql(client, "{ receivables(first: 100000) { totalCount } }", headers=headers)
    assert body["data"] is None
    page = [e for e in body["errors"] if e["extensions"]["code"] == "BAD_USER_INPUT"]
    assert page[0]["message"] == "first must be between 1 and 100."
    assert page[0]["extensions"]["errors"] == [
        {"field": "first", "code": "out_of_range", "message": "first must be between 1 and 100."}
    ]
    assert sql_counter.count == baseline
    # Through a variable, and just over the page size (cost 101 is well within the cost limit).
    over = await gql(
        client, "query($n: Int) { receivables(first: $n) { totalCount } }", {"n": 101}, headers
    )
    assert over["data"] is None
    assert over["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    under = await gql(client, "{ receivables(first: 100) { totalCount } }", headers=headers)
    assert under == {"data": {"receivables": {"totalCount": 0}}}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'"hello"', "application/json", "The GraphQL request must be a JSON object"),
        (b"12", "application/json; charset=utf-8", "The GraphQL request must be a JSON object"),
        (b"null", "application/json", "The GraphQL request must be a JSON object"),
        (b"  true ", "application/json", "The GraphQL request must be a JSON object"),
        (b'"x"', "application/jsonx", "The GraphQL request must be a JSON object"),
        (b"x", "application/json", "Unable to parse request body as JSON"),
        (b"\xef\xbb\xbf{}", "application/json", "Unable to parse request body as JSON"),
    ],
)
async def test_a_json_body_that_is_no_operation_is_a_400(
    client: httpx.AsyncClient, body: bytes, content_type: str, message: str
) -> None:
    response = await client.post("/graphql", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert error["message"].startswith(message)


async def test_a_multipart_operations_field_that_is_no_object_is_a_400(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/graphql",
        headers=admin_headers,
        data={"operations": "null", "map": "{}"},
        files={"unused": ("a.csv", b"x", "text/csv")},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("The GraphQL request must be")


async def test_a_batch_of_1000_operations_runs_none_over_json_or_multipart(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    batch = [{"query": BLACKLIST_ADD}] * 1000
    response = await client.post("/graphql", json=batch, headers=admin_headers)
    assert response.status_code == 400
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
    assert body["errors"][0]["message"].startswith("Batches are not accepted")
    multipart = await client.post(
        "/graphql",
        headers=admin_headers,
        data={"operations": orjson.dumps(batch).decode(), "map": "{}"},
        files={"unused": ("a.csv", b"x", "text/csv")},
    )
    assert multipart.status_code == 400
    assert multipart.json()["errors"][0]["message"] == body["errors"][0]["message"]
    assert await blacklisted(client, admin_headers) == 0


# graphql-core runs the selected operation with its own variable defaults: each operation is
# measured with its own, or a cheap operation's default let an expensive one through.
CHEAP = "query A($n: Int = 1) { receivables(first: $n) { totalCount } } "
EXPENSIVE = (
    "query B($n: Int = 100) { receivables(first: $n) { nodes { user { receivables(first: $n) "
    "{ nodes { contacts(first: $n) { totalCount } } } } } } }"
)
SHARED = (
    "query A($n: Int = 1) { ...R } query B($n: Int = 100) { ...R } "
    "fragment R on Query { receivables(first: $n) { nodes { user { receivables(first: $n) "
    "{ nodes { contacts(first: $n) { totalCount } } } } } } }"
)
MANY_IDS = "[" + ", ".join(f'"{i}"' for i in range(300)) + "]"
NODES = f"query A($ids: [ID!]! = []) {{ __typename }} query B($ids: [ID!]! = {MANY_IDS}) " + (
    "{ nodes(ids: $ids) { id } }"
)
NUL_DEFAULT = (
    'query A($s: String = "a") { __typename } '
    'query B($s: String = "a\\u0000b") { debtors(search: $s) { totalCount } }'
)


async def run_operation(
    client: httpx.AsyncClient, query: str, operation: str, headers: dict[str, str]
) -> dict[str, Any]:
    body = {"query": query, "variables": {}, "operationName": operation}
    response = await client.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        (CHEAP + EXPENSIVE, "GRAPHQL_MAX_COST"),
        (EXPENSIVE + CHEAP, "GRAPHQL_MAX_COST"),
        (SHARED, "GRAPHQL_MAX_COST"),
        (NODES, "GRAPHQL_MAX_NODES"),
    ],
)
async def test_each_operation_is_measured_with_its_own_variable_defaults(
    client: httpx.AsyncClient, make_platform: Any, sql_counter: Any, query: str, limit: str
) -> None:
    headers, baseline = await authentication_only(client, make_platform, sql_counter)
    # Every operation of the document is measured, whichever one is selected.
    for operation in ("B", "A"):
        with sql_counter:
            body = await run_operation(client, query, operation, headers)
        error = refusal(body, limit)
        assert error["extensions"]["max"] == (10_000 if limit == "GRAPHQL_MAX_COST" else 100)
        assert sql_counter.count == baseline
    if limit == "GRAPHQL_MAX_COST":
        assert "1010100" in refusal(body, limit)["message"]
    else:
        assert "300" in refusal(body, limit)["message"]


async def test_a_nul_in_another_operations_default_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for operation in ("B", "A"):
        body = await run_operation(client, NUL_DEFAULT, operation, admin_headers)
        assert body["data"] is None, body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert body["errors"][0]["extensions"]["errors"][0]["field"] == "search"
    # A request variable is checked against every type it is declared with: as an ID in B, the
    # global id hides a NUL that A, declaring it a String, would not see.
    hidden = base64.b64encode(b"User:usr_\x00").decode()
    typed = (
        "query A($u: String) { debtors(search: $u) { totalCount } } "
        "query B($u: ID) { receivables(userId: $u) { totalCount } }"
    )
    response = await client.post(
        "/graphql",
        json={"query": typed, "variables": {"u": hidden}, "operationName": "B"},
        headers=admin_headers,
    )
    body = response.json()
    assert body["data"] is None, body
    # Named by the first argument the variable is passed to.
    assert body["errors"][0]["extensions"]["errors"][0]["code"] == "invalid_character"


async def test_operations_within_the_limits_share_a_document(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    platform = await make_platform()
    headers = bearer(platform.api_key)
    cheap_shared = SHARED.replace("= 100", "= 2")
    for operation in ("A", "B"):
        body = await run_operation(client, cheap_shared, operation, headers)
        assert body == {"data": {"receivables": {"nodes": []}}}, body


async def test_operations_that_each_rebind_a_fragment_chain_are_refused(
    client: httpx.AsyncClient,
) -> None:
    # 250 operations, each with its own default, over 50 fragments that read it: 12,500
    # measurements (quadratic in the document) rather than 50.
    fan = " ".join(
        f"fragment F{i} on Query {{ receivables(first: $n) {{ totalCount }} ...F{i + 1} }}"
        for i in range(50)
    )
    operations = " ".join(f"query Q{i}($n:Int=-{i}){{...F0}}" for i in range(250))
    query = operations + " " + fan + " fragment F50 on Query { __typename }"
    response = await client.post("/graphql", json={"query": query, "operationName": "Q1"})
    error = refusal(response.json(), "fragments")
    assert error["extensions"]["max"] == 2000


# --- verdicts kept with a cached document (schema/limits.py Verdict) --------------------------


class Walks:
    """Counts the walks of the limits (limits.judge): a kept verdict is not walked again."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> Walks:
    DOCUMENTS.clear()
    counter = Walks()
    real = limits.judge

    def counted(*args: Any) -> limits.Verdict:
        counter.count += 1
        return real(*args)

    monkeypatch.setattr(limits, "judge", counted)
    return counter


def global_id(type_name: str, node_id: str) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


# Costs $n + $n x $n; $u is no page size: the walk never reads it.
PAGED = (
    "query Paged($n: Int, $u: ID) { receivables(first: $n, userId: $u) "
    "{ nodes { user { receivables(first: $n) { totalCount } } } } }"
)


async def test_a_kept_document_is_walked_again_only_for_other_page_sizes(
    client: httpx.AsyncClient, make_platform: Any, walks: Walks
) -> None:
    headers = bearer((await make_platform()).api_key)
    empty = {"data": {"receivables": {"nodes": []}}}
    assert await gql(client, PAGED, {"n": 2, "u": global_id("User", "usr_a")}, headers) == empty
    assert walks.count == 1
    assert PAGED in DOCUMENTS
    # Other values of a variable the walk does not read, or none: the same verdict.
    for variables in ({"n": 2, "u": global_id("User", "usr_b")}, {"n": 2}):
        assert await gql(client, PAGED, variables, headers) == empty
    assert walks.count == 1
    # Another page size is judged again, and refused once over the cost.
    assert await gql(client, PAGED, {"n": 99}, headers) == empty  # 99 + 99 x 99 = 9,900
    assert walks.count == 2
    refused = await gql(client, PAGED, {"n": 100, "u": global_id("User", "usr_a")}, headers)
    assert "10100" in refusal(refused, "GRAPHQL_MAX_COST")["message"]
    assert walks.count == 3
    # Refused again on repetition, from the kept verdict, with the very same errors; 100.0 is
    # read as the Int 100.
    for n in (100, 100.0, 100):
        again = await gql(client, PAGED, {"n": n, "u": global_id("User", "usr_c")}, headers)
        assert again == refused
    assert walks.count == 3
    # An absent page size (its default: 20) and a null one are other readings.
    assert await gql(client, PAGED, {}, headers) == empty
    assert await gql(client, PAGED, {"n": None}, headers) == empty
    assert walks.count == 5
    assert await gql(client, PAGED, {"n": 2}, headers) == empty
    assert walks.count == 5


async def test_a_document_over_the_limits_is_never_kept_and_walked_each_time(
    client: httpx.AsyncClient, make_platform: Any, walks: Walks
) -> None:
    headers = bearer((await make_platform()).api_key)
    bodies = [await gql(client, PAGED, {"n": 100}, headers) for _ in range(3)]
    refusal(bodies[0], "GRAPHQL_MAX_COST")
    assert bodies[1] == bodies[0] == bodies[2]
    assert PAGED not in DOCUMENTS
    assert walks.count == 3


async def test_a_nul_in_a_variable_is_refused_on_a_kept_document(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], walks: Walks
) -> None:
    headers = bearer((await make_platform()).api_key)
    empty = {"data": {"receivables": {"nodes": []}}}
    assert await gql(client, PAGED, {"n": 1, "u": global_id("User", "usr_a")}, headers) == empty
    for hidden in ("usr_\x00", global_id("User", "usr_\x00")):  # as text, and in a global id
        body = await gql(client, PAGED, {"n": 1, "u": hidden}, headers)
        assert body["data"] is None, body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert body["errors"][0]["extensions"]["errors"][0]["field"] == "userId"
    assert await gql(client, PAGED, {"n": 1}, headers) == empty
    # A default is checked when its variable is absent, on a kept document too.
    defaulted = 'query D($s: String = "a\\u0000b") { debtors(search: $s) { totalCount } }'
    ran = await gql(client, defaulted, {"s": "a"}, admin_headers)
    assert ran == {"data": {"debtors": {"totalCount": 0}}}, ran
    assert defaulted in DOCUMENTS
    body = await gql(client, defaulted, {}, admin_headers)
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"]["errors"][0]["field"] == "search"
    assert walks.count == 2


async def test_a_kept_verdict_is_held_to_each_callers_introspection(
    settings: Settings, clock: Any, admin_headers: dict[str, str], walks: Walks
) -> None:
    async with app_client(
        settings, clock, **PRODUCTION, graphql_introspection="operators"
    ) as operators:
        headers = admin_headers
        introspection_refused(await gql(operators, INTROSPECT), "operators")
        assert INTROSPECT not in DOCUMENTS  # refused: not kept, walked again next time
        assert await gql(operators, INTROSPECT, headers=headers) == SCHEMA
        assert walks.count == 2
        for _ in range(2):
            introspection_refused(await gql(operators, INTROSPECT), "operators")
            assert await gql(operators, INTROSPECT, headers=headers) == SCHEMA
        assert walks.count == 2


def test_each_request_is_given_its_own_error_objects() -> None:
    # graphql-core and the extensions edit errors in place (codes, masked messages).
    schema = debtgraph_schema._schema
    verdict = limits.judge(schema, parse(PAGED), {"n": 100})
    first, second = (verdict.errors(limits.Limits(), {"n": 100}) for _ in range(2))
    assert [e.formatted for e in first] == [e.formatted for e in second]
    assert first[0] is not second[0]
    first[0].extensions["code"] = "EDITED"  # type: ignore[index]
    assert verdict.errors(limits.Limits(), {})[0].extensions == second[0].extensions
    assert second[0].extensions["code"] == "QUERY_TOO_COMPLEX"  # type: ignore[index]
