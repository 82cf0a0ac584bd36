"""Blacklist management (GraphQL, operators only) and its effect on validation."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from debtgraph.domain.debtors.models import BlacklistedIban
from tests.conftest import gql
from tests.integration.uploads_support import csv_text, upload

ADD = """mutation($input: BlacklistAddInput!) { blacklistAdd(input: $input) {
  entry { iban reason } userErrors { field code message } } }"""
REMOVE = """mutation($input: BlacklistRemoveInput!) { blacklistRemove(input: $input) {
  entry { iban } userErrors { field code message } } }"""
LIST = """query($search: String) { blacklistedIbans(search: $search) { totalCount
  nodes { iban reason } } }"""


async def _entries(db: Any) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(BlacklistedIban)) or 0)


async def test_add_list_remove_with_normalised_ibans(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    added = await gql(
        client, ADD, {"input": {"iban": "de89 3704 0044 0532 0130 00", "reason": "fraud"}},
        admin_headers,
    )  # fmt: skip
    assert added["data"]["blacklistAdd"] == {
        "entry": {"iban": "DE89370400440532013000", "reason": "fraud"},
        "userErrors": [],
    }
    again = await gql(client, ADD, {"input": {"iban": "DE89370400440532013000"}}, admin_headers)
    assert again["data"]["blacklistAdd"]["entry"]["reason"] == "fraud"
    assert await _entries(db) == 1
    listed = await gql(client, LIST, {"search": "3704 0044"}, admin_headers)
    assert listed["data"]["blacklistedIbans"]["totalCount"] == 1
    assert (await gql(client, LIST, {"search": "ES"}, admin_headers))["data"]["blacklistedIbans"][
        "totalCount"
    ] == 0

    response = await upload(client, admin_headers, csv_text(5))
    meta = response.json()["meta"]
    assert (meta["created"], meta["failed"]) == (4, 1)
    assert meta["errors"][0]["message"] == "IBAN is blacklisted"
    stats = await client.get(
        f"/api/admin/uploads/{response.json()['data']['id']}/validation-stats",
        headers=admin_headers,
    )
    assert stats.json()["data"]["blacklisted"] == 1
    assert stats.json()["data"]["invalid"] == 0

    removed = await gql(
        client, REMOVE, {"input": {"iban": "de89370400440532013000"}}, admin_headers
    )
    assert removed["data"]["blacklistRemove"]["entry"] == {"iban": "DE89370400440532013000"}
    assert await _entries(db) == 0
    gone = await gql(client, REMOVE, {"input": {"iban": "DE89370400440532013000"}}, admin_headers)
    assert gone["data"]["blacklistRemove"]["userErrors"][0]["code"] == "not_found"


async def test_bad_ibans_and_non_operators_change_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, make_platform: Any
) -> None:
    for iban, code in (("", "required"), ("DE00 1234", "invalid")):
        result = await gql(client, ADD, {"input": {"iban": iban}}, admin_headers)
        assert result["data"]["blacklistAdd"]["userErrors"][0] == {
            "field": "iban",
            "code": code,
            "message": "IBAN is required" if code == "required" else "IBAN is invalid",
        }
    platform = await make_platform()
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    denied = await gql(client, ADD, {"input": {"iban": "DE89370400440532013000"}}, headers)
    assert denied["data"]["blacklistAdd"]["userErrors"][0]["code"] == "unauthenticated"
    anonymous = await gql(client, ADD, {"input": {"iban": "DE89370400440532013000"}})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    hidden = await gql(client, LIST, {}, headers)
    assert hidden["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _entries(db) == 0
