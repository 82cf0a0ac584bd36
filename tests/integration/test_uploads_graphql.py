"""The operator graph: uploadCreate (multipart), Upload/Debtor nodes, connections, mutations,
subscriptions — through the same resolvers as REST."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import httpx
from sqlalchemy import select

from debtgraph.domain.debtors.models import Debtor
from debtgraph.server.app import Runtime
from tests.conftest import gql
from tests.integration.test_subscriptions import _next, _wait_subscribed, socket
from tests.integration.uploads_support import counts, csv_text, upload

CREATE = """mutation($input: UploadCreateInput!) { uploadCreate(input: $input) {
  upload { id databaseId status totalRecords processedRecords failedRecords debtorsCount }
  queued created failed rowErrors { row message data } userErrors { field code message } } }"""


def gid(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


async def multipart(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes
) -> dict[str, Any]:
    operations = {"query": CREATE, "variables": {"input": {"file": None}}}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("list.csv", content, "text/csv")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_upload_create_by_multipart(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    body = await multipart(client, admin_headers, csv_text(10, bad_every=5).encode())
    payload = body["data"]["uploadCreate"]
    assert payload["userErrors"] == []
    assert payload["queued"] is False
    assert (payload["created"], payload["failed"]) == (8, 2)
    assert payload["upload"]["status"] == "COMPLETED"
    assert payload["upload"]["debtorsCount"] == 10
    assert payload["rowErrors"][0]["row"] == 2
    assert payload["rowErrors"][0]["message"] == "IBAN is invalid"
    big = await multipart(client, admin_headers, csv_text(120).encode())
    assert big["data"]["uploadCreate"]["queued"] is True


async def test_upload_create_refusals_change_nothing(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    runtime: Runtime,
    make_platform: Any,
) -> None:
    empty = (await multipart(client, admin_headers, b""))["data"]["uploadCreate"]
    assert empty["userErrors"] == [
        {"field": "file", "code": "invalid_csv", "message": "The file is empty."}
    ]
    platform = await make_platform()
    # Only operators upload CSV files: a platform (which may send invoices) is told so, and an
    # anonymous caller is refused before the body is read (PRODUCT-DECISIONS).
    denied = await multipart(
        client, {"Authorization": f"Bearer {platform.api_key}"}, csv_text(3).encode()
    )
    assert denied["data"]["uploadCreate"]["userErrors"][0]["code"] == "unauthenticated"
    anonymous = await client.post(
        "/graphql", files={"0": ("list.csv", csv_text(3).encode(), "text/csv")}
    )
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    runtime.services.settings = dataclasses.replace(runtime.services.settings, max_upload_mb=1)
    # Just over the limit: within the multipart allowance the endpoint checks up front, so the
    # spooled size is what refuses it (a far larger body is refused earlier with a 413).
    too_big = await multipart(client, admin_headers, csv_text(12000).encode()[: 1024 * 1024 + 2048])
    assert too_big["data"]["uploadCreate"]["userErrors"] == [
        {
            "field": "file",
            "code": "too_large",
            "message": "The file is too large: the maximum size is 1 MB.",
        }
    ]
    assert await counts(db) == (0, 0)


QUERY = """query($first: Int, $status: UploadStatus) { uploads(first: $first, status: $status) {
  totalCount pageInfo { hasNextPage endCursor }
  nodes { id databaseId debtorsCount progress successRate
    validationStats { total valid invalid pending blacklisted readyForSync }
    debtors(first: 3, validationStatus: VALID) { totalCount
      nodes { id fullName ibanMasked amount validationStatus upload { databaseId } } } } } }"""


async def test_uploads_connection_with_nested_debtors_in_constant_statements(
    client: httpx.AsyncClient, admin_headers: dict[str, str], sql_counter: Any
) -> None:
    await upload(client, admin_headers, csv_text(6, bad_every=3))
    with sql_counter:
        one = await gql(client, QUERY, {"first": 10}, admin_headers)
    few = sql_counter.count
    assert "errors" not in one, one
    node = one["data"]["uploads"]["nodes"][0]
    assert node["debtorsCount"] == 6
    assert node["successRate"] == 66.67
    assert node["progress"] == 100.0
    assert node["validationStats"] == {
        "total": 6, "valid": 4, "invalid": 2, "pending": 0, "blacklisted": 0, "readyForSync": 4,
    }  # fmt: skip
    debtors = node["debtors"]
    assert debtors["totalCount"] == 4
    assert len(debtors["nodes"]) == 3
    assert debtors["nodes"][0]["upload"]["databaseId"] == node["databaseId"]
    assert debtors["nodes"][0]["amount"] == "150.00"
    for _ in range(4):
        await upload(client, admin_headers, csv_text(6, bad_every=3))
    with sql_counter:
        many = await gql(client, QUERY, {"first": 10}, admin_headers)
    assert len(many["data"]["uploads"]["nodes"]) == 5
    assert sql_counter.count == few
    bad = await gql(client, QUERY, {"first": 500}, admin_headers)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad_status = await gql(client, QUERY, {"status": "done"}, admin_headers)
    assert bad_status["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_debtors_query_filters_and_nodes_are_operator_only(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, make_platform: Any
) -> None:
    upload_id = (await upload(client, admin_headers, csv_text(5))).json()["data"]["id"]
    query = """query($u: ID) { debtors(uploadId: $u, country: "de") { totalCount
      nodes { id country } } }"""
    found = await gql(client, query, {"u": gid("Upload", upload_id)}, admin_headers)
    assert found["data"]["debtors"]["totalCount"] == 1
    debtor_gid = found["data"]["debtors"]["nodes"][0]["id"]
    wrong_type = await gql(client, query, {"u": gid("Debtor", 1)}, admin_headers)
    assert wrong_type["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    node_query = "query($id: ID!) { node(id: $id) { ... on Debtor { id country } } }"
    seen = await gql(client, node_query, {"id": debtor_gid}, admin_headers)
    assert seen["data"]["node"] == {"id": debtor_gid, "country": "DE"}
    platform = await make_platform()
    platform_headers = {"Authorization": f"Bearer {platform.api_key}"}
    hidden = await gql(client, node_query, {"id": debtor_gid}, platform_headers)
    assert hidden["data"]["node"] is None
    listed = await gql(client, query, {"u": None}, platform_headers)
    assert listed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_validate_and_update_mutations(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, make_platform: Any
) -> None:
    upload_id = (await upload(client, admin_headers, csv_text(3, bad_every=3))).json()["data"]["id"]
    async with db() as session:
        bad_id = await session.scalar(select(Debtor.id).where(Debtor.row_number == 2))
    update = """mutation($input: DebtorUpdateInput!) { debtorUpdate(input: $input) {
      debtor { validationStatus validationErrors iban: ibanMasked rawData }
      userErrors { field code message } } }"""
    fixed = await gql(
        client,
        update,
        {"input": {"debtorId": gid("Debtor", bad_id), "rawData": {"IBAN": "NL91ABNA0417164300"}}},
        admin_headers,
    )
    debtor = fixed["data"]["debtorUpdate"]["debtor"]
    assert debtor["validationStatus"] == "VALID"
    assert debtor["iban"] == "NL91****4300"
    refused = await gql(
        client,
        update,
        {"input": {"debtorId": gid("Debtor", bad_id), "rawData": "iban"}},
        admin_headers,
    )
    assert refused["data"]["debtorUpdate"]["userErrors"][0]["field"] == "rawData"
    validate = """mutation($input: UploadValidateInput!) { uploadValidate(input: $input) {
      total valid invalid upload { processedRecords failedRecords } userErrors { code } } }"""
    result = await gql(
        client, validate, {"input": {"uploadId": gid("Upload", upload_id)}}, admin_headers
    )
    assert result["data"]["uploadValidate"]["upload"] == {"processedRecords": 3, "failedRecords": 0}
    one = """mutation($input: DebtorValidateInput!) { debtorValidate(input: $input) {
      debtor { validationStatus } userErrors { code } } }"""
    platform = await make_platform()
    denied = await gql(
        client,
        one,
        {"input": {"debtorId": gid("Debtor", bad_id)}},
        {"Authorization": f"Bearer {platform.api_key}"},
    )
    assert denied["data"]["debtorValidate"]["userErrors"] == [{"code": "unauthenticated"}]
    missing = await gql(client, one, {"input": {"debtorId": gid("Debtor", 999)}}, admin_headers)
    assert missing["data"]["debtorValidate"]["userErrors"] == [{"code": "not_found"}]


async def test_upload_progress_and_debtor_subscriptions(
    app: Any, client: httpx.AsyncClient, runtime: Runtime, admin_headers: dict[str, str], db: Any
) -> None:
    async with socket(app) as ws:
        await ws.send_json(
            {
                "type": "connection_init",
                "payload": {"Authorization": admin_headers["Authorization"]},
            }
        )
        assert (await _next(ws))["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { uploadProgress { databaseId status } }"},
            }
        )
        await ws.send_json(
            {
                "id": "2",
                "type": "subscribe",
                "payload": {
                    "query": "subscription { debtorStatusChanged { databaseId validationStatus } }"
                },
            }
        )
        await _wait_subscribed(runtime)
        created = await upload(client, admin_headers, csv_text(2))
        message = await _next(ws)
        assert message["id"] == "1"
        assert message["payload"]["data"]["uploadProgress"] == {
            "databaseId": created.json()["data"]["id"],
            "status": "COMPLETED",
        }
        async with db() as session:
            debtor_id = await session.scalar(select(Debtor.id).limit(1))
        await client.post(f"/api/admin/debtors/{debtor_id}/validate", headers=admin_headers)
        changed = await _next(ws)
        assert changed["id"] == "2"
        assert changed["payload"]["data"]["debtorStatusChanged"] == {
            "databaseId": debtor_id,
            "validationStatus": "VALID",
        }
