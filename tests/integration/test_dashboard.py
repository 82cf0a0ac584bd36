"""GET /api/admin/dashboard exactly as documented, and the GraphQL dashboard."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from debtgraph.domain.debtors.models import Debtor
from tests.conftest import gql
from tests.integration.uploads_support import csv_text, upload


async def test_dashboard_shape_and_figures(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    empty = (await client.get("/api/admin/dashboard", headers=admin_headers)).json()["data"]
    assert empty == {
        "uploads": {"total": 0, "pending": 0, "processing": 0, "completed": 0, "failed": 0},
        "debtors": {
            "total": 0,
            "by_status": {"pending": 0, "processing": 0, "recovered": 0, "failed": 0},
            "by_country": {},
        },
        "recent_activity": {"latest_uploads": [], "latest_debtors": []},
    }
    for _ in range(6):
        await upload(client, admin_headers, csv_text(5))
    async with db() as session:
        await session.execute(update(Debtor).where(Debtor.id <= 3).values(status="recovered"))
        await session.commit()
    data = (await client.get("/api/admin/dashboard", headers=admin_headers)).json()["data"]
    assert data["uploads"] == {
        "total": 6, "pending": 0, "processing": 0, "completed": 6, "failed": 0
    }  # fmt: skip
    assert data["debtors"]["total"] == 30
    assert data["debtors"]["by_status"] == {
        "pending": 27, "processing": 0, "recovered": 3, "failed": 0
    }  # fmt: skip
    assert data["debtors"]["by_country"] == {"DE": 6, "ES": 6, "FR": 6, "IT": 6, "NL": 6}
    latest = data["recent_activity"]
    assert [u["id"] for u in latest["latest_uploads"]] == [6, 5, 4, 3, 2]
    assert latest["latest_uploads"][0]["debtors_count"] == 5
    assert [d["id"] for d in latest["latest_debtors"]] == [30, 29, 28, 27, 26]

    gql_data = await gql(
        client,
        "{ dashboard { uploads { total completed } debtors { total byStatus { recovered }"
        " byCountry { country count } } latestUploads { databaseId debtorsCount }"
        " latestDebtors { databaseId } } }",
        headers=admin_headers,
    )
    dashboard = gql_data["data"]["dashboard"]
    assert dashboard["uploads"] == {"total": 6, "completed": 6}
    assert dashboard["debtors"]["byStatus"] == {"recovered": 3}
    assert dashboard["debtors"]["byCountry"][0] == {"country": "DE", "count": 6}
    assert [u["databaseId"] for u in dashboard["latestUploads"]] == [6, 5, 4, 3, 2]


async def test_graphql_dashboard_is_hidden_from_non_operators(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    platform = await make_platform()
    body = await gql(
        client,
        "{ dashboard { uploads { total } } }",
        headers={"Authorization": f"Bearer {platform.api_key}"},
    )
    assert body["data"] is None or body["data"]["dashboard"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
