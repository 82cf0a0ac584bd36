"""Large uploads ingested in ranges: exact counts, one completion, claims that hold under
concurrent jobs, a lost database connection, and the end of the file without a newline."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from debtgraph.domain.core.database import is_sqlite
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.debtors import ranges
from debtgraph.domain.debtors.models import Debtor, Upload, UploadRange
from debtgraph.jobs import uploads as upload_jobs
from debtgraph.jobs.registry import TASKS
from debtgraph.settings import Settings
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.integration.uploads_support import HEADER, csv_text, queued_upload, upload

RANGE_ROWS = 40
on_postgres = pytest.mark.skipif(is_sqlite(DATABASE_URL), reason="concurrent writers: PostgreSQL")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small ranges, so a test file has several."""
    return dataclasses.replace(settings, upload_range_rows=RANGE_ROWS)


async def _rows(db: Any, upload_id: int) -> tuple[int, int, list[int]]:
    async with db() as session:
        numbers = list(
            (
                await session.scalars(
                    select(Debtor.row_number)
                    .where(Debtor.upload_id == upload_id)
                    .order_by(Debtor.row_number)
                )
            ).all()
        )
    return len(numbers), len(set(numbers)), numbers


async def _events(db: Any, upload_id: int) -> list[str]:
    async with db() as session:
        return list(
            (
                await session.scalars(
                    select(Event.type)
                    .where(Event.object_type == "upload", Event.object_id == str(upload_id))
                    .order_by(Event.id)
                )
            ).all()
        )


async def _ranges(db: Any, upload_id: int) -> list[UploadRange]:
    async with db() as session:
        return list(
            (
                await session.scalars(
                    select(UploadRange)
                    .where(UploadRange.upload_id == upload_id)
                    .order_by(UploadRange.position)
                )
            ).all()
        )


async def test_an_upload_in_ranges_is_stored_once_and_completed_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    # 250 rows, the last one without a line break: 7 ranges of at most 40 rows.
    content = csv_text(250, bad_every=5).rstrip("\n")
    response = await upload(client, admin_headers, content)
    assert response.status_code == 202, response.text
    upload_id = response.json()["data"]["id"]
    await drain()
    total, distinct, numbers = await _rows(db, upload_id)
    assert (total, distinct) == (250, 250)
    assert numbers == list(range(2, 252))
    status = await client.get(f"/api/admin/uploads/{upload_id}/status", headers=admin_headers)
    assert status.json()["data"] | {"id": 0} == {
        "id": 0,
        "status": "completed",
        "total_records": 250,
        "processed_records": 200,
        "failed_records": 50,
        "progress": 100.0,
        "is_complete": True,
    }
    spans = await _ranges(db, upload_id)
    assert [(s.first_row, s.last_row, s.status) for s in spans] == [
        # Rows 2..251 without a gap (no blank line), RANGE_ROWS to a range.
        (first, min(first + RANGE_ROWS - 1, 251), "done")
        for first in range(2, 252, RANGE_ROWS)
    ]
    async with db() as session:
        row = await session.get(Upload, upload_id)
    assert row is not None
    assert (row.ranges_done, row.ranges_total) == (7, 7)
    types = await _events(db, upload_id)
    # One at the start, one per chunk (each range is one chunk here), one completion.
    assert types == ["upload.progress"] * 8 + ["upload.completed"]
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    assert stats.json()["data"]["pending"] == 0


