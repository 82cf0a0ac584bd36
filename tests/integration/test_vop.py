"""Verification of payee end to end with the sandbox: every outcome, the log list, the graph."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, text, update

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.debtors.models import Debtor
from debtgraph.domain.payments.models import VopLog
from debtgraph.jobs.vop import check_upload_in_batches
from tests.conftest import gql
from tests.integration.uploads_support import HEADER, UNAUTH, csv_text, upload

# (first name, iban, amount, country) → (result, epc_code, score, risk_class, name_matched)
ROWS = {
    "Verified": ("ES9121000418450200051332", "150.00", "ES"),
    "Close": ("ES8001822370440201234567", "150.00", "ES"),
    "Nomatch": ("ES1600491500040511111111", "150.00", "ES"),
    "Notpossible": ("ES1600810200220000000123", "150.00", "ES"),
    "Closed": ("FR7630004000000000000000151", "150.00", "FR"),
    "Unknownbank": ("ES8099990001450000000001", "150.00", "ES"),
    "Invalid": ("ES00INVALID", "150.00", "ES"),
    "Large": ("DE89370400440532013000", "2000.00", "DE"),
    "Abroad": ("DE89370400440532013000", "150.00", "ES"),
}
EXPECTED = {
    "Verified": ("verified", "MTCH", 90, "low", True),
    "Close": ("likely_verified", "CMTC", 70, "medium", True),
    "Nomatch": ("mismatch", "NMTC", 35, "high", False),
    "Notpossible": ("inconclusive", "NOAP", 55, "medium", False),
    "Closed": ("rejected", None, 10, "high", False),
    "Unknownbank": ("rejected", None, 5, "high", False),
    "Invalid": ("rejected", None, 0, "high", False),
    "Large": ("verified", "MTCH", 90, "medium", True),
    # The debtor lives in Spain, the account is German: no country bonus.
    "Abroad": ("verified", "MTCH", 80, "low", True),
}
LOG_KEYS = {
    "id", "debtor_id", "upload_id", "iban_masked", "iban_valid", "bank_identified", "bank_name",
    "bic", "country", "vop_score", "score_label", "result", "is_positive", "is_negative",
    "created_at",
}  # fmt: skip


def vop_csv() -> str:
    lines = [HEADER]
    for n, (first, (iban, amount, country)) in enumerate(ROWS.items()):
        lines.append(f"{first},Rodriguez,{iban},{amount},Madrid,28001,Calle Mayor {n},{country},,")
    return "\n".join(lines) + "\n"


async def _uploaded(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await upload(client, headers, vop_csv())
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


async def _debtors(db: Any) -> dict[str, Debtor]:
    async with db() as session:
        rows = (await session.scalars(select(Debtor))).all()
    return {d.first_name: d for d in rows if d.first_name}


async def test_every_sandbox_outcome_on_upload(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    upload_id = await _uploaded(client, admin_headers)
    debtors = await _debtors(db)
    async with db() as session:
        logs = {log.debtor_id: log for log in (await session.scalars(select(VopLog))).all()}
    assert len(logs) == len(ROWS)  # one log per check, every debtor with an IBAN
    for name, (result, epc, score, risk, matched) in EXPECTED.items():
        debtor = debtors[name]
        log = logs[debtor.id]
        assert (log.result, log.epc_code, log.vop_score) == (result, epc, score), name
        assert (debtor.risk_class, debtor.name_matched) == (risk, matched), name
        assert log.upload_id == upload_id
    assert debtors["Invalid"].iban_valid is False
    assert logs[debtors["Invalid"].id].iban_valid is False
    assert logs[debtors["Invalid"].id].bank_identified is False
    close = logs[debtors["Close"].id]
    assert close.provider_name
    assert close.provider_name != "Close Rodriguez"
    assert logs[debtors["Verified"].id].bank_name
    assert logs[debtors["Verified"].id].country == "ES"
    # Billable (ready for sync): valid, pending and not high risk.
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    ready = {"Verified", "Close", "Notpossible", "Large", "Abroad"}
    data = stats.json()["data"]
    assert data["ready_for_sync"] == len(ready)
    # Only the invalid IBAN fails validation; a VOP verdict never changes validation_status.
    assert (data["valid"], data["invalid"]) == (len(ROWS) - 1, 1)
    assert debtors["Unknownbank"].iban_valid is True
    # The whole-upload run writes no event per debtor (the checks ride along the ingestion).
    async with db() as session:
        types = list((await session.scalars(select(Event.type).order_by(Event.id))).all())
    assert types == ["upload.completed"]


async def test_vop_log_list_matches_the_seed_and_filters(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    upload_id = await _uploaded(client, admin_headers)
    other = await _uploaded(client, admin_headers)
    listed = await client.get("/api/admin/vop-logs", headers=admin_headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["meta"] == {
        "current_page": 1, "per_page": 20, "total": 2 * len(ROWS), "last_page": 1,
    }  # fmt: skip
    assert all(set(item) == LOG_KEYS for item in body["data"])
    ids = [item["id"] for item in body["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first

    async def total(query: str) -> int:
        response = await client.get(f"/api/admin/vop-logs?{query}", headers=admin_headers)
        assert response.status_code == 200, response.text
        return int(response.json()["meta"]["total"])

    assert await total(f"upload_id={upload_id}") == len(ROWS)
    assert await total(f"upload_id={other}&result=rejected") == 3
    assert await total("result=likely_verified") == 2
    # The common result, which the result index leaves out, is listed all the same.
    assert await total("result=verified") == 6
    assert await total("upload_id=999999") == 0
    debtor_id = (await _debtors(db))["Nomatch"].id
    one = await client.get(f"/api/admin/vop-logs?debtor_id={debtor_id}", headers=admin_headers)
    (item,) = one.json()["data"]
    assert item["result"] == "mismatch"
    assert item["score_label"] == "low"
    assert (item["is_positive"], item["is_negative"]) == (False, True)
    assert item["iban_masked"] == "ES16****1111"
    page = await client.get("/api/admin/vop-logs?per_page=5&page=2", headers=admin_headers)
    assert page.json()["meta"] == {"current_page": 2, "per_page": 5, "total": 18, "last_page": 4}


async def test_the_result_filter_names_its_value_for_the_partial_index(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, sql_counter: Any
) -> None:
    """``ix_vop_logs_result_id`` leaves "verified" out: only a statement that names the result
    lets PostgreSQL prove the index holds its rows, a generic plan over a parameter would not."""
    await _uploaded(client, admin_headers)
    with sql_counter:
        listed = await client.get("/api/admin/vop-logs?result=mismatch", headers=admin_headers)
        graph = await gql(
            client,
            "{ vopLogs(first: 5, result: MISMATCH) { totalCount nodes { result } } }",
            headers=admin_headers,
        )
    assert listed.json()["meta"]["total"] == 1
    assert graph["data"]["vopLogs"]["totalCount"] == 1
    on_logs = [sql for sql in sql_counter.statements if "FROM vop_logs" in sql]
    # The page and its count, on each face.
    assert len(on_logs) == 4
    assert all("vop_logs.result = 'mismatch'" in sql for sql in on_logs), on_logs
    async with db() as session:
        if session.bind.dialect.name != "postgresql":
            return
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join((await session.execute(text(f"EXPLAIN {on_logs[0]}"))).scalars().all())
    assert "ix_vop_logs_result_id" in plan, plan


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("result=bogus", "result"),
        ("upload_id=abc", "upload_id"),
        ("debtor_id=1.5", "debtor_id"),
        ("debtor_id=99999999999999999999999", "debtor_id"),
        ("per_page=0", "per_page"),
    ],
)
async def test_bad_filters_are_422_naming_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], query: str, field: str
) -> None:
    response = await client.get(f"/api/admin/vop-logs?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert field in response.json()["errors"]


@pytest.mark.parametrize("query", ["debtor_id=-1", "upload_id=-7", "debtor_id=0"])
async def test_an_id_that_names_no_row_lists_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], query: str
) -> None:
    # An integer, as Laravel's rule reads it, that no row has: an empty list, as an unknown id.
    for path in ("/api/admin/vop-logs", "/api/admin/billing-attempts"):
        response = await client.get(f"{path}?{query}", headers=admin_headers)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["data"] == []


async def test_only_the_operator_lists_logs(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any
) -> None:
    await _uploaded(client, admin_headers)
    anonymous = await client.get("/api/admin/vop-logs")
    assert (anonymous.status_code, anonymous.json()) == (401, UNAUTH)
    platform = await make_platform()
    as_platform = await client.get(
        "/api/admin/vop-logs", headers={"Authorization": f"Bearer {platform.api_key}"}
    )
    assert (as_platform.status_code, as_platform.json()) == (401, UNAUTH)
    # Checked before the filters are read: a bad filter from a stranger is still a 401.
    assert (await client.get("/api/admin/vop-logs?result=bogus")).status_code == 401
    bogus = await client.get(
        "/api/admin/vop-logs", headers={"Authorization": "Bearer 1|" + "x" * 40}
    )
    assert bogus.status_code == 401


async def test_validate_and_put_check_one_debtor_again(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    await _uploaded(client, admin_headers)
    debtor = (await _debtors(db))["Nomatch"]
    validated = await client.post(f"/api/admin/debtors/{debtor.id}/validate", headers=admin_headers)
    assert validated.status_code == 200
    put = await client.put(
        f"/api/admin/debtors/{debtor.id}",
        json={"raw_data": {"iban": "ES9121000418450200051332", "first_name": "Nomatch"}},
        headers=admin_headers,
    )
    assert put.status_code == 200, put.text
    assert (put.json()["data"]["risk_class"], put.json()["data"]["name_matched"]) == ("low", True)
    async with db() as session:
        results = (
            await session.scalars(
                select(VopLog.result).where(VopLog.debtor_id == debtor.id).order_by(VopLog.id)
            )
        ).all()
        created = (
            await session.scalars(
                select(Event).where(Event.type == "vop_log.created").order_by(Event.id)
            )
        ).all()
    # The upload's check, then one per validate and one per PUT.
    assert list(results) == ["mismatch", "mismatch", "verified"]
    assert [e.data["object"]["result"] for e in created] == ["mismatch", "verified"]
    assert all(e.data["object"]["debtor_id"] == debtor.id for e in created)


async def test_invalid_put_writes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    await _uploaded(client, admin_headers)
    debtor = (await _debtors(db))["Verified"]
    bad = await client.put(
        f"/api/admin/debtors/{debtor.id}", json={"raw_data": "nope"}, headers=admin_headers
    )
    assert bad.status_code == 422
    anonymous = await client.post(f"/api/admin/debtors/{debtor.id}/validate")
    assert anonymous.status_code == 401
    async with db() as session:
        count = await session.scalar(
            select(func.count()).select_from(VopLog).where(VopLog.debtor_id == debtor.id)
        )
    assert count == 1


LOGS_QUERY = """
query($result: VopResult, $uploadId: ID, $debtorId: ID) {
  vopLogs(result: $result, uploadId: $uploadId, debtorId: $debtorId, first: 50) {
    totalCount
    nodes { id databaseId result epcCode vopScore scoreLabel isPositive isNegative providerName
            debtor { firstName riskClass nameMatched vopLogs { nodes { result } } }
            upload { databaseId vopLogs(result: REJECTED) { totalCount } } }
  }
}
"""


async def test_graph_vop_logs(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any
) -> None:
    upload_id = await _uploaded(client, admin_headers)
    body = await gql(client, LOGS_QUERY, {"result": "LIKELY_VERIFIED"}, admin_headers)
    assert "errors" not in body, body
    connection = body["data"]["vopLogs"]
    (node,) = connection["nodes"]
    assert connection["totalCount"] == 1
    assert (node["epcCode"], node["vopScore"], node["scoreLabel"]) == ("CMTC", 70, "MEDIUM")
    assert node["isPositive"] is True
    assert node["providerName"]
    assert node["debtor"] == {
        "firstName": "Close",
        "riskClass": "MEDIUM",
        "nameMatched": True,
        "vopLogs": {"nodes": [{"result": "LIKELY_VERIFIED"}]},
    }
    assert node["upload"] == {"databaseId": upload_id, "vopLogs": {"totalCount": 3}}
    again = await gql(client, "query($id: ID!) { node(id: $id) { ... on VopLog { result } } }",
                      {"id": node["id"]}, admin_headers)  # fmt: skip
    assert again["data"]["node"] == {"result": "LIKELY_VERIFIED"}
    bad = await gql(client, LOGS_QUERY, {"result": "bogus"}, admin_headers)
    assert bad["data"] is None or bad["data"]["vopLogs"] is None
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    anonymous = await gql(client, LOGS_QUERY, {})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    platform = await make_platform()
    refused = await gql(client, LOGS_QUERY, {}, {"Authorization": f"Bearer {platform.api_key}"})
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    hidden = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": node["id"]})
    assert hidden["data"]["node"] is None


DASHBOARD = """
{ dashboard { debtors { total readyForSync byRiskClass { low medium high unchecked } } } }
"""


async def test_dashboard_carries_the_vop_figures(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    upload_id = await _uploaded(client, admin_headers)
    # A row without an IBAN is never checked.
    extra = HEADER + "\nNoiban,Rodriguez,,150.00,Madrid,28001,Calle Mayor 9,ES,,\n"
    assert (await upload(client, admin_headers, extra)).status_code == 201
    body = await gql(client, DASHBOARD, headers=admin_headers)
    debtors = body["data"]["dashboard"]["debtors"]
    assert debtors["byRiskClass"] == {"low": 2, "medium": 3, "high": 4, "unchecked": 1}
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    # The same rule as the upload's ready_for_sync (the row without an IBAN is invalid).
    assert debtors["readyForSync"] == stats.json()["data"]["ready_for_sync"] == 5
    assert debtors["total"] == len(ROWS) + 1
    anonymous = await gql(client, DASHBOARD)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def _unchecked(db: Any, upload_id: int) -> None:
    async with db() as session:
        await session.execute(delete(VopLog).where(VopLog.upload_id == upload_id))
        await session.execute(
            update(Debtor).where(Debtor.upload_id == upload_id).values(risk_class=None)
        )
        await session.commit()


async def test_stored_rows_are_checked_in_a_fixed_number_of_statements(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, runtime: Any,
    sql_counter: Any,
) -> None:  # fmt: skip
    counts = []
    for rows in (5, 40):
        response = await upload(client, admin_headers, csv_text(rows, bad_every=4))
        upload_id = response.json()["data"]["id"]
        await _unchecked(db, upload_id)
        with sql_counter:
            assert await check_upload_in_batches(runtime.services, upload_id) == rows
        counts.append(sql_counter.count)
        async with db() as session:
            logged = await session.scalar(
                select(func.count()).select_from(VopLog).where(VopLog.upload_id == upload_id)
            )
        assert logged == rows
    # Eight times the rows, the same statements: no per-row round trip.
    assert counts[0] == counts[1]
