"""Constant SQL: every list field and edge of the graph costs the same statements for 1 parent
as for 50 (DESIGN.md, Dataloaders).

One row of ``ROWS`` per list field (and the to-one edges below it): a document whose root list
takes ``$n`` parents (or ``nodes(ids: $ids)`` over ``n`` ids), run for 1 and for PARENTS
parents of the arranged world. Adding a list field to the graph means adding a row here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import gql
from tests.integration.graph_world import PARENTS, GraphWorld, arrange


@dataclass(frozen=True)
class Row:
    """A document over ``n`` parents, as one principal; ``ids`` names the node type for ``$ids``."""

    fields: str  # the list fields and edges the document pins
    who: str  # operator | platform
    document: str
    parents: tuple[str, ...]  # where the parents' list is in ``data``
    ids: str | None = None  # "User" / "Debtor": the parents come by ``nodes(ids: $ids)``


ROWS = [
    Row(
        "dashboard: Query.uploads → Upload.debtors → Debtor.vopLogs + Debtor.billingAttempts",
        "operator",
        """query($n: Int) { uploads(first: $n) { totalCount nodes { id debtorsCount
          validationStats { total valid } debtors(first: 2) { totalCount nodes { id upload { id }
            vopLogs(first: 2) { totalCount nodes { id debtor { id } upload { id } } }
            billingAttempts(first: 2) { totalCount nodes { id debtor { id } upload { id } } }
          } } } } }""",
        ("uploads", "nodes"),
    ),
    Row(
        "Upload.vopLogs, Upload.billingAttempts",
        "operator",
        """query($n: Int) { uploads(first: $n) { nodes { id
          vopLogs(first: 3) { totalCount pageInfo { hasNextPage } nodes { id } }
          billingAttempts(last: 3) { totalCount pageInfo { hasPreviousPage }
            nodes { id } } } } }""",
        ("uploads", "nodes"),
    ),
    Row(
        "Query.uploads backward: last → Upload.debtors(last)",
        "operator",
        """query($n: Int) { uploads(last: $n) { nodes { id
          debtors(last: 1) { totalCount nodes { id } } } } }""",
        ("uploads", "nodes"),
    ),
    Row(
        "Query.debtors → Debtor.upload, Debtor.vopLogs, Debtor.billingAttempts",
        "operator",
        """query($n: Int) { debtors(first: $n) { nodes { id upload { id }
          vopLogs(result: VERIFIED) { nodes { id } } billingAttempts(status: PENDING)
          { nodes { id } } } } }""",
        ("debtors", "nodes"),
    ),
    Row(
        "Query.nodes (Debtor) → Debtor.upload, Debtor.vopLogs",
        "operator",
        """query($ids: [ID!]!) { nodes(ids: $ids) { ... on Debtor { id upload { id }
          vopLogs { nodes { id } } } } }""",
        ("nodes",),
        ids="Debtor",
    ),
    Row(
        "Query.vopLogs → VopLog.debtor, VopLog.upload",
        "operator",
        "query($n: Int) { vopLogs(first: $n) { nodes { id debtor { id } upload { id } } } }",
        ("vopLogs", "nodes"),
    ),
    Row(
        "Query.billingAttempts → BillingAttempt.debtor, BillingAttempt.upload",
        "operator",
        """query($n: Int) { billingAttempts(first: $n) { nodes { id debtor { id }
          upload { id } } } }""",
        ("billingAttempts", "nodes"),
    ),
    Row(
        "Query.blacklistedIbans",
        "operator",
        "query($n: Int) { blacklistedIbans(first: $n) { totalCount nodes { id iban } } }",
        ("blacklistedIbans", "nodes"),
    ),
    Row(
        "Query.receivables → Receivable.user, .contacts, .events, .evidence (and back)",
        "platform",
        """query($n: Int) { receivables(first: $n) { nodes { id user { id }
          contacts { totalCount nodes { id receivable { id } } }
          events { totalCount nodes { id receivable { id } } }
          evidence { totalCount nodes { id receivable { id } } } } } }""",
        ("receivables", "nodes"),
    ),
    Row(
        "User.receivables, User.webhooks, User.extractionResults (and back)",
        "platform",
        """query($ids: [ID!]!) { nodes(ids: $ids) { ... on User { id
          receivables { totalCount nodes { id user { id } } }
          webhooks { totalCount nodes { id user { id } } }
          extractionResults { totalCount nodes { id user { id } } } } } }""",
        ("nodes",),
        ids="User",
    ),
    Row(
        "Query.webhooks → Webhook.deliveries → attempts, webhook, event",
        "platform",
        """query($n: Int) { webhooks(first: $n) { totalCount nodes { id user { id }
          deliveries { totalCount nodes { id eventId eventType webhook { id }
            attempts { attemptNumber } } } } } }""",
        ("webhooks", "nodes"),
    ),
]


def gid(type_name: str, key: object) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def variables(row: Row, world: GraphWorld, n: int) -> dict[str, Any]:
    if row.ids == "User":
        return {"ids": [gid("User", u) for u in world.user_ids[:n]]}
    if row.ids == "Debtor":
        return {"ids": [gid("Debtor", d) for d in world.debtor_ids[:n]]}
    return {"n": n}


def dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def assert_connected(value: Any, where: str = "") -> None:
    """Every edge selected resolved: no null, no empty connection (a broken loader shows)."""
    assert value is not None, f"null at {where}"
    if isinstance(value, dict):
        if "nodes" in value:
            assert value["nodes"], f"empty connection at {where}"
        for key, child in value.items():
            assert_connected(child, f"{where}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            assert_connected(child, f"{where}[{i}]")


@pytest.fixture
async def world(
    client: httpx.AsyncClient, db: Any, clock: Any, make_platform: Any, admin_headers: Any
) -> GraphWorld:
    return await arrange(client, db, clock, make_platform, admin_headers)


@pytest.mark.parametrize("row", ROWS, ids=[r.fields for r in ROWS])
async def test_statements_do_not_grow_with_parents(
    row: Row, world: GraphWorld, client: httpx.AsyncClient, sql_counter: Any
) -> None:
    headers = world.operator if row.who == "operator" else world.platform
    counts = []
    for n in (1, PARENTS):
        with sql_counter:
            body = await gql(client, row.document, variables(row, world, n), headers)
        counts.append(sql_counter.count)
        assert "errors" not in body, body["errors"]
        parents = dig(body["data"], row.parents)
        assert len(parents) == n
        assert_connected(parents)
    assert counts[0] == counts[1], f"{counts[0]} statements for 1 parent, {counts[1]} for {PARENTS}"


# The VOP log and billing attempt edges of each upload, asked at the root's uploads and again
# under each of their debtors' upload: the second asking reads nothing (the page loaders keep
# each parent's page for the request, whichever key or group asked it: review).
_EDGES = "vopLogs(first: 2) { totalCount } billingAttempts(first: 2) { totalCount }"
_ONCE = f"""query {{ uploads(first: 3) {{ nodes {{ id {_EDGES}
  debtors(first: 3) {{ nodes {{ id upload {{ id }} }} }} }} }} }}"""
_TWICE = f"""query {{ uploads(first: 3) {{ nodes {{ id {_EDGES}
  debtors(first: 3) {{ nodes {{ id upload {{ id {_EDGES} }} }} }} }} }} }}"""


async def test_an_edge_asked_again_deeper_costs_no_statement(
    world: GraphWorld, client: httpx.AsyncClient, sql_counter: Any
) -> None:
    counts, answers = [], []
    for document in (_ONCE, _TWICE):
        with sql_counter:
            body = await gql(client, document, {}, world.operator)
        assert "errors" not in body, body["errors"]
        counts.append(sql_counter.count)
        answers.append(body["data"]["uploads"]["nodes"])
    assert counts[0] == counts[1]
    # And the deeper asking answers what the root's did, for every upload.
    for upload in answers[1]:
        for debtor in upload["debtors"]["nodes"]:
            assert debtor["upload"]["vopLogs"] == upload["vopLogs"]
            assert debtor["upload"]["billingAttempts"] == upload["billingAttempts"]
    assert any(u["vopLogs"]["totalCount"] for u in answers[1])
