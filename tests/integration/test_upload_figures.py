"""An upload's derived figures (progress, success_rate, is_complete) are one rule: both faces
show the same numbers, two decimals rounded half-even (PRODUCT.md §6)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from debtgraph.domain.debtors.models import Upload, UploadStatus
from tests.conftest import gql

NODE = """query($id: ID!) { node(id: $id) { ... on Upload {
  progress successRate isComplete processedRecords failedRecords totalRecords } } }"""


async def _seed(
    db: async_sessionmaker[AsyncSession], status: str, total: int, processed: int, failed: int
) -> int:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with db() as session:
        row = Upload(
            filename="x.csv",
            original_filename="x.csv",
            file_size=1,
            mime_type="text/csv",
            status=status,
            total_records=total,
            processed_records=processed,
            failed_records=failed,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.commit()
        return row.id


@pytest.mark.parametrize(
    ("status", "total", "processed", "failed", "rate", "progress", "complete"),
    [
        # 203 / 20,000 = 1.015 exactly: half-even gives 1.02 (float round() gave 1.01).
        (UploadStatus.COMPLETED, 20_000, 203, 19_797, 1.02, 100.0, True),
        # 1 / 4,000 = 0.025 exactly: half-even gives 0.02 (float round() gave 0.03).
        (UploadStatus.PROCESSING, 4_000, 1, 0, 0.02, 0.02, False),
        (UploadStatus.FAILED, 0, 0, 0, 0.0, 0.0, True),
    ],
)
async def test_both_faces_show_the_same_upload_figures(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: async_sessionmaker[AsyncSession],
    status: str,
    total: int,
    processed: int,
    failed: int,
    rate: float,
    progress: float,
    complete: bool,
) -> None:
    key = await _seed(db, status, total, processed, failed)
    rest = (await client.get(f"/api/admin/uploads/{key}", headers=admin_headers)).json()["data"]
    state = (await client.get(f"/api/admin/uploads/{key}/status", headers=admin_headers)).json()
    node_id = base64.b64encode(f"Upload:{key}".encode()).decode()
    body: dict[str, Any] = await gql(client, NODE, {"id": node_id}, admin_headers)
    assert "errors" not in body, body
    graph = body["data"]["node"]
    assert rest["success_rate"] == graph["successRate"] == rate
    assert state["data"]["progress"] == graph["progress"] == progress
    assert state["data"]["is_complete"] is graph["isComplete"] is complete
