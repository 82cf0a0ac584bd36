"""Uploads and calls shared by the billing and SEPA file tests."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.conftest import gql
from tests.integration.uploads_support import upload

HEADER = "first_name,last_name,iban,amount,city,postcode,address,country"
# (name, IBAN, amount): what the sandbox answers each is in domain/payments/gateways.py.
ROWS = [
    ("Ana Garcia", "ES9121000418450200051332", "150.00"),  # approved
    ("Ben Closed", "DE62370400440532013001", "80.00"),  # AC04: final decline
    ("Cid Later", "DE89370400440532013000", "40.92"),  # AM04, then approved on the retry
    ("Dan Broke", "NL91ABNA0417164300", "33.91"),  # AM04 on every attempt
    ("Eve Error", "FR1420041010050500013M02606", "20.99"),  # gateway error: retried
]

START = """mutation($v: BillingStartInput!) { billingStart(input: $v) {
  started billingAttempts { databaseId status } userErrors { field code message } } }"""
VOID = """mutation($v: BillingAttemptInput!) { billingAttemptVoid(input: $v) {
  billingAttempt { databaseId status isFinal } userErrors { field code message } } }"""
# The namespace of the pain.008 files the export writes.
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.10"}
RETRY = """mutation($v: BillingAttemptInput!) { billingAttemptRetry(input: $v) {
  billingAttempt { databaseId status attemptNumber } userErrors { field code message } } }"""


def gid(type_name: str, key: object) -> str:
    """A Relay global id."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def billing_csv(rows: list[tuple[str, str, str]] | None = None) -> str:
    lines = [HEADER]
    for i, (name, iban, amount) in enumerate(rows or ROWS):
        first, last = name.split(" ", 1)
        lines.append(f"{first},{last},{iban},{amount},Madrid,28001,Calle Mayor {i + 1},ES")
    return "\n".join(lines) + "\n"


async def billing_upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    rows: list[tuple[str, str, str]] | None = None,
) -> int:
    response = await upload(client, headers, billing_csv(rows))
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def start(client: httpx.AsyncClient, headers: dict[str, str], upload_id: int) -> Any:
    body = await gql(client, START, {"v": {"uploadId": gid("Upload", upload_id)}}, headers)
    return body


async def attempts(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/admin/billing-attempts", params={"per_page": 100, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def debtors_of(
    client: httpx.AsyncClient, headers: dict[str, str], upload_id: int
) -> dict[str, dict[str, Any]]:
    response = await client.get(
        "/api/admin/debtors", params={"upload_id": upload_id, "per_page": 100}, headers=headers
    )
    return {d["first_name"]: d for d in response.json()["data"]}


def pain002(
    original_msg_id: str,
    transactions: list[tuple[str, str, str | None]],
    refs: list[str] | None = None,
) -> bytes:
    """A pain.002.001.10 status report, as a bank writes it (AcctSvcrRef ``refs`` if given)."""
    txs = "".join(
        f"""<TxInfAndSts><StsId>STS-{i}</StsId><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>
        <TxSts>{status}</TxSts>"""
        + (f"<StsRsnInf><Rsn><Cd>{reason}</Cd></Rsn></StsRsnInf>" if reason else "")
        + f"<AcctSvcrRef>{refs[i] if refs else f'BANK-{i}'}</AcctSvcrRef></TxInfAndSts>"
        for i, (e2e, status, reason) in enumerate(transactions)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BANK-RPT-1</MsgId><CreDtTm>2026-11-23T09:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts><OrgnlMsgId>{original_msg_id}</OrgnlMsgId>
      <OrgnlMsgNmId>pain.008.001.10</OrgnlMsgNmId></OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts><OrgnlPmtInfId>PMT-1</OrgnlPmtInfId>{txs}</OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>""".encode()
