"""Relay connections in both directions: first/after and last/before agree on every list, the
page info says what lies beyond, and bad paging arguments are refused with the field at fault."""

from __future__ import annotations

import base64
import gc
from typing import Any

import httpx
import pytest
from aiodataloader import DataLoader
from sqlalchemy import Row

from debtgraph.resolvers.loaders import Page
from tests.conftest import gql
from tests.integration.graph_world import GraphWorld, arrange

PAGE = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id }"


@pytest.fixture
async def world(
    client: httpx.AsyncClient, db: Any, clock: Any, make_platform: Any, admin_headers: Any
) -> GraphWorld:
    return await arrange(client, db, clock, make_platform, admin_headers, parents=5)


async def _page(
    client: httpx.AsyncClient, headers: dict[str, str], field: str, args: str
) -> dict[str, Any]:
    body = await gql(client, f"{{ {field}({args}) {{ totalCount {PAGE} }} }}", headers=headers)
    assert "errors" not in body, body
    return body["data"][field]  # type: ignore[no-any-return]


def _ids(page: dict[str, Any]) -> list[str]:
    return [n["id"] for n in page["nodes"]]


@pytest.mark.parametrize(
    ("field", "who"),
    [("uploads", "operator"), ("receivables", "platform"), ("webhooks", "platform")],
)
async def test_forward_and_backward_pages_cover_the_same_list(
    client: httpx.AsyncClient, world: GraphWorld, field: str, who: str
) -> None:
    headers = world.operator if who == "operator" else world.platform
    everything = _ids(await _page(client, headers, field, "first: 100"))
    assert len(everything) == 5

    forward: list[str] = []
    cursor = None
    while True:
        after = f', after: "{cursor}"' if cursor else ""
        page = await _page(client, headers, field, f"first: 2{after}")
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] is (cursor is not None)
        forward += _ids(page)
        cursor = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert forward == everything

    backward: list[str] = []
    cursor = None
    while True:
        before = f', before: "{cursor}"' if cursor else ""
        page = await _page(client, headers, field, f"last: 2{before}")
        # A backward page is still in the list's order, and its far end is the start.
        assert page["pageInfo"]["hasNextPage"] is (cursor is not None)
        backward = _ids(page) + backward
        cursor = page["pageInfo"]["startCursor"]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
    assert backward == everything

    # after and before together: what lies between two cursors.
    first = await _page(client, headers, field, "first: 1")
    last = await _page(client, headers, field, "last: 1")
    between = await _page(
        client,
        headers,
        field,
        f'first: 100, after: "{first["pageInfo"]["endCursor"]}", '
        f'before: "{last["pageInfo"]["startCursor"]}"',
    )
    assert _ids(between) == everything[1:-1]


async def test_nested_connections_page_backwards_per_parent(
    client: httpx.AsyncClient, world: GraphWorld
) -> None:
    query = """{ uploads(first: 2) { nodes {
      all: vopLogs(first: 100) { nodes { id } }
      tail: vopLogs(last: 3) { pageInfo { hasPreviousPage hasNextPage } nodes { id } } } } }"""
    body = await gql(client, query, headers=world.operator)
    assert "errors" not in body, body
    for upload in body["data"]["uploads"]["nodes"]:
        everything = _ids(upload["all"])
        assert len(everything) == 4
        assert _ids(upload["tail"]) == everything[1:]
        assert upload["tail"]["pageInfo"]["hasPreviousPage"] is True
        assert upload["tail"]["pageInfo"]["hasNextPage"] is False


async def test_a_parent_past_its_last_child_keeps_its_total(
    client: httpx.AsyncClient, world: GraphWorld
) -> None:
    """A cursor beyond one parent's children: an empty page, and still the parent's total."""
    listed = await gql(
        client,
        "{ uploads(first: 2) { nodes { vopLogs(first: 100) { pageInfo { endCursor } } } } }",
        headers=world.operator,
    )
    newest = listed["data"]["uploads"]["nodes"][0]
    cursor = newest["vopLogs"]["pageInfo"]["endCursor"]
    query = """query($after: String) { uploads(first: 2) { nodes {
      vopLogs(first: 100, after: $after) { totalCount nodes { id } } } } }"""
    body = await gql(client, query, {"after": cursor}, world.operator)
    first, second = body["data"]["uploads"]["nodes"]
    assert first["vopLogs"] == {"totalCount": 4, "nodes": []}
    # Ids run across uploads: every log of the older upload lies past the newer one's cursor.
    assert second["vopLogs"]["totalCount"] == 4
    assert len(second["vopLogs"]["nodes"]) == 4


