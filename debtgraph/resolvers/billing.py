"""Operator use cases on billing: attempts lists, start, void, retry, SEPA files, callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from debtgraph.domain.debtors.models import Upload, UploadStatus
from debtgraph.domain.payments import billing as billing_service
from debtgraph.domain.payments import gateways, sepa
from debtgraph.domain.payments.models import BillingAttempt, BillingChannel, BillingStatus
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import (
    Conflict,
    FieldError,
    InputError,
    InvalidTransition,
    NotFound,
)
from debtgraph.resolvers.loaders import Page, Window, load_pages
from debtgraph.resolvers.pagination import (
    NumberedPage,
    id_filter,
    keyset_page,
    not_among,
    numbered_page,
)
from debtgraph.resolvers.permissions import require_operator
from debtgraph.resolvers.uploads import STILL_PROCESSING, parse_id

# The day a pain.008 asks the debtor's bank to collect: SEPA CORE needs one business day.
COLLECTION_LEAD = timedelta(days=1)
PAIN002_REQUIRED = "The file field is required."

# What a billing attempt of a nested page shows, named one by one and read as a Core row of
# these columns (see Loaders.pages): a column added to the table later reaches it only when
# written here.
NODE_FIELDS = (
    "id",
    "debtor_id",
    "upload_id",
    "transaction_id",
    "unique_id",
    "amount",
    "currency",
    "status",
    "attempt_number",
    "mid_reference",
    "error_code",
    "error_message",
    "channel",
    "next_retry_at",
    "processed_at",
    "created_at",
    "updated_at",
)
NODE_COLUMNS = [getattr(BillingAttempt, key).label(key) for key in NODE_FIELDS]


@dataclass(frozen=True, slots=True)
class AttemptFilters:
    """The filters both faces offer on billing attempt lists; every value already checked."""

    upload_id: int | None = None
    debtor_id: int | None = None
    status: str | None = None

    def as_key(self) -> tuple[tuple[str, Hashable], ...]:
        """A hashable form for dataloader keys."""
        return tuple(
            (name, value)
            for name in ("upload_id", "debtor_id", "status")
            if (value := getattr(self, name)) is not None
        )


def check_filters(
    *, upload_id: Any = None, debtor_id: Any = None, status: str | None = None
) -> AttemptFilters:
    """Check filter values (422 naming each bad one); unknown ids simply match nothing."""
    errors: list[FieldError] = []
    upload_key = id_filter("upload_id", upload_id, errors)
    debtor_key = id_filter("debtor_id", debtor_id, errors)
    if status not in (None, "") and status not in {s.value for s in BillingStatus}:
        errors.append(not_among("status"))
    if errors:
        raise InputError(errors)
    return AttemptFilters(upload_key, debtor_key, status or None)


def filter_conditions(values: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for checked filter values (also the page loaders' filter builder)."""
    conditions: list[ColumnElement[bool]] = []
    for name, column in (
        ("upload_id", BillingAttempt.upload_id),
        ("debtor_id", BillingAttempt.debtor_id),
        ("status", BillingAttempt.status),
    ):
        if values.get(name) is not None:
            conditions.append(column == values[name])
    return conditions


def _statement(filters: AttemptFilters) -> Select[Any]:
    return select(BillingAttempt).where(*filter_conditions(dict(filters.as_key())))


async def list_attempts(
    ctx: Context, filters: AttemptFilters, *, page: int, per_page: int
) -> NumberedPage[BillingAttempt]:
    """A numbered page of billing attempts, newest first."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        return await numbered_page(session, _statement(filters), BillingAttempt.id, page, per_page)


async def find_attempts(
    ctx: Context,
    *,
    keys: Callable[[], tuple[str | None, str | None]],
    status: str | None,
    window: Window,
) -> Page[BillingAttempt]:
    """``billingAttempts`` (GraphQL): operators only, asked before the ids are read."""
    require_operator(ctx)
    upload_key, debtor_key = keys()
    filters = check_filters(upload_id=upload_key, debtor_id=debtor_key, status=status)
    async with ctx.uow.session() as session:
        return await keyset_page(session, _statement(filters), BillingAttempt.id, window)


async def attempts_pages(
    ctx: Context,
    parent: Any,
    parent_ids: Sequence[int],
    *,
    window: Window,
    status: str | None = None,
) -> list[Page[Any] | Exception]:
    """A debtor's or an upload's attempts (``parent`` is the column), for many parents at once:
    each one's page, or the error it failed with (one windowed query per request shape).

    The attempts are rows of NODE_COLUMNS, not entities. Operators only, asked here as the VOP
    logs' edge asks it, not left to whoever reached the parent."""
    require_operator(ctx)
    filters = check_filters(status=status)
    loader = ctx.loaders.pages(
        parent, filter_conditions, name="billing_attempts", columns=NODE_COLUMNS
    )
    return await load_pages(loader, parent_ids, window, filters.as_key())


async def attempts_by_ids(ctx: Context, ids: list[int]) -> dict[int, BillingAttempt]:
    """Billing attempts among ids (operators only; others see none)."""
    if ctx.principal is None or not ctx.principal.is_operator:
        return {}
    rows = await ctx.loaders.by(BillingAttempt.id).load_many(ids)
    return {row.id: row for row in rows if row is not None}


