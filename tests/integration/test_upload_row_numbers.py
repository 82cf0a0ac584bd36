"""Upload row numbers are the file's (PRODUCT.md §6: header = row 1): blank records store
nothing and are not data rows, but they count, so an error names the row a spreadsheet shows."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.debtors.models import Debtor, Upload, UploadRange
from debtgraph.jobs import uploads as upload_jobs
from debtgraph.jobs.registry import TASKS
from debtgraph.settings import Settings
from tests.integration.uploads_support import HEADER, queued_file, upload, valid_row

RANGE_ROWS = 40
BAD = "Bad{0},Row,ES00INVALID,150.00,Madrid,28001,Calle Mayor 1,,,"
BLANKS = ["", " , ,", ",,,,,,,,,"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small ranges, so a test file has several."""
    return dataclasses.replace(settings, upload_range_rows=RANGE_ROWS)


def _file(rows: int, *, bad_every: int, blank_every: int) -> tuple[str, list[int], list[int]]:
    """A CSV with blank lines among its rows; (text, every data row's line, bad rows' lines)."""
    lines = [HEADER]
    numbers: list[int] = []
    bad: list[int] = []
    for i in range(rows):
        if i % blank_every == 1:
            lines.extend(BLANKS[: 1 + i % 3])
        lines.append(BAD.format(i) if i % bad_every == 0 else valid_row(i))
        numbers.append(len(lines))
        if i % bad_every == 0:
            bad.append(len(lines))
    lines.extend(BLANKS)  # blank records at the end, too
    return "\n".join(lines) + "\n", numbers, bad


async def _stored(db: Any, upload_id: int) -> list[tuple[int, str]]:
    async with db() as session:
        rows = await session.execute(
            select(Debtor.row_number, Debtor.first_name)
            .where(Debtor.upload_id == upload_id)
            .order_by(Debtor.row_number)
        )
        return [(int(n), str(name)) for n, name in rows.all()]


async def test_an_error_row_after_a_blank_line_carries_its_file_row_number(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    # Line 3 is blank, line 4 a bad row, lines 6-7 blank, line 9 bad again.
    lines = [HEADER, valid_row(0), "", BAD.format(1), valid_row(2), " , ,", ""]
    content = "\n".join([*lines, valid_row(3), BAD.format(4), ",,,,", ""])
    response = await upload(client, admin_headers, content)
    assert response.status_code == 201, response.text
    data, meta = response.json()["data"], response.json()["meta"]
    assert [e["row"] for e in meta["errors"]] == [4, 9]
    assert meta["errors"][0]["message"] == "IBAN is invalid"
    assert meta["errors"][0]["data"]["first_name"] == "Bad1"
    assert meta["errors"][1]["data"]["first_name"] == "Bad4"
    # Figures count data rows only: blank records are no rows to store.
    assert (meta["created"], meta["failed"]) == (3, 2)
    assert (data["total_records"], data["processed_records"], data["failed_records"]) == (5, 3, 2)
    assert data["debtors_count"] == 5
    assert await _stored(db, data["id"]) == [
        (2, "Maria0"),
        (4, "Bad1"),
        (5, "Maria2"),
        (8, "Maria3"),
        (9, "Bad4"),
    ]


async def test_a_large_upload_with_blank_lines_keeps_the_files_row_numbers(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    content, numbers, bad = _file(250, bad_every=5, blank_every=7)
    response = await upload(client, admin_headers, content)
    assert response.status_code == 202, response.text
    upload_id = response.json()["data"]["id"]
    await drain()
    stored = await _stored(db, upload_id)
    assert [n for n, _ in stored] == numbers  # every row once, numbered as in the file
    async with db() as session:
        row = await session.get(Upload, upload_id)
        spans = (
            await session.scalars(
                select(UploadRange)
                .where(UploadRange.upload_id == upload_id)
                .order_by(UploadRange.position)
            )
        ).all()
        invalid = (
            await session.scalars(
                select(Debtor.row_number)
                .where(Debtor.upload_id == upload_id, Debtor.validation_status == "invalid")
                .order_by(Debtor.row_number)
            )
        ).all()
    assert row is not None
    assert (row.status, row.total_records) == ("completed", 250)
    assert (row.processed_records, row.failed_records) == (200, 50)
    assert list(invalid) == bad
    # Ranges of 40 data rows, numbered as in the file, read from their offsets.
    assert len(spans) == 7
    assert [s.first_row for s in spans] == numbers[::RANGE_ROWS]
    assert [s.last_row for s in spans[:-1]] == [n - 1 for n in numbers[RANGE_ROWS::RANGE_ROWS]]
    assert spans[-1].last_row == content.count("\n")  # the last (blank) record
    assert all(s.byte_offset for s in spans[1:])
    status = await client.get(f"/api/admin/uploads/{upload_id}/status", headers=admin_headers)
    assert status.json()["data"]["progress"] == 100.0


async def test_a_resumed_upload_without_ranges_reads_past_its_blank_lines(
    db: Any, clock: Any, tmp_path: Path, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queued upload without ranges gets one over the whole file: not up to row
    ``total_records + 1``, which blank records would cut short."""
    content, numbers, _ = _file(130, bad_every=10, blank_every=3)
    upload_id = await queued_file(db, clock, tmp_path / "stored.csv", content, 10**6, ranged=False)
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 50)

    async def _ignore(*_: Any) -> None:
        return None

    monkeypatch.setattr(runtime.services.jobs, "enqueue", _ignore)
    dispatch = {"services": runtime.services, "job_try": 1}
    assert await TASKS["uploads.ingest"](dispatch, upload_id) == "queued"
    lane = {"services": runtime.services, "job_try": 1, "job_id": "lane-1"}
    assert await TASKS["uploads.ingest_range"](lane, upload_id, 0) == "completed"
    assert [n for n, _ in await _stored(db, upload_id)] == numbers
    async with db() as session:
        row = await session.get(Upload, upload_id)
    assert row is not None
    assert (row.status, row.total_records, row.processed_records, row.failed_records) == (
        "completed",
        130,
        117,
        13,
    )