@pytest.mark.parametrize(
    ("args", "field", "code"),
    [
        ("first: 2, last: 2", "last", "invalid"),
        ("last: 0", "last", "out_of_range"),
        ("last: 101", "last", "out_of_range"),
        ('last: 2, before: "nope"', "before", "invalid_cursor"),
        ('first: 2, after: "nope"', "after", "invalid_cursor"),
    ],
)
async def test_bad_paging_arguments_name_the_field(
    client: httpx.AsyncClient, world: GraphWorld, args: str, field: str, code: str
) -> None:
    for who, root in (("operator", "uploads"), ("platform", "webhooks")):
        headers = world.operator if who == "operator" else world.platform
        body = await gql(client, f"{{ {root}({args}) {{ nodes {{ id }} }} }}", headers=headers)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["errors"][0]["field"] == field
        assert error["extensions"]["errors"][0]["code"] == code


async def test_every_edge_leads_back(client: httpx.AsyncClient, world: GraphWorld) -> None:
    """Each child names its parent: the ids agree both ways."""
    operator = await gql(
        client,
        """{ uploads(first: 1) { nodes { id debtors(first: 1) { nodes { id upload { id }
          vopLogs(first: 1) { nodes { debtor { id } upload { id } } }
          billingAttempts(first: 1) { nodes { debtor { id } upload { id } } } } }
          billingAttempts(first: 1) { nodes { upload { id } } } } } }""",
        headers=world.operator,
    )
    (upload,) = operator["data"]["uploads"]["nodes"]
    (debtor,) = upload["debtors"]["nodes"]
    assert debtor["upload"]["id"] == upload["id"]
    for edge in ("vopLogs", "billingAttempts"):
        (child,) = debtor[edge]["nodes"]
        assert child == {"debtor": {"id": debtor["id"]}, "upload": {"id": upload["id"]}}
    assert upload["billingAttempts"]["nodes"][0]["upload"]["id"] == upload["id"]

    platform = await gql(
        client,
        """{ receivables(first: 1) { nodes { id user { id webhooks { nodes { id user { id } } }
          extractionResults(first: 1) { nodes { user { id } } } }
          contacts { nodes { receivable { id } } } events { nodes { receivable { id } } }
          evidence { nodes { receivable { id } } } } }
          webhooks(first: 1) { nodes { id deliveries(first: 1) { nodes { webhook { id } } } } }
        }""",
        headers=world.platform,
    )
    (receivable,) = platform["data"]["receivables"]["nodes"]
    user = receivable["user"]
    for edge in ("contacts", "events", "evidence"):
        assert {c["receivable"]["id"] for c in receivable[edge]["nodes"]} == {receivable["id"]}
    assert {w["user"]["id"] for w in user["webhooks"]["nodes"]} == {user["id"]}
    assert user["extractionResults"]["nodes"][0]["user"]["id"] == user["id"]
    (webhook,) = platform["data"]["webhooks"]["nodes"]
    assert webhook["deliveries"]["nodes"][0]["webhook"]["id"] == webhook["id"]


async def test_new_nodes_resolve_for_operators_only(
    client: httpx.AsyncClient, world: GraphWorld
) -> None:
    query = (
        "{ blacklistedIbans(first: 1) { nodes { id iban } } vopLogs(first: 1) { nodes { id } } }"
    )
    listed = (await gql(client, query, headers=world.operator))["data"]
    ids = [listed["blacklistedIbans"]["nodes"][0]["id"], listed["vopLogs"]["nodes"][0]["id"]]
    fetch = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    found = await gql(client, fetch, {"ids": ids}, world.operator)
    assert [n["id"] for n in found["data"]["nodes"]] == ids
    refused = await gql(client, fetch, {"ids": ids}, world.platform)
    assert refused["data"]["nodes"] == [None, None]
    # A platform asking for an operator type: the refusal every operator read gives it.
    assert {e["extensions"]["code"] for e in refused["errors"]} == {"UNAUTHENTICATED"}


# Where one object of each node type is found in the world, as the operator sees it.
ONE_OF_EACH = """{
  uploads(first: 1) { nodes { id debtors(first: 1) { nodes { id
    vopLogs(first: 1) { nodes { id } } billingAttempts(first: 1) { nodes { id } } } } } }
  blacklistedIbans(first: 1) { nodes { id } }
  receivables(first: 1) { nodes { id user { id extractionResults(first: 1) { nodes { id } } }
    contacts(first: 1) { nodes { id } } events(first: 1) { nodes { id } }
    evidence(first: 1) { nodes { id } } } }
  webhooks(first: 1) { nodes { id deliveries(first: 1) { nodes { id } } } }
}"""
NODE_TYPES = """{ __schema { types { name interfaces { name } } } }"""
# Who may read each node type besides the operator (PRODUCT.md §1).
PLATFORM_TYPES = {
    "User",
    "Receivable",
    "Contact",
    "ReceivableEvent",
    "Evidence",
    "ExtractionResult",
    "Webhook",
    "WebhookDelivery",
}


