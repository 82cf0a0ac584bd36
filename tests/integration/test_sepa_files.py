"""pain.008 export (XSD-valid, structured addresses, mandates) and pain.002 import, on REST and
GraphQL, with status reports written by hand from the ISO 20022 structure."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import sepaxml
import xmlschema
from sqlalchemy import func, select, update

from debtgraph.domain.debtors.models import Upload
from debtgraph.domain.payments.models import BillingAttempt
from tests.conftest import gql
from tests.integration.billing_support import (
    NS,
    VOID,
    attempts,
    billing_upload,
    debtors_of,
    gid,
    pain002,
)
from tests.integration.uploads_support import UNAUTH, upload

XSD = Path(sepaxml.__file__).with_name("schemas") / "pain.008.001.10.xsd"


async def _import(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes
) -> httpx.Response:
    return await client.post(
        "/api/admin/billing/pain002",
        files={"file": ("status.xml", data, "application/xml")},
        headers=headers,
    )


async def _count(db: Any) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(BillingAttempt)) or 0)


async def test_export_then_import_settles_the_attempts(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    exported = await client.post(
        f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=admin_headers
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/xml")
    assert "attachment" in exported.headers["content-disposition"]
    xmlschema.XMLSchema(str(XSD)).validate(exported.content.decode())
    root = ET.fromstring(exported.content)
    txs = root.findall(".//p:DrctDbtTxInf", NS)
    assert len(txs) == 5
    first = txs[0]
    assert first.find("p:DrctDbtTx/p:MndtRltdInf/p:MndtId", NS).text.startswith(f"DG-{upload_id}-")
    assert first.find("p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr", NS).text == "2026-11-22"
    address = first.find("p:Dbtr/p:PstlAdr", NS)
    assert [child.tag.split("}")[1] for child in address] == ["StrtNm", "PstCd", "TwnNm", "Ctry"]
    assert root.find(".//p:ReqdColltnDt", NS).text == "2026-11-23"
    msg_id = root.find("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", NS).text

    listed = await attempts(client, admin_headers, upload_id=upload_id)
    assert {a["status"] for a in listed} == {"pending"}
    assert {a["mid_reference"] for a in listed} == {msg_id}
    e2e = {t.find("p:PmtId/p:EndToEndId", NS).text for t in txs}
    assert e2e == {a["transaction_id"] for a in listed}
    # Nothing left to collect: a second export is a clear error, and changes nothing.
    again = await client.post(f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=admin_headers)
    assert again.status_code == 422
    assert again.json()["errors"] == {"upload_id": ["The upload has no debtor ready for billing."]}

    by_debtor = {a["debtor_id"]: a["transaction_id"] for a in listed}
    debtors = await debtors_of(client, admin_headers, upload_id)
    ana, ben = by_debtor[debtors["Ana"]["id"]], by_debtor[debtors["Ben"]["id"]]
    cid = by_debtor[debtors["Cid"]["id"]]

    # Refusals first: each changes nothing.
    for data, code_message in (
        (b"not xml at all", "The file is not XML."),
        (
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">'
            b"<BkToCstmrDbtCdtNtfctn/></Document>",
            "The file is a camt.054.001.08 message, not a pain.002 payment status report.",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><Document/>',
            "The file is not XML.",
        ),
        (
            pain002(msg_id, [(ana, "ACSC", None), ("TXN-NOPE", "RJCT", "AC04")]),
            "The status report names unknown transactions: TXN-NOPE.",
        ),
    ):
        refused = await _import(client, admin_headers, data)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"]["file"] == [code_message]
    assert {a["status"] for a in await attempts(client, admin_headers)} == {"pending"}

    report = pain002(msg_id, [(ana, "ACSC", None), (ben, "RJCT", "AC04"), (cid, "RJCT", "AM04")])
    imported = await _import(client, admin_headers, report)
    assert imported.status_code == 200, imported.text
    data = imported.json()["data"]
    assert (data["settled"], data["approved"], data["declined"]) == (3, 1, 2)
    settled = {a["transaction_id"]: a for a in data["billing_attempts"]}
    assert settled[ana]["unique_id"] == "BANK-0"
    assert (settled[ben]["error_code"], settled[ben]["is_final"]) == ("AC04", True)
    assert settled[cid]["can_retry"] is True
    debtors = await debtors_of(client, admin_headers, upload_id)
    assert debtors["Ana"]["status"] == "recovered"
    assert debtors["Ben"]["status"] == "failed"
    assert debtors["Cid"]["status"] == "processing"

    # The same report again settles nothing twice.
    replay = await _import(client, admin_headers, report)
    assert replay.status_code == 422
    assert replay.json()["errors"]["file"][0].startswith(
        "The status report settles transactions already settled:"
    )
    assert (await debtors_of(client, admin_headers, upload_id))["Ana"]["status"] == "recovered"

    # A pending attempt of an exported file is with the bank already: voiding it here would
    # call failed a debit the bank may still collect, so it is refused and nothing changes.
    dan = next(a for a in listed if a["debtor_id"] == debtors["Dan"]["id"])
    voided = await gql(
        client, VOID, {"v": {"billingAttemptId": gid("BillingAttempt", dan["id"])}}, admin_headers
    )
    assert voided["data"]["billingAttemptVoid"]["userErrors"] == [
        {
            "field": None,
            "code": "invalid_transition",
            "message": "This billing attempt was already sent; its answer settles it.",
        }
    ]
    after = await attempts(client, admin_headers, upload_id=upload_id)
    assert next(a for a in after if a["id"] == dan["id"])["status"] == "pending"
    assert await _count(db) == 5


async def test_graphql_faces_of_the_files(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    body = await gql(
        client,
        """mutation($v: SepaPain008ExportInput!) { sepaPain008Export(input: $v) {
        filename messageId transactions controlSum xml userErrors { field code message } } }""",
        {"v": {"uploadId": gid("Upload", upload_id)}},
        admin_headers,
    )
    payload = body["data"]["sepaPain008Export"]
    assert payload["userErrors"] == []
    assert payload["transactions"] == 5
    assert payload["controlSum"] == "325.82"
    xmlschema.XMLSchema(str(XSD)).validate(payload["xml"])
    listed = await attempts(client, admin_headers, upload_id=upload_id)
    report = pain002(payload["messageId"], [(a["transaction_id"], "ACSC", None) for a in listed])
    operations = json.dumps(
        {
            "query": """mutation($v: SepaPain002ImportInput!) { sepaPain002Import(input: $v) {
            settled approved declined pending userErrors { field code message } } }""",
            "variables": {"v": {"file": None}},
        }
    )
    response = await client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.v.file"]})},
        files={"0": ("status.xml", report, "application/xml")},
        headers=admin_headers,
    )
    imported = response.json()["data"]["sepaPain002Import"]
    assert imported == {"settled": 5, "approved": 5, "declined": 0, "pending": [], "userErrors": []}
    empty = await gql(
        client,
        """mutation($v: SepaPain008ExportInput!) { sepaPain008Export(input: $v) {
        xml userErrors { field code message } } }""",
        {"v": {"uploadId": gid("Upload", upload_id)}},
        admin_headers,
    )
    assert empty["data"]["sepaPain008Export"]["userErrors"][0]["code"] == "nothing_to_bill"


async def test_who_may_use_the_files(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any, db: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    platform = await make_platform()
    key = {"Authorization": f"Bearer {platform.api_key}"}
    for headers in ({}, key):
        exported = await client.post(
            f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=headers
        )
        assert (exported.status_code, exported.json()) == (401, UNAUTH)
        imported = await _import(client, headers, pain002("X", [("TXN-1", "ACSC", None)]))
        assert (imported.status_code, imported.json()) == (401, UNAUTH)
    body = await gql(
        client,
        """mutation($v: SepaPain008ExportInput!) { sepaPain008Export(input: $v) {
        xml userErrors { code } } }""",
        {"v": {"uploadId": gid("Upload", upload_id)}},
        key,
    )
    assert body["data"]["sepaPain008Export"]["userErrors"] == [{"code": "unauthenticated"}]
    missing = await client.post("/api/admin/uploads/999/sepa/pain008", headers=admin_headers)
    assert missing.status_code == 404
    no_file = await client.post("/api/admin/billing/pain002", headers=admin_headers)
    assert no_file.status_code == 422
    assert await _count(db) == 0


# An upload with the CSV's mandate columns, and a row of it up to them.
MANDATE_HEADER = (
    "first_name,last_name,iban,amount,city,postcode,address,country,"
    "mandate_reference,mandate_date\n"
)
ANA = "Ana,Garcia,ES9121000418450200051332,150.00,Madrid,28001,Calle Mayor 1,ES,"


async def test_mandates_from_the_csv_and_an_upload_still_ingesting(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    csv = MANDATE_HEADER + ANA + "MND-2024/001,2024-03-01\n"
    created = await upload(client, admin_headers, csv)
    upload_id = created.json()["data"]["id"]
    # Read by the export: not among the columns the upload says it does not read (review).
    assert created.json()["meta"]["unrecognized_columns"] == []
    exported = await client.post(
        f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=admin_headers
    )
    assert exported.status_code == 200, exported.text
    mandate = ET.fromstring(exported.content).find(".//p:MndtRltdInf", NS)
    assert mandate.find("p:MndtId", NS).text == "MND-2024/001"
    assert mandate.find("p:DtOfSgntr", NS).text == "2024-03-01"

    second = await billing_upload(client, admin_headers)
    async with db() as session:
        await session.execute(update(Upload).where(Upload.id == second).values(status="processing"))
        await session.commit()
    refused = await client.post(f"/api/admin/uploads/{second}/sepa/pain008", headers=admin_headers)
    assert (refused.status_code, refused.json()["message"]) == (
        422,
        "Upload is still processing. Please wait.",
    )
    assert await _count(db) == 1


async def test_mandates_a_bank_refuses_refuse_the_export_with_nothing_changed(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    # Outside review: both were written into the file, which the bank then refused.
    luis = "Luis,Perez,NL91ABNA0417164300,90.00,Bilbao,48001,Calle Mayor 3,ES,"
    for rows, message in [
        (
            [ANA + "M-1,2099-01-01"],
            "has a mandate signed after the file is made (2099-01-01 > ",
        ),
        (
            [ANA + "M-1,2020-01-01", luis + "m-1,2021-06-30"],
            "have the same mandate reference 'm-1': a one-off mandate collects once.",
        ),
    ]:
        created = await upload(client, admin_headers, MANDATE_HEADER + "\n".join(rows) + "\n")
        upload_id = created.json()["data"]["id"]
        refused = await client.post(
            f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=admin_headers
        )
        assert refused.status_code == 422, refused.text
        assert message in refused.json()["message"]
        assert await _count(db) == 0
    # Each under its own reference, signed before, they export.
    fine = await upload(client, admin_headers, MANDATE_HEADER + ANA + "M-1,2020-01-01\n")
    upload_id = fine.json()["data"]["id"]
    exported = await client.post(
        f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=admin_headers
    )
    assert exported.status_code == 200, exported.text


async def exported_file(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The MsgId of the pain.008 file exported for a fresh billing upload."""
    upload_id = await billing_upload(client, headers)
    exported = await client.post(f"/api/admin/uploads/{upload_id}/sepa/pain008", headers=headers)
    assert exported.status_code == 200, exported.text
    return str(
        ET.fromstring(exported.content).find("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", NS).text
    )


