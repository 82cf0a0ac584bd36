"""Operator use cases on verification-of-payee logs, and the VOP runs other use cases start."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy import ColumnElement, Select, String, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.outbox import enqueue_after_commit
from debtgraph.domain.debtors.models import Debtor, Upload
from debtgraph.domain.payments import providers, verification
from debtgraph.domain.payments.models import VopLog
from debtgraph.domain.payments.vop import VopResult
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import FieldError, InputError
from debtgraph.resolvers.loaders import Page, Window, load_pages
from debtgraph.resolvers.pagination import (
    NumberedPage,
    id_filter,
    keyset_page,
    not_among,
    numbered_page,
)
from debtgraph.resolvers.permissions import require_operator

RESULTS: tuple[str, ...] = get_args(VopResult)

# What a VOP log of a nested page shows, named one by one and read as a Core row of these
# columns (see Loaders.pages): a column added to the table later reaches it only when written
# here.
NODE_FIELDS = (
    "id",
    "debtor_id",
    "upload_id",
    "iban_masked",
    "iban_valid",
    "bank_identified",
    "bank_name",
    "bic",
    "country",
    "vop_score",
    "score_label",
    "result",
    "epc_code",
    "provider_name",
    "name_ratio",
    "created_at",
)
NODE_COLUMNS = [getattr(VopLog, key).label(key) for key in NODE_FIELDS]


@dataclass(frozen=True, slots=True)
class VopLogFilters:
    """The filters both faces offer on VOP logs; every value already checked."""

    upload_id: int | None = None
    debtor_id: int | None = None
    result: str | None = None

    def as_key(self) -> tuple[tuple[str, Hashable], ...]:
        """A hashable form for dataloader keys (the parent's own id left out)."""
        return (("result", self.result),) if self.result is not None else ()


def check_filters(
    *, upload_id: Any = None, debtor_id: Any = None, result: str | None = None
) -> VopLogFilters:
    """Check filter values (422 naming each bad one); an unknown id gives an empty list."""
    errors: list[FieldError] = []
    upload_key = id_filter("upload_id", upload_id, errors)
    debtor_key = id_filter("debtor_id", debtor_id, errors)
    if result not in (None, "") and result not in RESULTS:
        errors.append(not_among("result"))
    if errors:
        raise InputError(errors)
    return VopLogFilters(upload_key, debtor_key, result or None)


def filter_conditions(values: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for checked filter values (also the page loader's filter builder)."""
    conditions: list[ColumnElement[bool]] = []
    if values.get("upload_id") is not None:
        conditions.append(VopLog.upload_id == values["upload_id"])
    if values.get("debtor_id") is not None:
        conditions.append(VopLog.debtor_id == values["debtor_id"])
    if values.get("result") is not None:
        # A literal, not a parameter: the result index leaves the common result out, and only
        # a known value lets the planner prove the index covers it (one of RESULTS, checked by
        # check_filters; SQLAlchemy quotes it).
        conditions.append(VopLog.result == literal(values["result"], String, literal_execute=True))
    return conditions


def _statement(filters: VopLogFilters) -> Select[Any]:
    values = {
        "upload_id": filters.upload_id,
        "debtor_id": filters.debtor_id,
        "result": filters.result,
    }
    return select(VopLog).where(*filter_conditions(values))


async def list_vop_logs(
    ctx: Context, *, page: int, per_page: int, **filters: Any
) -> NumberedPage[VopLog]:
    """``GET /api/admin/vop-logs``: a numbered page, newest first (operators only, asked first)."""
    require_operator(ctx)
    checked = check_filters(**filters)
    async with ctx.uow.session() as session:
        return await numbered_page(session, _statement(checked), VopLog.id, page, per_page)


async def find_vop_logs(
    ctx: Context,
    *,
    keys: Callable[[], tuple[str | None, str | None]],
    window: Window,
    result: str | None = None,
) -> Page[VopLog]:
    """``vopLogs`` (GraphQL): operators only, asked before the node keys and filters are read."""
    require_operator(ctx)
    upload_id, debtor_id = keys()
    checked = check_filters(upload_id=upload_id, debtor_id=debtor_id, result=result)
    async with ctx.uow.session() as session:
        return await keyset_page(session, _statement(checked), VopLog.id, window)


async def logs_of_many(
    ctx: Context,
    parent: Any,
    parent_ids: Sequence[int],
    *,
    window: Window,
    result: str | None = None,
) -> list[Page[Any] | Exception]:
    """A debtor's or an upload's logs (``parent`` is the VopLog column), for many parents at
    once: each one's page, or the error its page failed with (one windowed query).

    The logs are rows of NODE_COLUMNS, not entities."""
    require_operator(ctx)
    filters = check_filters(result=result)
    loader = ctx.loaders.pages(
        parent, filter_conditions, name=f"vop_logs.{parent.key}", columns=NODE_COLUMNS
    )
    return await load_pages(loader, parent_ids, window, filters.as_key())


async def logs_by_ids(ctx: Context, ids: list[int]) -> dict[int, VopLog]:
    """Logs among ids (operators only; others see none)."""
    if ctx.principal is None or not ctx.principal.is_operator:
        return {}
    rows = await ctx.loaders.by(VopLog.id).load_many(ids)
    return {row.id: row for row in rows if row is not None}


def record_checks(ctx: Context) -> verification.RecordChecks:
    """The VOP phase to run inside an upload's ingestion, with the configured provider."""
    return verification.RecordChecks(ctx.clock, providers.provider_in(ctx.services.ports))


async def check_debtor_now(ctx: Context, session: AsyncSession, debtor: Debtor) -> None:
    """Check a debtor just validated; if the provider fails, leave it to the job."""
    provider = providers.provider_in(ctx.services.ports)
    try:
        await verification.check_debtor(session, ctx.clock, provider, debtor)
    except providers.VopUnavailable:
        # Nothing of the check was written (the provider is asked first): the debtor waits,
        # unmarked, for the job.
        debtor.risk_class = None
        debtor.name_matched = None
        enqueue_after_commit(session, "vop.check_upload", debtor.upload_id)


async def check_upload_now_or_later(ctx: Context, session: AsyncSession, upload: Upload) -> None:
    """Check an upload's validated debtors: in the request when small, else by the job."""
    if upload.total_records > ctx.settings.sync_upload_max_rows:
        enqueue_after_commit(session, "vop.check_upload", upload.id)
        return
    provider = providers.provider_in(ctx.services.ports)
    try:
        # One batch at this size, and the provider is asked before it writes anything.
        await verification.check_upload(session, ctx.clock, provider, upload.id)
    except providers.VopUnavailable:
        enqueue_after_commit(session, "vop.check_upload", upload.id)
