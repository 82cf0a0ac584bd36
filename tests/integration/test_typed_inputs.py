"""Typed GraphQL inputs (issue 8 item 4): scalars, enums both ways, GraphQL names in errors, ids.

REST keeps the seeds' snake_case and lower-case values; these pin the GraphQL side.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx

from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user
from tests.integration.test_receivables import receivable_payload
from tests.integration.uploads_support import csv_text, upload

CREATE = """mutation($v: ReceivableCreateInput!) { receivableCreate(input: $v) {
  receivable { id issueDate dueDate status cancelReason } userErrors { field code message } } }"""
CANCEL = """mutation($v: ReceivableCancelInput!) { receivableCancel(input: $v) {
  receivable { status cancelReason } userErrors { field code message } } }"""


def _camel(key: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def gid(type_name: str, key: object) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def graphql_input(user_id: str, **invoice: Any) -> dict[str, Any]:
    """The GraphQL spelling of the REST test payload (amounts as Decimal strings)."""
    body = _camel_keys(receivable_payload(user_id))
    body["invoice"].update(amount="1200.00", amountBeforeTax="1000.00", taxAmount="200.00")
    body["invoice"].update(invoice)
    return body


async def _creditor(client: httpx.AsyncClient, make_platform: Any) -> tuple[dict[str, str], str]:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    return bearer(acme.api_key), user["id"]


async def test_dates_are_date_scalars_and_bad_ones_are_clean_validation_errors(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    headers, user_id = await _creditor(client, make_platform)
    created = await gql(client, CREATE, {"v": graphql_input(user_id)}, headers)
    receivable = created["data"]["receivableCreate"]["receivable"]
    assert (receivable["issueDate"], receivable["dueDate"]) == ("2026-09-01", "2026-10-01")
    for bad in ("2026-13-45", "yesterday", "2026-09-01T10:00:00"):
        refused = await gql(client, CREATE, {"v": graphql_input(user_id, issueDate=bad)}, headers)
        assert refused["data"] is None
        (error,) = refused["errors"]
        assert error["message"] != "Unexpected error."
        assert "invoice.issueDate" in error["message"], error
    literal = (
        'mutation { receivableCreate(input: {userId: "x", invoice: {numbers: ["1"], '
        'issueDate: "2026-02-30", dueDate: "2026-03-01", serviceDescription: "s", amount: "1"}, '
        'debtor: {companyName: "c", contacts: [{email: "a@b.test"}]}}) { userErrors { code } } }'
    )
    refused = await gql(client, literal, headers=headers)
    assert refused["errors"][0]["message"] != "Unexpected error."
    assert refused["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_user_errors_name_fields_the_graphql_way(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    headers, user_id = await _creditor(client, make_platform)
    body = graphql_input(user_id, issueDate="2026-10-02", amount="1300.00")
    body["debtor"]["contacts"] = [{"email": "nope", "jobTitle": "x" * 101}]
    refused = await gql(client, CREATE, {"v": body}, headers)
    errors = {e["field"]: e for e in refused["data"]["receivableCreate"]["userErrors"]}
    assert errors["invoice.dueDate"]["message"] == (
        "invoice.dueDate must be on or after invoice.issueDate."
    )
    assert "amountBeforeTax + taxAmount" in errors["invoice.amount"]["message"]
    assert errors["debtor.contacts[0].email"]["code"] == "invalid_email"
    assert errors["debtor.contacts[0].jobTitle"]["message"].startswith(
        "debtor.contacts[0].jobTitle "
    )
    # REST, for the same input, keeps the seed's snake_case.
    rest = await client.post(
        "/v1/receivables",
        json=receivable_payload(
            user_id,
            invoice={**receivable_payload(user_id)["invoice"], "issue_date": "2026-10-02"},
        ),
        headers=headers,
    )
    assert rest.json()["error"]["field"] == "invoice.due_date"
    # A foreign creditor: the field is the input's userId.
    other = await gql(client, CREATE, {"v": graphql_input("usr_nope")}, headers)
    assert other["data"]["receivableCreate"]["userErrors"][0]["field"] == "userId"


async def test_soft_rules_name_force_proceed_as_the_input_does(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    headers, user_id = await _creditor(client, make_platform)
    first = await gql(client, CREATE, {"v": graphql_input(user_id)}, headers)
    assert first["data"]["receivableCreate"]["userErrors"] == []
    again = await gql(client, CREATE, {"v": graphql_input(user_id)}, headers)
    (error,) = again["data"]["receivableCreate"]["userErrors"]
    assert error["code"] == "duplicate_receivable"
    assert "send forceProceed: true" in error["message"]
    assert "force_proceed" not in error["message"]
    forced = await gql(
        client, CREATE, {"v": {**graphql_input(user_id), "forceProceed": True}}, headers
    )
    assert forced["data"]["receivableCreate"]["userErrors"] == []


async def test_a_cancel_reason_comes_back_as_it_was_sent(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    headers, user_id = await _creditor(client, make_platform)
    created = await gql(client, CREATE, {"v": graphql_input(user_id)}, headers)
    receivable_id = created["data"]["receivableCreate"]["receivable"]["id"]
    cancelled = await gql(
        client, CANCEL, {"v": {"id": receivable_id, "reason": "BUSINESS_DECISION"}}, headers
    )
    assert cancelled["data"]["receivableCancel"]["receivable"] == {
        "status": "CANCELLED",
        "cancelReason": "BUSINESS_DECISION",
    }
    listed = await gql(
        client, "{ receivables(status: CANCELLED) { nodes { cancelReason } } }", headers=headers
    )
    assert listed["data"]["receivables"]["nodes"] == [{"cancelReason": "BUSINESS_DECISION"}]
    # REST shows the seed's value for the same row.
    rest = await client.get(
        f"/v1/receivables/{base64.b64decode(receivable_id).decode().split(':')[1]}", headers=headers
    )
    assert rest.json()["cancellation"]["reason"] == "business_decision"


async def test_root_fields_and_mutation_inputs_take_either_id(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    headers, user_id = await _creditor(client, make_platform)
    created = await gql(client, CREATE, {"v": graphql_input(user_id)}, headers)
    relay_id = created["data"]["receivableCreate"]["receivable"]["id"]
    rest_id = base64.b64decode(relay_id).decode().split(":", 1)[1]
    query = "query($id: ID!, $u: ID!) { receivable(id: $id) { id } user(id: $u) { id } }"
    by_rest = await gql(client, query, {"id": rest_id, "u": user_id}, headers)
    by_relay = await gql(client, query, {"id": relay_id, "u": gid("User", user_id)}, headers)
    assert by_rest == by_relay
    assert by_rest["data"]["receivable"] == {"id": relay_id}
    wrong_type = await gql(client, query, {"id": gid("User", rest_id), "u": user_id}, headers)
    assert wrong_type["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    upload_id = (await upload(client, admin_headers, csv_text(3, bad_every=3))).json()["data"]["id"]
    validate = """mutation($v: UploadValidateInput!) { uploadValidate(input: $v) {
      total userErrors { code } } }"""
    for key in (str(upload_id), gid("Upload", upload_id)):
        result = await gql(client, validate, {"v": {"uploadId": key}}, admin_headers)
        assert result["data"]["uploadValidate"]["userErrors"] == []
    listed = await gql(
        client,
        "query($u: ID) { debtors(uploadId: $u, validationStatus: VALID) { nodes { databaseId } } }",
        {"u": str(upload_id)},
        admin_headers,
    )
    debtor_id = listed["data"]["debtors"]["nodes"][0]["databaseId"]
    one = """mutation($v: DebtorValidateInput!) { debtorValidate(input: $v) {
      debtor { databaseId validationStatus } userErrors { code } } }"""
    for key in (str(debtor_id), gid("Debtor", debtor_id)):
        result = await gql(client, one, {"v": {"debtorId": key}}, admin_headers)
        assert result["data"]["debtorValidate"]["debtor"] == {
            "databaseId": debtor_id,
            "validationStatus": "VALID",
        }
    roots = "query($u: ID!, $d: ID!) { upload(id: $u) { status } debtor(id: $d) { status } }"
    found = await gql(client, roots, {"u": str(upload_id), "d": str(debtor_id)}, admin_headers)
    assert found["data"] == {"upload": {"status": "COMPLETED"}, "debtor": {"status": "PENDING"}}
    hidden = await gql(client, roots, {"u": str(upload_id), "d": str(debtor_id)}, headers)
    assert {e["extensions"]["code"] for e in hidden["errors"]} == {"UNAUTHENTICATED"}


async def test_enum_filters_refuse_unknown_values_before_running(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for query in (
        '{ uploads(status: "failed") { totalCount } }',
        "{ uploads(status: DONE) { totalCount } }",
        "{ debtors(riskClass: EXTREME) { totalCount } }",
    ):
        body = await gql(client, query, headers=admin_headers)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
    ok = await gql(
        client,
        "{ debtors(riskClass: HIGH, status: PENDING) { totalCount } }",
        headers=admin_headers,
    )
    assert ok == {"data": {"debtors": {"totalCount": 0}}}
