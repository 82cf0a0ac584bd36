"""Stage A of an upload: store every CSV data row as a pending debtor, in bulk and resumably.

The file is copied to storage and checked in bounded reads (``store_and_inspect``, run in a
thread by the caller). Rows become debtor records (``debtor_record``: fields derived from the
columns, IBAN enrichment, the whole row kept in ``raw_data``) and are inserted in chunks:
PostgreSQL gets them through COPY on the asyncpg connection, other backends through one
executemany INSERT. ``(upload_id, row_number)`` is unique, and a resumed run starts after the
highest row number already stored, so a retried job never duplicates a row. Row numbers are
the records' numbers in the file (blank records count but store nothing), so they may skip
values; the upload's ``total_records`` counts data rows only.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Protocol, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from debtgraph.domain.banking.iban import enrich_iban
from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.database import insert_rows
from debtgraph.domain.core.errors import ExpectedError
from debtgraph.domain.core.outbox import record_event
from debtgraph.domain.debtors.csv_reader import (
    ByteStream,
    CsvFormatError,
    ParsedRow,
    count_rows,
    open_csv,
    open_csv_at,
)
from debtgraph.domain.debtors.fields import (
    DebtorFields,
    FieldMap,
    columns_not_recognised,
    derive_debtor_fields,
    describes_debtors,
    field_map,
    unrecognized_columns,
)
from debtgraph.domain.debtors.models import (
    Debtor,
    DebtorStatus,
    Upload,
    UploadStatus,
    ValidationStatus,
)
from debtgraph.domain.debtors.ranges import (
    RANGE_ROWS,
    LineIndex,
    RangeBoundary,
    range_spans,
    whole_file,
)
from debtgraph.domain.debtors.ranges import fail_all as fail_all_ranges
from debtgraph.domain.debtors.validation import (
    ValidationRun,
    apply_outcome,
    validate_records,
)

CHUNK_ROWS: Final = 5000
# Large reads: the copy costs a few system calls per megabyte, not per row.
COPY_BUFFER: Final = 1024 * 1024
# NUMERIC(12,2) holds at most this; larger amounts are stored capped (still refused by
# validation, which allows 50000) so one absurd cell cannot make the whole chunk fail.
_AMOUNT_LIMIT: Final = Decimal("9999999999.99")

FILE_TOO_LARGE: Final = "The file is too large: the maximum size is {mb} MB."
NOT_DELIMITED: Final = (
    "The file is not a CSV file: its header has no columns separated by a comma, semicolon or tab."
)


class FileTooLarge(ExpectedError, ValueError):
    """The upload is bigger than the configured limit."""

    code = "file_too_large"

    def __init__(self, max_mb: int) -> None:
        super().__init__(FILE_TOO_LARGE.format(mb=max_mb))


def check_size(size: int, *, max_bytes: int, max_mb: int) -> None:
    """Refuse an upload of more than ``max_bytes`` (MAX_UPLOAD_MB) with FileTooLarge."""
    if size > max_bytes:
        raise FileTooLarge(max_mb)


@dataclass(frozen=True, slots=True)
class FileSummary:
    """What inspecting a stored upload found: its size, its data rows (``total_rows``; blank
    records are not rows), the rows themselves when there are few enough to handle within the
    request, and the columns no debtor field reads (kept in ``raw_data`` all the same)."""

    size: int
    total_rows: int
    rows: list[ParsedRow] | None
    unrecognized_columns: list[str] = field(default_factory=list)
    # The ranges a queued upload is ingested in (none for one handled within the request).
    ranges: list[RangeBoundary] = field(default_factory=list)


def _string_limits() -> dict[str, int]:
    """Length of every VARCHAR column of the debtors table, so values can be cut to fit."""
    limits: dict[str, int] = {}
    for column in Debtor.__table__.columns:
        length = getattr(column.type, "length", None)
        if isinstance(length, int):
            limits[column.key] = length
    return limits


_LIMITS: Final = _string_limits()
# COPY needs every column in a fixed order; the id comes from the sequence.
COPY_COLUMNS: Final = tuple(c.key for c in Debtor.__table__.columns if c.key != "id")
_DEBTORS: Final = cast("Table", Debtor.__table__)
_IBAN_COLUMNS: Final = ("iban_valid", "iban_masked", "bank_name", "bank_code", "bic")
# The text columns derivation fills, with their lengths.
_DERIVED_LIMITS: Final = tuple(
    (key, limit)
    for key, limit in _LIMITS.items()
    if key in DebtorFields.__annotations__ or key in _IBAN_COLUMNS
)


def store_and_inspect(
    stream: ByteStream,
    destination: Path,
    *,
    max_bytes: int,
    max_mb: int,
    sync_limit: int,
    range_rows: int = RANGE_ROWS,
) -> FileSummary:
    """Copy an uploaded stream to ``destination`` in bounded reads, then read it as CSV.

    Blocking (file I/O and parsing): call it in a worker thread. Raises FileTooLarge or
    CsvFormatError and removes the copy on any failure: the whole file is read here, so a row
    over the CSV limits or a header naming no debtor column refuses it before anything is
    stored, large files included. Rows are kept only when there are at most ``sync_limit``;
    otherwise they are only counted and cut into ranges of ``range_rows`` data rows: from the
    file's bytes when every record is plainly a line (``count_rows``), else by the reader, one
    at a time. A range starts at its first data row's number and ends just before the next
    range's (the last range at the file's last record), so blank records between ranges
    belong to one, and store nothing.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with destination.open("wb") as out:
            while chunk := stream.read(COPY_BUFFER):
                size += len(chunk)
                check_size(size, max_bytes=max_bytes, max_mb=max_mb)
                out.write(chunk)
        with destination.open("rb") as source:
            reader = open_csv(source)
            named = [h for h in reader.headers if not h.startswith("_column_")]
            if len(named) < 2:
                # Any text parses as a one-column CSV; a debtor list has several named columns.
                raise CsvFormatError(NOT_DELIMITED)
            if not describes_debtors(reader.headers):
                raise CsvFormatError(columns_not_recognised(reader.headers), "unrecognized_columns")
            unknown = unrecognized_columns(reader.headers)
            head: list[ParsedRow] = []
            # The record index of each range's first row (its row number less one), noted
            # while the rows are counted; ranges hold ``range_rows`` data rows each.
            starts: list[int] = []
            next_start = range_rows + 1  # the first row of the second range, among data rows
            for row in reader:
                head.append(row)
                if len(head) == next_start:
                    starts.append(reader.record_index)
                    next_start += range_rows
                if len(head) > sync_limit:
                    break
            if len(head) <= sync_limit:
                return FileSummary(size, len(head), head, unknown)
            total = len(head)
            del head
            with destination.open("rb") as again:
                counted = count_rows(again, reader.layout, first=range_rows + 1, every=range_rows)
            offsets: list[int] | None = None
            if counted is not None:
                total, last_row = counted.rows, counted.records
                starts = [record for record, _ in counted.marks]
                if counted.marks:
                    # Each record is one line there: the offsets read are the lines'.
                    offsets = [offset for _, offset in counted.marks]
            else:
                # The rest is only counted: no row's data is built.
                rest, marks = reader.skim(next_start, range_rows)
                total += rest
                starts += marks
                last_row = reader.records_read
                if starts:
                    lines = LineIndex.of_file(destination)
                    if lines.one_record_per_line(reader.records_read):
                        offsets = lines.offsets(destination, starts)
            if offsets is None:
                return FileSummary(size, total, None, unknown, whole_file(last_row))
            # A record's number is its index plus one: the header is record 0, row 1.
            spans = range_spans([index + 1 for index in starts], last_row)
            cut = [
                RangeBoundary(a, b, o) for (a, b), o in zip(spans, [None, *offsets], strict=True)
            ]
            return FileSummary(size, total, None, unknown, cut)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def remove_stored_file(path: str | None) -> None:
    """Delete a stored upload file if it is there."""
    if path:
        Path(path).unlink(missing_ok=True)


