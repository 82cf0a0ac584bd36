"""Reports: recovery statistics within the caller's reach, and Cleavr's commission price list."""

from __future__ import annotations

from typing import Any

from debtgraph.domain.core.errors import PayloadReader
from debtgraph.domain.receivables import stats
from debtgraph.domain.receivables.commission import (
    COMMISSION_BANDS,
    CommissionBand,
    CommissionQuote,
    calculate,
)
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.creditors import require_scope
from debtgraph.resolvers.errors import FieldError, InputError
from debtgraph.resolvers.permissions import REPORTS_READ, require_principal
from debtgraph.resolvers.receivables import receivable_visible_condition


def parse_period(raw: str | None) -> stats.StatsPeriod:
    """``period`` (default ``all_time`` when absent); anything else, "" too, is a 400."""
    if raw is None:
        return stats.StatsPeriod.ALL_TIME
    try:
        return stats.StatsPeriod(raw)
    except ValueError:
        choices = ", ".join(p.value for p in stats.StatsPeriod)
        raise InputError(
            [FieldError("period", "invalid_choice", f"period must be one of: {choices}.")]
        ) from None


async def recovery_stats(ctx: Context, period: stats.StatsPeriod) -> stats.RecoveryStats:
    """``GET /v1/reports/stats`` over the receivables the caller may see."""
    principal = require_scope(ctx, REPORTS_READ)
    async with ctx.uow.session() as session:
        return await stats.recovery_stats(
            session,
            receivable_visible_condition(principal, REPORTS_READ, ctx.clock.now()),
            period,
            ctx.clock.now(),
        )


def commission_rates(ctx: Context) -> tuple[CommissionBand, ...]:
    """The published bands (any authenticated caller)."""
    require_principal(ctx)
    return COMMISSION_BANDS


def commission_quote(ctx: Context, payload: dict[str, Any]) -> CommissionQuote:
    """``POST /v1/commission/calculate``: amount and due date → rate, commission, net."""
    require_principal(ctx)
    reader = PayloadReader()
    amount = reader.money(payload.get("amount"), "amount", required=True, positive=True)
    due_date = reader.iso_date(payload.get("due_date"), "due_date", required=True)
    reader.raise_if_any()
    assert amount is not None
    assert due_date is not None
    return calculate(amount, due_date, ctx.clock.today())