async def test_bank_references_too_long_or_repeated_are_refused_with_nothing_changed(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    msg_id = await exported_file(client, admin_headers)
    listed = await attempts(client, admin_headers)
    ana, ben, cid = (a["transaction_id"] for a in listed[:3])
    long_ref = "R" * 36  # Max35Text; over 64 it used to be a database error (500)
    for report, message in (
        (
            pain002(msg_id, [(ana, "ACSC", None), (ben, "ACSC", None)], ["OK-1", long_ref]),
            f"A bank reference (unique_id) must not exceed 35 characters: {ben}.",
        ),
        (
            pain002(msg_id, [(ana, "ACSC", None), (ben, "ACSC", None)], ["SAME", "SAME"]),
            "A bank reference (unique_id) names more than one billing attempt: SAME.",
        ),
    ):
        refused = await _import(client, admin_headers, report)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == {"file": [message]}
    assert {a["status"] for a in await attempts(client, admin_headers)} == {"pending"}
    # GraphQL: the same refusal as a userError on file.
    operations = json.dumps(
        {
            "query": """mutation($v: SepaPain002ImportInput!) { sepaPain002Import(input: $v) {
            settled userErrors { field code message } } }""",
            "variables": {"v": {"file": None}},
        }
    )
    response = await client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.v.file"]})},
        files={"0": ("status.xml", pain002(msg_id, [(ana, "ACSC", None)], [long_ref]), "x/xml")},
        headers=admin_headers,
    )
    assert response.json()["data"]["sepaPain002Import"] == {
        "settled": 0,
        "userErrors": [
            {
                "field": "file",
                "code": "reference_too_long",
                "message": f"A bank reference (unique_id) must not exceed 35 characters: {ana}.",
            }
        ],
    }
    settled = await _import(client, admin_headers, pain002(msg_id, [(ana, "ACSC", None)], ["R-1"]))
    assert settled.status_code == 200, settled.text
    # Against the database: another attempt already keeps R-1.
    again = await _import(client, admin_headers, pain002(msg_id, [(ben, "ACSC", None)], ["R-1"]))
    assert again.status_code == 422, again.text
    assert again.json()["errors"] == {
        "file": ["A bank reference (unique_id) names more than one billing attempt: R-1."]
    }
    rows = {a["transaction_id"]: a for a in await attempts(client, admin_headers)}
    assert (rows[ana]["status"], rows[ana]["unique_id"]) == ("approved", "R-1")
    assert (rows[ben]["status"], rows[ben]["unique_id"]) == ("pending", None)
    assert (rows[cid]["status"], rows[cid]["unique_id"]) == ("pending", None)