async def test_an_all_invalid_upload_stores_every_rows_errors(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    bad = "\n".join([HEADER] + ["Bad,Row,ES00INVALID,-3,M,1,x,,no-email,"] * 300) + "\n"
    response = await upload(client, admin_headers, bad)
    assert response.status_code == 202, response.text
    upload_id = response.json()["data"]["id"]
    await drain()
    async with db() as session:
        row = await session.get(Upload, upload_id)
        with_errors = await session.scalar(
            select(func.count())
            .select_from(Debtor)
            .where(
                Debtor.upload_id == upload_id,
                Debtor.validation_status == "invalid",
                Debtor.validation_errors.is_not(None),
            )
        )
    assert row is not None
    assert (row.status, row.processed_records, row.failed_records) == ("completed", 0, 300)
    # Each row's messages are in its own row, written with its chunk (nothing kept for the end).
    assert with_errors == 300


async def _arranged(db: Any, clock: Any, tmp_path: Path, rows: int) -> int:
    return await queued_upload(db, clock, tmp_path / "stored.csv", rows, RANGE_ROWS)


async def test_a_claim_is_held_until_its_lease_runs_out(
    db: Any, clock: Any, tmp_path: Path
) -> None:
    upload_id = await _arranged(db, clock, tmp_path, 130)
    lease = timedelta(seconds=60)
    async with db() as session:
        mine = await ranges.claim(session, clock, upload_id, "job-a", lease, position=1)
        await session.commit()
        assert mine is not None
        assert mine.position == 1
        # Another job is refused that range, and is given the next claimable one instead.
        assert await ranges.claim(session, clock, upload_id, "job-b", lease, position=1) is None
        other = await ranges.claim(session, clock, upload_id, "job-b", lease)
        assert other is not None
        assert other.position == 0
        # The same job (a retry) takes its own range back at once.
        again = await ranges.claim(session, clock, upload_id, "job-a", lease, position=1)
        assert again is not None
        await session.commit()
        clock.advance(timedelta(seconds=61))
        stolen = await ranges.claim(session, clock, upload_id, "job-c", lease, position=1)
        assert stolen is not None
        await session.commit()
        # The first holder notices at its next chunk, and cannot close the range.
        assert not await ranges.renew(session, clock, mine.id, "job-a")
        assert await ranges.close(session, clock, mine, "job-a") is None
        assert await ranges.renew(session, clock, mine.id, "job-c")
        assert await ranges.close(session, clock, stolen, "job-c") == (1, 4)
        await session.commit()


@on_postgres
async def test_two_jobs_handed_the_same_range_ingest_it_once(
    db: Any, clock: Any, tmp_path: Path, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 10)
    upload_id = await _arranged(db, clock, tmp_path, 200)
    monkeypatch.setattr(runtime.services.jobs, "enqueue", _ignore)
    dispatch = {"services": runtime.services, "job_try": 1}
    assert await TASKS["uploads.ingest"](dispatch, upload_id) == "queued"
    jobs = [
        TASKS["uploads.ingest_range"](
            {"services": runtime.services, "job_try": 1, "job_id": f"job-{n}"}, upload_id, 0
        )
        for n in range(2)
    ]
    outcomes = await asyncio.gather(*jobs)
    # Both ran at once (each went on to other ranges); exactly one completed the upload.
    assert sorted(outcomes) == ["completed", "ingested"]
    total, distinct, numbers = await _rows(db, upload_id)
    assert (total, distinct) == (200, 200)
    assert numbers == list(range(2, 202))
    spans = await _ranges(db, upload_id)
    assert all(s.status == "done" and s.attempts == 1 for s in spans)
    assert {s.claim_token for s in spans} == {"job-0", "job-1"}
    async with db() as session:
        row = await session.get(Upload, upload_id)
    assert row is not None
    assert (row.status, row.processed_records, row.failed_records) == ("completed", 180, 20)
    assert (await _events(db, upload_id)).count("upload.completed") == 1


@on_postgres
async def test_a_dispatch_racing_the_completion_leaves_the_upload_completed(
    db: Any, clock: Any, tmp_path: Path, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = await _arranged(db, clock, tmp_path, 100)
    monkeypatch.setattr(runtime.services.jobs, "enqueue", _ignore)
    dispatch = {"services": runtime.services, "job_try": 1}
    assert await TASKS["uploads.ingest"](dispatch, upload_id) == "queued"
    # A lane job completes the upload; before it commits, the sweep dispatches the upload again.
    async with db() as finisher:
        await finisher.execute(
            text("UPDATE uploads SET status = 'completed' WHERE id = :id"), {"id": upload_id}
        )
        again = asyncio.create_task(TASKS["uploads.ingest"](dispatch, upload_id))
        await asyncio.sleep(0.5)
        assert not again.done()  # waiting for the finisher's row lock, not reading around it
        await finisher.commit()
    assert await again == "skipped"
    async with db() as session:
        row = await session.get(Upload, upload_id)
    assert row is not None
    assert row.status == "completed"


async def _ignore(*_: Any) -> None:
    return None


@on_postgres
@pytest.mark.skipif(not REDIS_URL, reason="arq retries the job: needs REDIS_URL")
async def test_a_range_whose_database_connection_is_killed_is_retried_to_the_end(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    drain: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Many small transactions, so the backends are killed while a chunk is being written.
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 5)
    response = await upload(client, admin_headers, csv_text(400, bad_every=4))
    assert response.status_code == 202, response.text
    upload_id = response.json()["data"]["id"]
    kill = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    killed = retried = 0
    async with db() as session:
        # Every backend of this database but ours, again and again while the upload is
        # ingested, until one kill has caught the lane inside a chunk and its job was retried.
        for _ in range(2000):
            stored = await session.scalar(
                select(func.count()).select_from(Debtor).where(Debtor.upload_id == upload_id)
            )
            retried = int(
                await session.scalar(
                    select(func.max(UploadRange.attempts)).where(UploadRange.upload_id == upload_id)
                )
                or 0
            )
            status = await session.scalar(select(Upload.status).where(Upload.id == upload_id))
            if retried >= 2 or status == "completed":
                break
            if stored:
                killed += int(await session.scalar(kill) or 0)
            await session.commit()
            await asyncio.sleep(0.05)
    assert killed
    # drain waits for the jobs due now; a lane job retried after a kill is deferred (2, 4, 8 s
    # … by its tries), so wait for the upload itself to complete, draining as retries come due.
    row = None
    for _ in range(120):
        await drain(timeout=120)
        async with db() as session:
            row = await session.get(Upload, upload_id)
        if row is not None and row.status == "completed":
            break
        await asyncio.sleep(1)
    total, distinct, _ = await _rows(db, upload_id)
    assert (total, distinct) == (400, 400)
    assert row is not None
    assert (row.status, row.processed_records, row.failed_records) == ("completed", 300, 100)
    # The range in hand was claimed again by the retry of the same job.
    assert any(s.attempts >= 2 for s in await _ranges(db, upload_id))