def stored_fields(fields: DebtorFields, *, in_place: bool = False) -> dict[str, Any]:
    """Debtor columns for derived fields, IBAN enrichment included; text cut to fit.

    ``in_place``: ``fields`` (a fresh derivation no one else holds) becomes the result.
    """
    info = enrich_iban(fields["iban"])
    values: dict[str, Any] = cast("dict[str, Any]", fields) if in_place else dict(fields)
    del values["amount_invalid"]
    amount = fields["amount"]
    if amount is not None and abs(amount) > _AMOUNT_LIMIT:
        values["amount"] = _AMOUNT_LIMIT.copy_sign(amount)
    # The full IBAN's verdict: the stored one may be cut to 34 characters.
    values["iban_valid"] = info.valid if fields["iban"] else None
    values["iban_masked"] = info.masked
    values["bank_name"] = info.bank_name
    values["bank_code"] = info.bank_code
    values["bic"] = info.bic
    for key, limit in _DERIVED_LIMITS:
        value = values[key]
        if isinstance(value, str) and len(value) > limit:
            values[key] = value[:limit]
    return values


# The columns of a row just read, before validation.
_PENDING_COLUMNS: Final = {
    "status": DebtorStatus.PENDING.value,
    "risk_class": None,
    "name_matched": None,
    "validation_status": ValidationStatus.PENDING.value,
    "validation_errors": None,
    "blacklisted": False,
    "validated_at": None,
}


