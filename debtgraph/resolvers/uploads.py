"""Operator use cases on uploads: create (stage A, and B for small files), read, validate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiodataloader import DataLoader
from sqlalchemy import ColumnElement, Row, func, select

from debtgraph.domain.core.errors import refuse_nul_file_name
from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.core.events import UPLOAD_EVENTS
from debtgraph.domain.core.outbox import enqueue_after_commit
from debtgraph.domain.debtors import ingestion, ranges
from debtgraph.domain.debtors import validation as debtor_validation
from debtgraph.domain.debtors.csv_reader import CsvFormatError, ParsedRow
from debtgraph.domain.debtors.models import Debtor, Upload, UploadStatus
from debtgraph.domain.debtors.validation import ValidationStats
from debtgraph.resolvers import events, vop_logs
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import Conflict, FieldError, InputError, NotFound
from debtgraph.resolvers.loaders import Page, Window
from debtgraph.resolvers.pagination import (
    NumberedPage,
    keyset_page,
    not_among,
    numbered_page,
    parse_id,
)
from debtgraph.resolvers.permissions import require_operator

STILL_PROCESSING = "Upload is still processing. Please wait."
QUEUED_MESSAGE = "File queued for processing. Check status for updates."
FILE_REQUIRED = "The file field is required."
NOT_A_FILE = "The file field must be a file."
# The type of every upload accepted: the server read it as CSV, whatever the client called it
# (curl sends application/octet-stream, Windows browsers application/vnd.ms-excel), as
# Laravel's guessed getMimeType() answers, not the client's getClientMimeType().
CSV_MIME = "text/csv"
# Multipart framing around the file: headers, boundaries and a few small fields.
MULTIPART_OVERHEAD = 64 * 1024


class UploadedFile(Protocol):
    """What both faces hand over: Starlette's UploadFile (also Strawberry's Upload)."""

    filename: str | None
    content_type: str | None
    size: int | None
    file: Any


@dataclass
class UploadCreated:
    """A new upload and what happened to its rows."""

    upload: Upload
    queued: bool
    created: int = 0
    failed: int = 0
    # {row, message, data} for each failed row of a small upload.
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Columns no debtor field reads; their cells are kept in raw_data.
    unrecognized_columns: list[str] = field(default_factory=list)


def too_large(ctx: Context) -> InputError:
    """The 422 for a file over MAX_UPLOAD_MB."""
    message = ingestion.FILE_TOO_LARGE.format(mb=ctx.settings.max_upload_mb)
    return InputError([FieldError("file", "too_large", message)])


def check_content_length(ctx: Context, header: str | None) -> None:
    """Refuse a request whose declared size already exceeds the limit, before reading it."""
    require_operator(ctx)
    if header is None or not (header.strip().isascii() and header.strip().isdigit()):
        return
    if int(header) > request_limit(ctx):
        raise too_large(ctx)


def request_limit(ctx: Context) -> int:
    """The most bytes a CSV upload request may carry: MAX_UPLOAD_MB plus multipart framing."""
    return ctx.settings.max_upload_bytes + MULTIPART_OVERHEAD


async def create_upload(ctx: Context, file: UploadedFile | Any) -> UploadCreated:
    """Store an uploaded CSV; validate it at once when small, else queue the ingestion job."""
    principal = require_operator(ctx)
    if file is None or file == "":
        raise InputError([FieldError("file", "required", FILE_REQUIRED)])
    if not hasattr(file, "file") or not hasattr(file, "filename"):
        raise InputError([FieldError("file", "invalid", NOT_A_FILE)])
    refuse_nul_file_name(file)
    settings = ctx.settings
    name = f"{uuid.uuid4()}.csv"
    destination = Path(settings.upload_dir) / name
    try:
        if file.size is not None:
            # The declared size, before a byte is copied; the copy checks the bytes themselves.
            ingestion.check_size(
                file.size, max_bytes=settings.max_upload_bytes, max_mb=settings.max_upload_mb
            )
        # From its start: one GraphQL File variable may feed two uploadCreate fields of one
        # request, and the first read it to its end ("The file is empty." for the second).
        if hasattr(file.file, "seek"):
            file.file.seek(0)  # a spooled temporary file: in memory, or one lseek
        summary = await asyncio.to_thread(
            ingestion.store_and_inspect,
            file.file,
            destination,
            max_bytes=settings.max_upload_bytes,
            max_mb=settings.max_upload_mb,
            sync_limit=settings.sync_upload_max_rows,
            range_rows=settings.upload_range_rows,
        )
    except ingestion.FileTooLarge:
        raise too_large(ctx) from None
    except CsvFormatError as exc:
        raise InputError([FieldError("file", exc.code, exc.message)]) from None
    try:
        result = await _register(ctx, principal.user_id, file, name, destination, summary)
    except BaseException:
        ingestion.remove_stored_file(str(destination))
        raise
    return result


async def _register(
    ctx: Context,
    user_id: int | None,
    file: UploadedFile,
    name: str,
    destination: Path,
    summary: ingestion.FileSummary,
) -> UploadCreated:
    async with ctx.uow.session() as session:
        upload = await ingestion.create_upload(
            session,
            ctx.clock,
            filename=name,
            original_filename=(file.filename or name).strip() or name,
            mime_type=CSV_MIME,
            file_size=summary.size,
            storage_path=str(destination),
            total_records=summary.total_rows,
            created_by=user_id,
        )
        if summary.rows is None:
            ranges.add_ranges(session, upload, summary.ranges)
            enqueue_after_commit(session, "uploads.ingest", upload.id)
            result = UploadCreated(
                upload=upload, queued=True, unrecognized_columns=summary.unrecognized_columns
            )
        else:
            checks = vop_logs.record_checks(ctx)
            run = await ingestion.ingest_small_upload(
                session, ctx.clock, upload, summary.rows, checks
            )
            if checks.failed:
                enqueue_after_commit(session, "vop.check_upload", upload.id)
            result = UploadCreated(
                upload=upload,
                queued=False,
                created=run.valid,
                failed=run.invalid,
                errors=_row_errors(summary.rows, run.failures),
                unrecognized_columns=summary.unrecognized_columns,
            )
    await ctx.uow.commit()
    return result


def _row_errors(
    rows: Sequence[ParsedRow], failures: Sequence[debtor_validation.RowFailure]
) -> list[dict[str, Any]]:
    data = {row.row_number: row.data for row in rows}
    return [
        {"row": f.row_number, "message": f.message, "data": data.get(f.row_number, {})}
        for f in sorted(failures, key=lambda f: f.row_number)
    ]


def check_status_filter(value: str | None, field: str = "status") -> str | None:
    """An upload status filter, or 422."""
    if value in (None, ""):
        return None
    if value not in {s.value for s in UploadStatus}:
        raise InputError([not_among(field)])
    return value


def _upload_conditions(status: str | None) -> list[ColumnElement[bool]]:
    return [Upload.status == status] if status else []


async def list_uploads(
    ctx: Context, *, status: str | None, page: int, per_page: int
) -> NumberedPage[Upload]:
    """A numbered page of uploads, newest first."""
    require_operator(ctx)
    status = check_status_filter(status)
    stmt = select(Upload).where(*_upload_conditions(status))
    async with ctx.uow.session() as session:
        return await numbered_page(session, stmt, Upload.id, page, per_page)


async def upload_connection(ctx: Context, *, status: str | None, window: Window) -> Page[Upload]:
    """A keyset page of uploads, newest first (GraphQL)."""
    require_operator(ctx)
    status = check_status_filter(status)
    stmt = select(Upload).where(*_upload_conditions(status))
    async with ctx.uow.session() as session:
        return await keyset_page(session, stmt, Upload.id, window)


async def get_upload(ctx: Context, upload_id: Any) -> Upload:
    """One upload, or NotFound."""
    require_operator(ctx)
    upload = await ctx.loaders.by(Upload.id).load(parse_id(upload_id, "Upload"))
    if upload is None:
        raise NotFound("Upload")
    return upload


# What an upload reached from a debtor shows, named one by one and read as a Core row of these
# columns (Loaders.by): a column added to the table later reaches it only when written here.
NODE_FIELDS = (
    "id",
    "filename",
    "original_filename",
    "file_size",
    "mime_type",
    "status",
    "total_records",
    "processed_records",
    "failed_records",
    "error_message",
    "processing_started_at",
    "processing_completed_at",
    "created_at",
    "updated_at",
)
NODE_COLUMNS = [getattr(Upload, key).label(key) for key in NODE_FIELDS]


async def upload_rows_by_ids(ctx: Context, ids: Collection[int]) -> dict[int, Row[Any]]:
    """Uploads among ids as rows of NODE_COLUMNS (operators only; others see none)."""
    if ctx.principal is None or not ctx.principal.is_operator:
        return {}
    rows = await ctx.loaders.by(Upload.id, NODE_COLUMNS).load_many(list(ids))
    return {row.id: row for row in rows if row is not None}


async def uploads_by_ids(ctx: Context, ids: Collection[int]) -> dict[int, Upload]:
    """Uploads among ids (operators only; others see none)."""
    if ctx.principal is None or not ctx.principal.is_operator:
        return {}
    rows = await ctx.loaders.by(Upload.id).load_many(list(ids))
    return {row.id: row for row in rows if row is not None}


def _counts_loader(ctx: Context) -> DataLoader:
    async def batch(keys: Sequence[int]) -> list[int]:
        async with ctx.uow.session() as session:
            counts = dict(
                (
                    await session.execute(
                        select(Debtor.upload_id, func.count())
                        .where(Debtor.upload_id.in_(set(keys)))
                        .group_by(Debtor.upload_id)
                    )
                ).all()
            )
        return [int(counts.get(key, 0)) for key in keys]

    return ctx.loaders.custom("uploads.debtors_count", batch)


def _stats_loader(ctx: Context) -> DataLoader:
    async def batch(keys: Sequence[int]) -> list[ValidationStats]:
        async with ctx.uow.session() as session:
            stats = await debtor_validation.stats_by_upload(session, keys)
        return [stats[key] for key in keys]

    return ctx.loaders.custom("uploads.validation_stats", batch)


async def debtors_count(ctx: Context, upload_id: int) -> int:
    """How many debtors an upload holds (batched across uploads)."""
    return await _counts_loader(ctx).load(upload_id)


async def debtors_counts(ctx: Context, upload_ids: Sequence[int]) -> list[int]:
    """Debtor counts of several uploads in one statement."""
    return await _counts_loader(ctx).load_many(list(upload_ids))


async def validation_stats(ctx: Context, upload_id: Any) -> ValidationStats:
    """The upload's debtors by validation outcome."""
    upload = await get_upload(ctx, upload_id)
    return await _stats_loader(ctx).load(upload.id)


