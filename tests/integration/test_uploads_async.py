"""Uploads over 100 rows: 202, then a job stores and validates them in chunks, resumably."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from sqlalchemy import func, select

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors.models import Debtor, Upload
from debtgraph.jobs import uploads as upload_jobs
from debtgraph.jobs.registry import TASKS, RetryLater
from tests.integration.uploads_support import csv_text, queued_upload, upload


async def _events(db: Any) -> list[str]:
    async with db() as session:
        return list((await session.scalars(select(Event.type).order_by(Event.id))).all())


async def test_large_upload_is_queued_then_ingested_in_chunks(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    drain: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 40)
    response = await upload(client, admin_headers, csv_text(150, bad_every=5))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["meta"] == {
        "queued": True,
        "message": "File queued for processing. Check status for updates.",
        "unrecognized_columns": ["custom_field"],
    }
    assert body["data"]["status"] == "pending"
    assert body["data"]["total_records"] == 150
    upload_id = body["data"]["id"]
    await drain()
    status = await client.get(f"/api/admin/uploads/{upload_id}/status", headers=admin_headers)
    assert status.json() == {
        "data": {
            "id": upload_id,
            "status": "completed",
            "total_records": 150,
            "processed_records": 120,
            "failed_records": 30,
            "progress": 100.0,
            "is_complete": True,
        }
    }
    types = await _events(db)
    # One event when the job starts, one per chunk of 40 rows, one at the end (the VOP phase
    # runs inside each chunk: no event of its own).
    assert types == ["upload.progress"] * 5 + ["upload.completed"]
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    assert stats.json()["data"] == {
        "total": 150,
        "valid": 120,
        "invalid": 30,
        "pending": 0,
        "blacklisted": 0,
        "ready_for_sync": 120,
    }


async def _arrange_upload(db: Any, clock: Any, tmp_path: Path, rows: int) -> int:
    return await queued_upload(db, clock, tmp_path / "stored.csv", rows, 10**6, ranged=False)


async def _debtor_rows(db: Any, upload_id: int) -> tuple[int, int]:
    async with db() as session:
        total = await session.scalar(
            select(func.count()).select_from(Debtor).where(Debtor.upload_id == upload_id)
        )
        distinct = await session.scalar(
            select(func.count(func.distinct(Debtor.row_number))).where(
                Debtor.upload_id == upload_id
            )
        )
    return int(total or 0), int(distinct or 0)


async def test_a_job_that_loses_its_database_mid_range_retries_and_resumes(
    db: Any, clock: Any, tmp_path: Path, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 50)
    upload_id = await _arrange_upload(db, clock, tmp_path, 180)
    real_insert = ingestion.insert_debtors
    calls = {"n": 0}

    async def dying_insert(session: Any, records: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("worker lost its database connection")
        await real_insert(session, records)

    monkeypatch.setattr(ingestion, "insert_debtors", dying_insert)
    dispatch = {"services": runtime.services, "job_try": 1}
    # The dispatcher queues the lane jobs (run here by hand: the test plays the worker).
    monkeypatch.setattr(runtime.services.jobs, "enqueue", _ignore)
    assert await TASKS["uploads.ingest"](dispatch, upload_id) == "queued"
    lane = {"services": runtime.services, "job_try": 1, "job_id": "lane-job-1"}
    with pytest.raises(RetryLater):
        await TASKS["uploads.ingest_range"](lane, upload_id, 0)
    assert await _debtor_rows(db, upload_id) == (100, 100)
    async with db() as session:
        half = await session.get(Upload, upload_id)
    assert half is not None
    assert half.status == "processing"
    assert (half.processed_records, half.failed_records) == (90, 10)

    monkeypatch.setattr(ingestion, "insert_debtors", real_insert)
    # The retry (same job id) takes its own range back at once, lease or not.
    assert await TASKS["uploads.ingest_range"](lane | {"job_try": 2}, upload_id, 0) == "completed"
    assert await _debtor_rows(db, upload_id) == (180, 180)
    async with db() as session:
        done = await session.get(Upload, upload_id)
    assert done is not None
    assert done.status == "completed"
    assert (done.processed_records, done.failed_records) == (162, 18)
    # A duplicate run (arq may run a job twice) changes nothing.
    assert await TASKS["uploads.ingest"](dispatch, upload_id) == "skipped"
    assert await TASKS["uploads.ingest_range"](lane, upload_id, 0) == "skipped"
    assert await _debtor_rows(db, upload_id) == (180, 180)


async def _ignore(*_: Any) -> None:
    return None


async def test_a_job_whose_file_is_gone_fails_the_upload_and_keeps_no_rows(
    db: Any, clock: Any, tmp_path: Path, runtime: Any
) -> None:
    upload_id = await _arrange_upload(db, clock, tmp_path, 120)
    (tmp_path / "stored.csv").unlink()
    job_ctx = {"services": runtime.services, "job_try": 1}
    assert await TASKS["uploads.ingest"](job_ctx, upload_id) == "queued"
    assert await TASKS["uploads.ingest_range"](job_ctx, upload_id, 0) == "failed"
    async with db() as session:
        failed = await session.get(Upload, upload_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error_message == "The stored file could not be read: FileNotFoundError"
    assert await _debtor_rows(db, upload_id) == (0, 0)
    assert (await _events(db))[-1] == "upload.failed"


async def test_validating_an_upload_still_processing_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, clock: Any, tmp_path: Path
) -> None:
    upload_id = await _arrange_upload(db, clock, tmp_path, 120)
    for status in ("pending", "processing"):
        async with db() as session:
            row = await session.get(Upload, upload_id)
            assert row is not None
            row.status = status
            await session.commit()
        response = await client.post(
            f"/api/admin/uploads/{upload_id}/validate", headers=admin_headers
        )
        assert response.status_code == 422
        assert response.json() == {
            "message": "Upload is still processing. Please wait.",
            "status": 422,
        }
    assert await _debtor_rows(db, upload_id) == (0, 0)


async def test_stale_uploads_are_queued_again(
    db: Any, clock: Any, tmp_path: Path, runtime: Any, drain: Any
) -> None:
    from datetime import timedelta

    upload_id = await _arrange_upload(db, clock, tmp_path, 120)
    job_ctx = {"services": runtime.services, "job_try": 1}
    assert await TASKS["uploads.resume"](job_ctx) == 0
    clock.advance(timedelta(minutes=11))
    assert await TASKS["uploads.resume"](job_ctx) == 1
    # The queued job runs on the worker (arq with Redis); wait for its end state.
    for _ in range(100):
        await drain()
        if await _debtor_rows(db, upload_id) == (120, 120):
            break
        await asyncio.sleep(0.05)
    assert await _debtor_rows(db, upload_id) == (120, 120)


HUGE = "1" * 32  # past the 28 digits of the default decimal context


async def test_an_amount_too_long_for_any_column_fails_its_row_not_the_upload(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    # Such a cell answered 500 on a small upload; on a large one the job failed on every try
    # and the upload stayed "processing" for good, refused by validation as still processing.
    lines = csv_text(150).splitlines()
    lines[52] = lines[52].replace("150.00", HUGE)
    large = await upload(client, admin_headers, "\n".join(lines) + "\n")
    assert large.status_code == 202, large.text
    await drain()
    upload_id = large.json()["data"]["id"]
    status = await client.get(f"/api/admin/uploads/{upload_id}/status", headers=admin_headers)
    assert status.json()["data"] | {"id": 0} == {
        "id": 0,
        "status": "completed",
        "total_records": 150,
        "processed_records": 149,
        "failed_records": 1,
        "progress": 100.0,
        "is_complete": True,
    }
    small = csv_text(3).splitlines()
    small[2] = small[2].replace("150.00", HUGE)
    answered = await upload(client, admin_headers, "\n".join(small) + "\n")
    assert answered.status_code == 201, answered.text
    assert answered.json()["meta"]["errors"] == [
        {"row": 3, "message": "Amount must not exceed 50000", "data": ANY}
    ]
    async with db() as session:
        stored = await session.scalar(
            select(Debtor.amount).where(Debtor.row_number == 3, Debtor.upload_id != upload_id)
        )
    assert stored == Decimal("9999999999.99")  # capped to fit NUMERIC(12,2)


async def test_a_range_failing_on_every_try_fails_the_upload(
    db: Any, clock: Any, tmp_path: Path, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-raised, the job ended and the upload stayed processing: uploads.resume queued it again
    # every few minutes, for good, and validation refused it as still processing.
    upload_id = await _arrange_upload(db, clock, tmp_path, 120)

    async def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug in the row reader")

    monkeypatch.setattr(upload_jobs, "_ingest_claimed", broken)
    assert await TASKS["uploads.ingest"]({"services": runtime.services, "job_try": 1}, upload_id)
    # arq's tries of one job share its id, the claim token: the last try takes its range back.
    first = {"services": runtime.services, "job_try": 1, "job_id": "lane-0"}
    with pytest.raises(RetryLater):
        await TASKS["uploads.ingest_range"](first, upload_id, 0)
    last = {**first, "job_try": upload_jobs.LANE_TRIES_ON_ERROR}
    assert await TASKS["uploads.ingest_range"](last, upload_id, 0) == "failed"
    async with db() as session:
        failed = await session.get(Upload, upload_id)
    assert failed is not None
    assert (failed.status, failed.error_message) == ("failed", upload_jobs.FAILED_ON_EVERY_TRY)
    assert await _debtor_rows(db, upload_id) == (0, 0)
    assert (await _events(db))[-1] == "upload.failed"