def _ids_by_type(value: Any, found: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "id":
                type_name = base64.b64decode(child).decode().split(":", 1)[0]
                found.setdefault(type_name, child)
            else:
                _ids_by_type(child, found)
    elif isinstance(value, list):
        for child in value:
            _ids_by_type(child, found)


async def test_node_and_nodes_resolve_every_node_type_within_reach(
    client: httpx.AsyncClient, world: GraphWorld
) -> None:
    schema = (await gql(client, NODE_TYPES, headers=world.operator))["data"]["__schema"]
    node_types = {t["name"] for t in schema["types"] if {"name": "Node"} in (t["interfaces"] or [])}
    found: dict[str, str] = {}
    _ids_by_type((await gql(client, ONE_OF_EACH, headers=world.operator))["data"], found)
    assert set(found) == node_types, "add the new node type to ONE_OF_EACH"
    assert node_types > PLATFORM_TYPES

    ids = [found[t] for t in sorted(node_types)]
    fetch = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    as_operator = await gql(client, fetch, {"ids": ids}, world.operator)
    assert "errors" not in as_operator
    assert [n["id"] for n in as_operator["data"]["nodes"]] == ids
    for global_id in ids:
        one = await gql(
            client, "query($id: ID!) { node(id: $id) { id } }", {"id": global_id}, world.operator
        )
        assert one["data"]["node"] == {"id": global_id}

    as_platform = await gql(client, fetch, {"ids": ids}, world.platform)
    seen = {
        t for t, node in zip(sorted(node_types), as_platform["data"]["nodes"], strict=True) if node
    }
    assert seen == PLATFORM_TYPES

    # Anonymous, every id is refused as REST's GET refuses it: text that is no global id, or
    # names no Node type, answered NOT_FOUND beside the others' UNAUTHENTICATED.
    anonymous = await gql(client, fetch, {"ids": [*ids, "garbage", "Rm9vOjE="]})
    assert anonymous["data"]["nodes"] == [None] * (len(ids) + 2)
    assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"] * (
        len(ids) + 2
    )
    one = await gql(client, '{ node(id: "garbage") { id } }')
    assert [e["extensions"]["code"] for e in one["errors"]] == ["UNAUTHENTICATED"]

    # Text that is no global id fails its own element alone, as an unknown id does.
    mixed = await gql(client, fetch, {"ids": [ids[0], "garbage", "", ids[1]]}, world.operator)
    assert mixed["data"]["nodes"] == [{"id": ids[0]}, None, None, {"id": ids[1]}]
    assert [(e["path"], e["extensions"]["code"]) for e in mixed["errors"]] == [
        (["nodes", 1], "NOT_FOUND"),
        (["nodes", 2], "NOT_FOUND"),
    ]
    bad = await gql(client, '{ node(id: "garbage") { id } }', headers=world.operator)
    assert bad["data"] == {"node": None}
    assert bad["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_the_debtors_page_and_its_total_are_one_statement(
    client: httpx.AsyncClient, world: GraphWorld, sql_counter: Any
) -> None:
    headers = world.operator
    first = await _page(client, headers, "debtors", "first: 2")
    with sql_counter:
        page = await _page(client, headers, "debtors", "first: 2")
    debtor_reads = [s for s in sql_counter.statements if "FROM debtors" in s]
    assert len(debtor_reads) == 1, debtor_reads
    assert page == first
    assert page["totalCount"] >= 5
    # Past the last row there is no row to carry the total: it is counted apart.
    everything = await _page(client, headers, "debtors", f"first: {page['totalCount']}")
    last = everything["pageInfo"]["endCursor"]
    with sql_counter:
        past = await _page(client, headers, "debtors", f'first: 2, after: "{last}"')
    assert past["nodes"] == []
    assert past["totalCount"] == page["totalCount"]
    assert len([s for s in sql_counter.statements if "FROM debtors" in s]) == 2
    # No row matches at all: the total is 0 without counting.
    with sql_counter:
        none = await _page(client, headers, "debtors", 'first: 2, search: "no such debtor"')
    assert (none["nodes"], none["totalCount"]) == ([], 0)
    assert len([s for s in sql_counter.statements if "FROM debtors" in s]) == 1


async def test_a_request_leaves_its_loads_to_reference_counting(
    client: httpx.AsyncClient, world: GraphWorld
) -> None:
    # What a request loaded is freed when it ends, not left in cycles for the collector (each
    # loader's batch function holds the loaders that hold it): dozens of such requests made
    # the young collections walk tens of thousands of rows, pages and futures.
    query = """{ debtors(first: 5) { nodes { id upload { id }
      vopLogs(first: 2) { nodes { id } } billingAttempts(first: 2) { nodes { id } } } } }"""
    assert "errors" not in await gql(client, query, headers=world.operator)
    gc.collect()
    gc.disable()
    try:
        body = await gql(client, query, headers=world.operator)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, Page | DataLoader | Row)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert "errors" not in body
    assert left == []
