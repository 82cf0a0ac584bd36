"""Ranges of a large upload: row spans that several jobs ingest at once, each on its own.

A range is rows ``first_row``..``last_row`` of the file (row numbers as in the file, blank
records counted: a range holds ``RANGE_ROWS`` data rows, and the blank records among and
after them, which store nothing) and the byte offset of its first row's line, found while the
request stores and inspects the file (``count_rows`` finds both from the bytes of a file whose
every record is plainly a line; for any other file ``LineIndex`` counts its line breaks and
the reader says on which line each range's first row starts). Byte
offsets are only trusted when every CSV record of the file is exactly one line (no quoted
field holds a line break, no lone CR): then the n-th record starts after the n-th line break.
Any other file is one range read from its start.

A job claims a range by a conditional UPDATE (pending, or its claim gone stale, or already its
own from an earlier try), writing a claim token; every chunk it stores first renews the claim
``WHERE claim_token = mine``, so a job whose range was taken over stores nothing more. The last
range to close bumps ``uploads.ranges_done`` to ``ranges_total`` in the same statement that
reads it back: exactly one job sees the upload complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.debtors.models import Debtor, RangeStatus, Upload, UploadRange, UploadStatus

# Rows per range: small enough that two lanes finish an upload close together (the last range
# is the tail one lane runs alone) and a lost range costs little to redo; large enough that
# claiming (two statements) and opening the file are noise beside it.
RANGE_ROWS: Final = 10_000
FIRST_DATA_ROW: Final = 2
# The largest INTEGER: the last row of a range over a whole file whose last record is unknown.
END_OF_FILE_ROW: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class RangeBoundary:
    """Rows ``first_row``..``last_row`` and where the first one's line starts (None: the
    range is read from the start of the file)."""

    first_row: int
    last_row: int
    byte_offset: int | None


class LineIndex:
    """Line breaks of a file counted as its bytes go by, to find where line n starts.

    Keeps one checkpoint per block fed (a few thousand for the largest upload), not one per
    line; ``offsets`` re-reads only the blocks that hold the lines asked for.
    """

    def __init__(self) -> None:
        self._blocks: list[tuple[int, int, int]] = []  # (start, length, newlines before it)
        self._size = 0
        self._newlines = 0
        self._cr = 0
        self._crlf = 0
        self._last = b""

    @classmethod
    def of_file(cls, path: Path, block: int = 64 * 1024) -> LineIndex:
        """The line breaks of a stored file, read in blocks of ``block`` bytes."""
        index = cls()
        with path.open("rb") as source:
            while chunk := source.read(block):
                index.feed(chunk)
        return index

    def feed(self, block: bytes) -> None:
        """Count the line breaks of the next block of the file."""
        if not block:
            return
        self._blocks.append((self._size, len(block), self._newlines))
        self._size += len(block)
        self._newlines += block.count(b"\n")
        self._cr += block.count(b"\r")
        self._crlf += block.count(b"\r\n")
        if self._last == b"\r" and block.startswith(b"\n"):
            self._crlf += 1  # a CRLF cut by the block boundary
        self._last = block[-1:]

    def lines(self) -> int:
        """The number of lines (a last one without a line break counts)."""
        return self._newlines + (1 if self._last not in (b"", b"\n") else 0)

    def one_record_per_line(self, records: int) -> bool:
        """Whether ``records`` CSV records (blank ones included) are exactly the lines."""
        return self._cr == self._crlf and records == self.lines()

    def offsets(self, path: Path, lines: Sequence[int]) -> list[int]:
        """The byte offset where each 0-based line in ``lines`` (ascending, > 0) starts."""
        found: list[int] = []
        block_at = 0
        with path.open("rb") as source:
            for line in lines:
                # Line n starts after the n-th line break.
                while block_at + 1 < len(self._blocks) and self._blocks[block_at + 1][2] < line:
                    block_at += 1
                start, length, before = self._blocks[block_at]
                source.seek(start)
                block = source.read(length)
                position = -1
                for _ in range(line - before):
                    position = block.index(b"\n", position + 1)
                found.append(start + position + 1)
        return found


def range_spans(starts: Sequence[int], last_row: int) -> list[tuple[int, int]]:
    """Row spans from FIRST_DATA_ROW to ``last_row``, a new one at each row of ``starts``
    (ascending, past FIRST_DATA_ROW): each ends just before the next one starts."""
    firsts = [FIRST_DATA_ROW, *starts]
    ends = [*starts, last_row + 1]
    return [(first, following - 1) for first, following in zip(firsts, ends, strict=True)]


def whole_file(last_row: int = END_OF_FILE_ROW) -> list[RangeBoundary]:
    """One range over every row up to ``last_row`` (the file's last record's number; by
    default every row there is), read from the start of the file."""
    return [RangeBoundary(FIRST_DATA_ROW, last_row, None)]


def add_ranges(session: AsyncSession, upload: Upload, spans: Sequence[RangeBoundary]) -> None:
    """Attach the ranges of a queued upload (in the transaction that creates it)."""
    for position, span in enumerate(spans):
        session.add(
            UploadRange(
                upload_id=upload.id,
                position=position,
                first_row=span.first_row,
                last_row=span.last_row,
                byte_offset=span.byte_offset,
                status=RangeStatus.PENDING.value,
            )
        )
    upload.ranges_total = len(spans)
    upload.ranges_done = 0


async def ensure_ranges(session: AsyncSession, upload: Upload) -> None:
    """Give an upload queued without ranges one range over the whole file.

    Not ``total_records`` + 1 as the last row: that counts data rows only, and blank records
    also have a row number (their rows would be cut off).
    """
    if upload.ranges_total:
        return
    add_ranges(session, upload, whole_file())
    await session.flush()


async def unfinished_positions(session: AsyncSession, upload_id: int) -> list[int]:
    """Positions of the ranges of an upload not yet done."""
    rows = await session.scalars(
        select(UploadRange.position)
        .where(UploadRange.upload_id == upload_id, UploadRange.status != RangeStatus.DONE.value)
        .order_by(UploadRange.position)
    )
    return list(rows.all())


def _claimable(token: str, stale_before: datetime) -> object:
    return (UploadRange.status == RangeStatus.PENDING.value) | (
        (UploadRange.status == RangeStatus.RUNNING.value)
        & ((UploadRange.claim_token == token) | (UploadRange.heartbeat_at < stale_before))
    )


async def claim(
    session: AsyncSession,
    clock: Clock,
    upload_id: int,
    token: str,
    lease: timedelta,
    position: int | None = None,
) -> UploadRange | None:
    """Claim a range of the upload for ``token`` (range ``position``, or the first claimable).

    One UPDATE decides: the row is taken only if it is still claimable when the statement
    runs, so two jobs never both hold it. On PostgreSQL the candidate is picked with
    ``FOR UPDATE SKIP LOCKED``, so a claimer passes over a range another is taking instead
    of waiting for it and then finding it gone.
    """
    now = clock.now()
    condition = _claimable(token, now - lease)
    candidate = (
        select(UploadRange.id)
        .where(UploadRange.upload_id == upload_id, condition)  # type: ignore[arg-type]
        .order_by(UploadRange.position)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if position is not None:
        candidate = candidate.where(UploadRange.position == position)
    statement = (
        update(UploadRange)
        .where(UploadRange.id == candidate.scalar_subquery(), condition)  # type: ignore[arg-type]
        .values(
            status=RangeStatus.RUNNING.value,
            claim_token=token,
            heartbeat_at=now,
            attempts=UploadRange.attempts + 1,
        )
        .returning(UploadRange)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one_or_none()


async def renew(session: AsyncSession, clock: Clock, range_id: int, token: str) -> bool:
    """Renew a claim before storing a chunk; False when another job has taken the range.

    The first statement of the chunk's transaction: it locks the range row until the chunk
    commits, so a job taking the range over waits for the chunk and then resumes after it.
    """
    result = await session.execute(
        update(UploadRange)
        .where(
            UploadRange.id == range_id,
            UploadRange.claim_token == token,
            UploadRange.status == RangeStatus.RUNNING.value,
        )
        .values(heartbeat_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def resume_after(session: AsyncSession, claimed: UploadRange) -> int:
    """The last row of the range already stored (``first_row - 1`` when none is)."""
    value = await session.scalar(
        select(func.max(Debtor.row_number)).where(
            Debtor.upload_id == claimed.upload_id,
            Debtor.row_number >= claimed.first_row,
            Debtor.row_number <= claimed.last_row,
        )
    )
    return int(value) if value is not None else claimed.first_row - 1


async def close(
    session: AsyncSession, clock: Clock, claimed: UploadRange, token: str
) -> tuple[int, int] | None:
    """Mark a claimed range done and count it; (done, total), or None if the claim was lost.

    The counter is bumped by the UPDATE that returns it, so of the jobs closing an upload's
    last ranges at once exactly one reads ``done == total``.
    """
    result = await session.execute(
        update(UploadRange)
        .where(
            UploadRange.id == claimed.id,
            UploadRange.claim_token == token,
            UploadRange.status == RangeStatus.RUNNING.value,
        )
        .values(status=RangeStatus.DONE.value, heartbeat_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    row = (
        await session.execute(
            update(Upload)
            .where(Upload.id == claimed.upload_id)
            .values(ranges_done=Upload.ranges_done + 1, updated_at=clock.now())
            .returning(Upload.ranges_done, Upload.ranges_total)
            .execution_options(synchronize_session=False)
        )
    ).one()
    return int(row[0]), int(row[1])


async def fail_all(session: AsyncSession, upload_id: int) -> None:
    """Mark every range of a failed upload failed (before its rows are dropped).

    Taking the range rows first waits for any chunk being stored by another job, so the
    DELETE that follows sees its rows; that job's next renewal then finds its claim gone.
    """
    await session.execute(
        update(UploadRange)
        .where(UploadRange.upload_id == upload_id)
        .values(status=RangeStatus.FAILED.value, claim_token=None)
        .execution_options(synchronize_session=False)
    )


async def stalled(session: AsyncSession, clock: Clock, lease: timedelta) -> list[tuple[int, int]]:
    """(upload id, position) of running ranges whose claim has not been renewed for ``lease``."""
    rows = await session.execute(
        select(UploadRange.upload_id, UploadRange.position)
        .join(Upload, Upload.id == UploadRange.upload_id)
        .where(
            UploadRange.status == RangeStatus.RUNNING.value,
            UploadRange.heartbeat_at < clock.now() - lease,
            Upload.status == UploadStatus.PROCESSING.value,
        )
        .order_by(UploadRange.upload_id, UploadRange.position)
    )
    return [(int(u), int(p)) for u, p in rows.all()]