def debtor_fields_from_raw(raw: Mapping[str, str]) -> dict[str, Any]:
    """Debtor columns derived from a row's columns, IBAN enrichment included; cut to fit."""
    return stored_fields(derive_debtor_fields(raw))


def debtor_record(
    upload_id: int, row: ParsedRow, now: datetime, fields: FieldMap | None = None
) -> dict[str, Any]:
    """A complete ``debtors`` row (every column but id) for one CSV data row.

    ``fields`` is the FieldMap of the row's file; without it the row's columns are resolved.
    """
    # One dict per row: the derived fields, completed with the other columns.
    record = stored_fields((fields or field_map(row.data)).derive(row.data), in_place=True)
    record["upload_id"] = upload_id
    record["row_number"] = row.row_number
    record["raw_data"] = dict(row.data)
    record.update(_PENDING_COLUMNS)
    record["created_at"] = record["updated_at"] = now
    return record


def debtor_records(
    upload_id: int, rows: Iterable[ParsedRow], now: datetime, *, judge: bool = False
) -> list[dict[str, Any]]:
    """Debtor records for a batch of rows (CPU only; may run in a worker thread).

    With ``judge`` the validation rules run too, as if no IBAN were blacklisted; the blacklist,
    which needs the database, is applied by ``validate_records`` before the insert.
    """
    records: list[dict[str, Any]] = []
    fields: FieldMap | None = None
    columns: tuple[str, ...] = ()
    for row in rows:
        # Rows of a file share their columns (but for extra cells), so the map is reused.
        if fields is None or tuple(row.data) != columns:
            columns = tuple(row.data)
            fields = field_map(columns)
        record = debtor_record(upload_id, row, now, fields)
        if judge:
            apply_outcome(record, False, now)
        records.append(record)
    return records