async def validate_upload(ctx: Context, upload_id: Any) -> debtor_validation.ValidationRun:
    """Validate every pending debtor of an upload that is no longer being processed."""
    require_operator(ctx)
    key = parse_id(upload_id, "Upload")
    async with ctx.uow.session() as session:
        upload = await session.get(Upload, key)
        if upload is None:
            raise NotFound("Upload")
        if upload.status in {UploadStatus.PENDING, UploadStatus.PROCESSING}:
            raise Conflict("unprocessable", STILL_PROCESSING)
        run = await debtor_validation.validate_upload_debtors(session, ctx.clock, upload.id)
        await debtor_validation.recount(session, ctx.clock, upload)
        await vop_logs.check_upload_now_or_later(ctx, session, upload)
        ingestion.record_upload_event(session, ctx.clock, "upload.validated", upload)
    await ctx.uow.commit()
    return run


async def _load_upload(ctx: Context, message: BusMessage) -> Upload | None:
    return (await uploads_by_ids(ctx, [int(message.object_id)])).get(int(message.object_id))


async def watch_uploads(
    ctx: Context, upload_key: Callable[[], int | None]
) -> AsyncIterator[Upload]:
    """Each upload (or only the one ``upload_key`` names) after each of its events.

    Operators only; the key is read once the caller is known, so an id refused for its form
    tells another caller nothing.
    """
    require_operator(ctx)
    upload_id = upload_key()
    object_id = str(upload_id) if upload_id is not None else None
    topic = events.Topic(
        "upload",
        frozenset(UPLOAD_EVENTS),
        _load_upload,
        (lambda m: m.object_id == object_id) if object_id is not None else (lambda _m: True),
    )
    async for model in events.stream(ctx, topic):
        yield model