@dataclass(frozen=True, slots=True)
class BillingStarted:
    """The attempts a start created."""

    upload_id: int
    attempts: list[BillingAttempt]


async def _billable_upload(ctx: Context, session: Any, upload_id: Any) -> int:
    key = parse_id(upload_id, "Upload")
    upload = await session.get(Upload, key)
    if upload is None:
        raise NotFound("Upload")
    if upload.status in {UploadStatus.PENDING, UploadStatus.PROCESSING}:
        raise Conflict("unprocessable", STILL_PROCESSING)
    return key


async def start_billing(ctx: Context, upload_id: Any) -> BillingStarted:
    """Bill an upload's ready-for-sync debtors through the gateway (answers come by job)."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        key = await _billable_upload(ctx, session, upload_id)
        attempts = await billing_service.start_billing(session, ctx.clock, key)
    await ctx.uow.commit()
    return BillingStarted(key, attempts)


async def void_attempt(ctx: Context, attempt_id: Any) -> BillingAttempt:
    """Cancel a pending attempt (an approved or settled one is refused)."""
    require_operator(ctx)
    key = parse_id(attempt_id, "BillingAttempt")
    async with ctx.uow.session() as session:
        try:
            attempt = await billing_service.void_attempt(session, ctx.clock, key)
        except LookupError:
            raise NotFound("BillingAttempt") from None
    await ctx.uow.commit()
    return attempt


async def retry_attempt(ctx: Context, attempt_id: Any) -> BillingAttempt:
    """Present a retryable failure again now, without waiting for the cron; the new attempt."""
    require_operator(ctx)
    key = parse_id(attempt_id, "BillingAttempt")
    async with ctx.uow.session() as session:
        if await session.get(BillingAttempt, key) is None:
            raise NotFound("BillingAttempt")
        created = await billing_service.retry_attempts(session, ctx.clock, attempt_id=key)
    # Committed either way: a debtor no longer billable ends the series (the attempt's
    # can_retry false, the debtor failed), which is what the refusal then says.
    await ctx.uow.commit()
    if not created:
        raise InvalidTransition("failed", "retry", billing_service.NOT_COLLECTABLE)
    return created[0]


def creditor(ctx: Context) -> sepa.Creditor:
    """The creditor pain.008 files collect for, from the settings."""
    s = ctx.settings
    return sepa.Creditor(
        name=s.sepa_creditor_name,
        iban=s.sepa_creditor_iban,
        bic=s.sepa_creditor_bic or None,
        creditor_id=s.sepa_creditor_id,
    )


async def export_pain008(ctx: Context, upload_id: Any) -> sepa.Pain008:
    """Collect an upload through its bank: a pain.008 file of the attempts it creates."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        key = await _billable_upload(ctx, session, upload_id)
        file = await sepa.export_collection(
            session, ctx.clock, key, creditor(ctx), ctx.clock.today() + COLLECTION_LEAD
        )
    await ctx.uow.commit()
    return file


def pain008_filename(upload_id: int, file: sepa.Pain008) -> str:
    """The download name of an exported file."""
    return f"pain008-upload-{upload_id}-{file.message_id}.xml"


async def _read_file(ctx: Context, file: Any) -> bytes:
    limit = ctx.settings.max_upload_bytes
    if file is None or file == "":
        raise InputError([FieldError("file", "required", PAIN002_REQUIRED)])
    if not hasattr(file, "read"):
        raise InputError([FieldError("file", "invalid", "The file field must be a file.")])
    # From its start, as an upload's file (resolvers.uploads): a File variable may be read twice.
    seek = getattr(file, "seek", None)
    if seek is not None:
        await seek(0)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            [
                FieldError(
                    "file",
                    "too_large",
                    f"The file is too large: the maximum size is {ctx.settings.max_upload_mb} MB.",
                )
            ]
        )
    return bytes(data)


async def import_pain002(ctx: Context, file: Any) -> sepa.ImportResult:
    """Settle the attempts a bank's pain.002 status report names (all or nothing)."""
    require_operator(ctx)
    data = await _read_file(ctx, file)
    limit = ctx.settings.max_upload_bytes
    # Parsing is CPU work: off the event loop, before any database work.
    report = await asyncio.to_thread(sepa.parse_pain002, data, max_bytes=limit)
    async with ctx.uow.session() as session:
        result = await sepa.import_status_report(session, ctx.clock, report)
    await ctx.uow.commit()
    return result


async def gateway_callback(
    ctx: Context, headers: Mapping[str, str], read_body: Callable[[], Awaitable[bytes]]
) -> int:
    """Apply a real gateway's signed answers; the number of attempts they settled.

    The body is read once the route exists and the headers could be a signed callback: an
    unsigned or stale request, or any request while no secret is set, is refused unread.
    """
    secret = ctx.settings.billing_callback_secret
    if not secret:
        raise NotFound("Resource")
    gateways.check_callback_headers(headers, ctx.clock.now())
    body = await read_body()
    answers = gateways.verify_callback(secret, headers, body, ctx.clock.now())
    async with ctx.uow.session() as session:
        settlement = await billing_service.settle(
            session, ctx.clock, answers, channel=BillingChannel.GATEWAY, strict=False
        )
    await ctx.uow.commit()
    return len(settlement.settled)