def _with_amounts(report: bytes, amounts: dict[str, str]) -> bytes:
    """The report with an OrgnlTxRef amount for some of its transactions."""
    text = report.decode()
    for e2e, amount in amounts.items():
        text = text.replace(
            f"<OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>",
            f"<OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><OrgnlTxRef><Amt>"
            f'<InstdAmt Ccy="EUR">{amount}</InstdAmt></Amt></OrgnlTxRef>',
        )
    return text.encode()


async def test_a_status_report_settles_only_what_the_file_it_answers_sent(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # End-to-end ids alone were the link: a report naming another file's message id, an
    # attempt never sent (a retry not yet exported), another amount, or a transaction both
    # rejected and pending, settled what it named.
    msg_id = await exported_file(client, admin_headers)
    listed = await attempts(client, admin_headers)
    first, twice = listed[0], listed[1]["transaction_id"]
    ok = pain002(msg_id, [(first["transaction_id"], "ACSC", None)])
    no_original = ok.replace(f"<OrgnlMsgId>{msg_id}</OrgnlMsgId>".encode(), b"")
    refusals = [
        (
            pain002("NOT-OUR-FILE-123", [(first["transaction_id"], "ACSC", None)]),
            f"The status report names unknown transactions: {first['transaction_id']}.",
        ),
        (
            no_original,
            "The status report names no original message (OrgnlMsgId): it must answer one "
            "of the pain.008 files exported here.",
        ),
        (
            _with_amounts(ok, {first["transaction_id"]: "1.00"}),
            "The status report's amounts differ from those collected for: "
            f"{first['transaction_id']}.",
        ),
        (
            pain002(
                msg_id,
                [
                    (twice, "RJCT", "MS02"),
                    (twice, "PDNG", None),
                ],
            ),
            f"The status report names transactions more than once: {twice}.",
        ),
    ]
    for data, message in refusals:
        refused = await _import(client, admin_headers, data)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"]["file"] == [message]
    assert {a["status"] for a in await attempts(client, admin_headers)} == {"pending"}
    # The right amount, and the file's own id: settled.
    amount = f"{Decimal(str(first['amount'])):.2f}"
    settled = await _import(
        client, admin_headers, _with_amounts(ok, {first["transaction_id"]: amount})
    )
    assert settled.status_code == 200, settled.text
    # Left pending once settled: refused, as settling it again is.
    pending = pain002(msg_id, [(first["transaction_id"], "PDNG", None)])
    refused = await _import(client, admin_headers, pending)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"]["file"] == [
        f"The status report leaves pending transactions already settled: {first['transaction_id']}."
    ]


async def test_a_status_report_naming_more_transactions_than_a_statement_binds_is_answered(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # 40,000 ids in one IN list passed PostgreSQL's 32,767 parameters: a 500.
    msg_id = await exported_file(client, admin_headers)
    many = pain002(msg_id, [(f"TXN-{i:016d}", "ACSC", None) for i in range(33_000)])
    refused = await _import(client, admin_headers, many)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"]["file"][0].startswith(
        "The status report names unknown transactions: TXN-0000000000000000, "
    )
    assert refused.json()["errors"]["file"][0].endswith(" and 32980 more.")
