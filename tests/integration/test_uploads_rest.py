"""POST/GET /api/admin/uploads*: stage A + B for small files, the documented shapes."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from debtgraph.domain.debtors.models import Debtor
from tests.integration.test_mutation_access import changed_tables, snapshot
from tests.integration.uploads_support import UNAUTH, counts, csv_text, upload

UPLOAD_KEYS = {
    "id",
    "filename",
    "original_filename",
    "file_size",
    "mime_type",
    "status",
    "total_records",
    "processed_records",
    "failed_records",
    "success_rate",
    "processing_started_at",
    "processing_completed_at",
    "created_at",
    "updated_at",
    "debtors_count",
}


async def test_the_stored_type_is_the_servers_verdict_not_the_clients_claim(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for claimed in ("application/octet-stream", "application/vnd.ms-excel", "image/png"):
        other = await upload(client, admin_headers, csv_text(1), content_type=claimed)
        assert other.status_code == 201, other.text
        assert other.json()["data"]["mime_type"] == "text/csv"


async def test_small_upload_is_stored_and_validated_in_the_request(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    content = csv_text(10, bad_every=5)
    response = await upload(client, admin_headers, content)
    assert response.status_code == 201, response.text
    body = response.json()
    data, meta = body["data"], body["meta"]
    assert set(data) == UPLOAD_KEYS
    assert data["filename"].endswith(".csv")
    assert data["filename"] != "december_debtors.csv"
    assert data["original_filename"] == "december_debtors.csv"
    assert data["mime_type"] == "text/csv"
    assert data["file_size"] == len(content.encode())
    assert data["status"] == "completed"
    assert data["total_records"] == 10
    assert data["processed_records"] == 8
    assert data["failed_records"] == 2
    assert data["success_rate"] == 80.0
    assert data["debtors_count"] == 10
    assert data["processing_completed_at"] == "2026-11-22T12:00:00Z"
    assert meta["queued"] is False
    assert meta["created"] == 8
    assert meta["failed"] == 2
    assert [e["row"] for e in meta["errors"]] == [2, 7]
    assert meta["errors"][0]["message"] == "IBAN is invalid"
    assert meta["errors"][0]["data"]["first_name"] == "Bad0"
    async with db() as session:
        rows = (await session.scalars(select(Debtor).order_by(Debtor.row_number))).all()
    assert len(rows) == 10
    assert rows[1].raw_data["custom_field"] == "extra1"
    assert rows[1].validation_status == "valid"
    assert rows[0].validation_errors == ["IBAN is invalid"]


async def test_upload_requires_an_operator_and_changes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any, db: Any
) -> None:
    platform = await make_platform()
    # An upload that exists (its last row invalid), so each probe names something it could
    # read or change.
    existing = await upload(client, admin_headers, csv_text(3, bad_every=2))
    assert existing.status_code == 201, existing.text
    upload_id = existing.json()["data"]["id"]
    before = await snapshot(db)
    for headers in ({}, {"Authorization": f"Bearer {platform.api_key}"}):
        response = await upload(client, headers, csv_text(3))
        assert response.status_code == 401
        assert response.json() == UNAUTH
        for path in (
            "/api/admin/uploads",
            f"/api/admin/uploads/{upload_id}",
            f"/api/admin/uploads/{upload_id}/status",
            f"/api/admin/uploads/{upload_id}/debtors",
            f"/api/admin/uploads/{upload_id}/validation-stats",
        ):
            denied = await client.get(path, headers=headers)
            assert denied.status_code == 401, path
            assert denied.json() == UNAUTH
        validate = await client.post(f"/api/admin/uploads/{upload_id}/validate", headers=headers)
        assert (validate.status_code, validate.json()) == (401, UNAUTH)
    assert await counts(db) == (1, 3)
    assert changed_tables(before, await snapshot(db)) == []
    # The operator's validation of the same upload is a write: the probes could have seen one.
    validated = await client.post(f"/api/admin/uploads/{upload_id}/validate", headers=admin_headers)
    assert validated.status_code == 200, validated.text
    assert changed_tables(before, await snapshot(db))