async def record_chunks(
    rows: Iterator[ParsedRow],
    upload_id: int,
    clock: Clock,
    size: int = CHUNK_ROWS,
    *,
    judge: bool = False,
    prepare: Callable[[list[dict[str, Any]]], None] | None = None,
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Yield the debtor records of ``rows`` chunk by chunk, read and derived in a worker thread.

    The next chunk is derived while the caller stores the one it was given, so the CPU work
    overlaps the database round trips; at most two chunks are in memory. ``prepare`` (CPU
    only) is called on each chunk in the worker thread too: the VOP step judges it there.
    Errors reading the file (CsvFormatError) are raised where the chunk would have been
    yielded. Close the generator (``contextlib.aclosing``) before closing the file: it waits
    for the worker.
    """

    def derive(now: datetime) -> list[dict[str, Any]]:
        records = debtor_records(upload_id, itertools.islice(rows, size), now, judge=judge)
        if prepare is not None and records:
            prepare(records)
        return records

    pending = asyncio.ensure_future(asyncio.to_thread(derive, clock.now()))
    try:
        while records := await pending:
            pending = asyncio.ensure_future(asyncio.to_thread(derive, clock.now()))
            yield records
    finally:
        if not pending.done():
            # A thread cannot be stopped; it must be done with the rows before they go away.
            await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()  # an abandoned chunk's error is not this caller's to raise


def _copy_row(record: Mapping[str, Any]) -> list[Any]:
    """A record's values in COPY_COLUMNS order (a missing key is None)."""
    return list(map(record.get, COPY_COLUMNS))


async def insert_debtors(session: AsyncSession, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert debtor records in bulk: COPY on PostgreSQL, one executemany INSERT elsewhere."""
    if records:
        await insert_rows(session, _DEBTORS, COPY_COLUMNS, map(_copy_row, records))


async def last_stored_row(session: AsyncSession, upload_id: int) -> int:
    """The highest row number stored for an upload (1, the header, when none is)."""
    value = await session.scalar(
        select(func.max(Debtor.row_number)).where(Debtor.upload_id == upload_id)
    )
    return int(value) if value is not None else 1


async def create_upload(
    session: AsyncSession,
    clock: Clock,
    *,
    filename: str,
    original_filename: str,
    mime_type: str,
    file_size: int,
    storage_path: str,
    total_records: int,
    created_by: int | None,
) -> Upload:
    """Add a pending upload row for a stored file."""
    now = clock.now()
    upload = Upload(
        filename=filename,
        original_filename=original_filename[:255],
        mime_type=mime_type[:100],
        file_size=file_size,
        storage_path=storage_path,
        status=UploadStatus.PENDING.value,
        total_records=total_records,
        processed_records=0,
        failed_records=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(upload)
    await session.flush()
    return upload


async def start_processing(session: AsyncSession, clock: Clock, upload: Upload) -> None:
    """Mark an upload as processing (keeps the first start time on a resumed run)."""
    now = clock.now()
    upload.status = UploadStatus.PROCESSING.value
    upload.processing_started_at = upload.processing_started_at or now
    upload.updated_at = now
    await session.flush()


async def finish(session: AsyncSession, clock: Clock, upload: Upload) -> bool:
    """Mark a processing upload as completed; False when it was not processing any more.

    A conditional UPDATE, so of two jobs finishing one upload only one completes it (and
    raises its ``upload.completed``).
    """
    await session.flush()
    now = clock.now()
    result = await session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.status == UploadStatus.PROCESSING.value)
        .values(
            status=UploadStatus.COMPLETED.value,
            processing_started_at=func.coalesce(Upload.processing_started_at, now),
            processing_completed_at=now,
            error_message=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(upload)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail(session: AsyncSession, clock: Clock, upload: Upload, message: str) -> None:
    """Mark an upload as failed and drop the rows stored so far: no partial upload remains."""
    now = clock.now()
    await fail_all_ranges(session, upload.id)
    await session.execute(delete(Debtor).where(Debtor.upload_id == upload.id))
    upload.status = UploadStatus.FAILED.value
    upload.error_message = message[:1000]
    upload.processed_records = 0
    upload.failed_records = 0
    upload.processing_completed_at = now
    upload.updated_at = now
    await session.flush()


async def touch(session: AsyncSession, clock: Clock, upload_id: int) -> None:
    """Bump an upload's ``updated_at`` (a live job shows it is alive)."""
    await session.execute(
        update(Upload).where(Upload.id == upload_id).values(updated_at=clock.now())
    )


def read_rows_after(path: str, after_row: int) -> tuple[Any, Iterator[ParsedRow]]:
    """Open a stored upload and skip to the rows after ``after_row``; returns (file, rows).

    Raises CsvFormatError or OSError. The caller closes the file.
    """
    handle = Path(path).open("rb")  # noqa: SIM115  (closed by the caller after the last chunk)
    try:
        reader = open_csv(handle)
    except (CsvFormatError, OSError):
        handle.close()
        raise
    return handle, (row for row in reader if row.row_number > after_row)


def read_range(
    path: str, byte_offset: int | None, first_row: int, after_row: int, last_row: int
) -> tuple[Any, Iterator[ParsedRow]]:
    """Open a stored upload at a range and give its rows after ``after_row``; (file, rows).

    A range with a byte offset is read from there with the layout the file's header gives;
    one without is read from the start. Raises CsvFormatError or OSError; the caller closes
    the file.
    """
    if byte_offset is None:
        handle, rows = read_rows_after(path, after_row)
    else:
        with Path(path).open("rb") as head:
            layout = open_csv(head).layout
        handle = Path(path).open("rb")  # noqa: SIM115  (closed by the caller)
        try:
            handle.seek(byte_offset)
            reader = open_csv_at(handle, layout, first_row)
        except (CsvFormatError, OSError):
            handle.close()
            raise
        rows = (row for row in reader if row.row_number > after_row)
    return handle, itertools.takewhile(lambda row: row.row_number <= last_row, rows)


def upload_summary(upload: Upload) -> dict[str, Any]:
    """The JSON an upload event carries."""
    return {
        "id": upload.id,
        "status": upload.status,
        "total_records": upload.total_records,
        "processed_records": upload.processed_records,
        "failed_records": upload.failed_records,
        "progress": float(upload.progress),
        "is_complete": upload.is_complete,
    }


def record_upload_event(session: AsyncSession, clock: Clock, type: str, upload: Upload) -> None:
    """Raise an upload event (operators only: no platform or user owns uploads)."""
    record_event(
        session,
        clock,
        type=type,
        object_type="upload",
        object_id=str(upload.id),
        obj=upload_summary(upload),
    )


class ChunkStep(Protocol):
    """Work an area above this one does on each chunk, in the chunk's transaction.

    ``before_insert`` sees the validated records and may fill columns of them (the VOP phase
    sets ``name_matched`` and ``risk_class``); ``after_insert`` runs once the rows exist.
    """

    async def before_insert(
        self, session: AsyncSession, upload_id: int, records: Sequence[dict[str, Any]]
    ) -> None:
        """Called after validation, before the rows are stored."""
        ...

    async def after_insert(
        self, session: AsyncSession, upload_id: int, records: Sequence[dict[str, Any]]
    ) -> None:
        """Called once the rows are stored, in the same transaction."""
        ...


async def ingest_small_upload(
    session: AsyncSession,
    clock: Clock,
    upload: Upload,
    rows: Sequence[ParsedRow],
    step: ChunkStep | None = None,
) -> ValidationRun:
    """Store and validate a small upload within the request, and complete it."""
    await start_processing(session, clock, upload)
    # Judged in memory and inserted with the verdict, as the ingestion job does for each chunk.
    records = debtor_records(upload.id, rows, clock.now(), judge=True)
    run = await validate_records(session, clock, records, collect_failures=True)
    if step is not None:
        await step.before_insert(session, upload.id, records)
    await insert_debtors(session, records)
    if step is not None:
        await step.after_insert(session, upload.id, records)
    upload.processed_records = run.valid
    upload.failed_records = run.invalid
    await finish(session, clock, upload)
    record_upload_event(session, clock, "upload.completed", upload)
    return run


async def ingest_chunk(
    session: AsyncSession,
    clock: Clock,
    upload: Upload,
    records: Sequence[dict[str, Any]],
    step: ChunkStep | None = None,
) -> ValidationRun:
    """Validate one chunk (stage B) and store it (stage A), and add it to the upload's counters.

    Both stages happen in the caller's transaction, so no one can see the chunk between them:
    the rows are judged in memory and inserted with their verdict, which spares reading them
    back and rewriting every index of every row with an UPDATE.
    """
    run = await validate_records(session, clock, list(records))
    if step is not None:
        await step.before_insert(session, upload.id, records)
    await insert_debtors(session, records)
    if step is not None:
        await step.after_insert(session, upload.id, records)
    await add_counts(session, clock, upload, run.valid, run.invalid)
    return run


async def add_counts(
    session: AsyncSession, clock: Clock, upload: Upload, processed: int, failed: int
) -> None:
    """Add a chunk's rows to the upload's counters, in the database, and read them back.

    Jobs ingesting ranges of one upload at once each add their own chunks: an increment in
    the UPDATE, not a value computed from what this session last read, loses none of them.
    The last statement of a chunk's transaction, so the upload row stays locked briefly.
    """
    await session.flush()
    row = (
        await session.execute(
            update(Upload)
            .where(Upload.id == upload.id)
            .values(
                processed_records=Upload.processed_records + processed,
                failed_records=Upload.failed_records + failed,
                updated_at=clock.now(),
            )
            .returning(Upload.processed_records, Upload.failed_records, Upload.updated_at)
            .execution_options(synchronize_session=False)
        )
    ).one()
    # The values just written, set as the row's state (not as changes to flush again).
    set_committed_value(upload, "processed_records", row[0])
    set_committed_value(upload, "failed_records", row[1])
    set_committed_value(upload, "updated_at", row[2])


async def stale_uploads(session: AsyncSession, clock: Clock, idle: timedelta) -> list[int]:
    """Uploads still pending or processing that no job has touched for ``idle``."""
    cutoff = clock.now() - idle
    rows = await session.scalars(
        select(Upload.id).where(
            Upload.status.in_([UploadStatus.PENDING.value, UploadStatus.PROCESSING.value]),
            Upload.updated_at < cutoff,
        )
    )
    return list(rows.all())
