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
from debtgraph.domain.receivables.parsing import (
    CURRENCY_MESSAGE,
    DEFAULT_CURRENCY,
    currency_code,
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


def parse_currency(raw: str | None) -> str:
    """``currency`` of the stats' amounts: EUR when absent; an ISO 4217 code in any case, else a
    400 (an empty value too)."""
    if raw is None:
        return DEFAULT_CURRENCY
    code = currency_code(raw)
    if code is None:
        raise InputError(
            [FieldError("currency", "invalid_currency", CURRENCY_MESSAGE.format(field="currency"))]
        )
    return code


async def recovery_stats(
    ctx: Context, period: stats.StatsPeriod, currency: str | None = None
) -> stats.RecoveryStats:
    """``GET /v1/reports/stats`` over the receivables the caller may see; the amounts of those
    in ``currency`` (EUR unless given; checked once the caller is known)."""
    principal = require_scope(ctx, REPORTS_READ)
    code = parse_currency(currency)
    async with ctx.uow.session() as session:
        return await stats.recovery_stats(
            session,
            receivable_visible_condition(principal, REPORTS_READ, ctx.clock.now()),
            period,
            ctx.clock.now(),
            code,
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
