"""Recovery statistics (PRODUCT.md §3) over receivables created in a period ending now.

Decisions:

- Periods are rolling windows ending now: ``last_month`` 30 days, ``last_quarter`` 90 days,
  ``last_year`` 365 days; ``all_time`` (the default) has no start.
- ``total_amount_recovered`` sums what debtors actually paid (``amount_recovered``) over the
  period's receivables, partial payments included; ``total_recovered`` counts status recovered.
- The amounts are those of one currency (``currency``, EUR unless asked): adding EUR to USD
  answers a figure in neither. Counts, durations and rates cover every receivable of the
  period, whatever its currency.
- ``avg_days_to_recovery`` is the mean of (recovered_at - created_at) in days, one decimal; 0
  when nothing was recovered. Success rates are ratios 0..1 with four decimals.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.receivables.models import Contact, Receivable, ReceivableStatus


class StatsPeriod(enum.StrEnum):
    """The ``period`` values of ``GET /v1/reports/stats``."""

    LAST_MONTH = "last_month"
    LAST_QUARTER = "last_quarter"
    LAST_YEAR = "last_year"
    ALL_TIME = "all_time"


PERIOD_DAYS = {
    StatsPeriod.LAST_MONTH: 30,
    StatsPeriod.LAST_QUARTER: 90,
    StatsPeriod.LAST_YEAR: 365,
}


@dataclass(frozen=True, slots=True)
class RecoveryStats:
    """The seed's ``RecoveryStats``."""

    total_sent: int
    total_recovered: int
    total_amount_sent: Decimal
    total_amount_recovered: Decimal
    avg_days_to_recovery: Decimal
    with_phone_success_rate: Decimal
    without_phone_success_rate: Decimal
    # The currency of the two amounts (not in the seed's RecoveryStats: its faces show it or not).
    currency: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (Decimals render as numbers)."""
        return asdict(self)


def period_start(period: StatsPeriod, now: datetime) -> datetime | None:
    """The first instant counted for a period (None for all time)."""
    days = PERIOD_DAYS.get(period)
    return None if days is None else now - timedelta(days=days)


def _rate(recovered: int, sent: int) -> Decimal:
    if sent == 0:
        return Decimal("0")
    return (Decimal(recovered) / Decimal(sent)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


async def recovery_stats(
    session: AsyncSession,
    scope: ColumnElement[bool],
    period: StatsPeriod,
    now: datetime,
    currency: str,
) -> RecoveryStats:
    """Figures over the receivables matching ``scope`` created since the period's start, the
    amounts of those in ``currency`` (an ISO 4217 code, upper case)."""
    conditions: list[ColumnElement[bool]] = [scope]
    start = period_start(period, now)
    if start is not None:
        conditions.append(Receivable.created_at >= start)
    has_phone = exists().where(
        and_(
            Contact.receivable_id == Receivable.id,
            Contact.phone.is_not(None),
            Contact.phone != "",
        )
    )
    is_recovered = Receivable.status == ReceivableStatus.RECOVERED.value
    in_currency = Receivable.currency == currency
    grouped = (
        await session.execute(
            select(
                has_phone.label("has_phone"),
                func.count(),
                func.sum(case((is_recovered, 1), else_=0)),
                func.coalesce(func.sum(case((in_currency, Receivable.amount), else_=0)), 0),
                func.coalesce(
                    func.sum(case((in_currency, Receivable.amount_recovered), else_=0)), 0
                ),
            )
            .where(*conditions)
            .group_by(has_phone)
        )
    ).all()
    sent = {bool(row[0]): (int(row[1]), int(row[2] or 0)) for row in grouped}
    amount_sent = sum((Decimal(str(row[3])) for row in grouped), Decimal("0"))
    amount_recovered = sum((Decimal(str(row[4])) for row in grouped), Decimal("0"))
    # Durations are computed here rather than in SQL: date arithmetic differs per database.
    durations = (
        await session.execute(
            select(Receivable.created_at, Receivable.recovered_at).where(
                *conditions, is_recovered, Receivable.recovered_at.is_not(None)
            )
        )
    ).all()
    days = [
        (recovered - created).total_seconds() / 86400
        for created, recovered in durations
        if recovered is not None
    ]
    average = Decimal(str(sum(days) / len(days))) if days else Decimal("0")
    with_phone, without_phone = sent.get(True, (0, 0)), sent.get(False, (0, 0))
    return RecoveryStats(
        total_sent=with_phone[0] + without_phone[0],
        total_recovered=with_phone[1] + without_phone[1],
        total_amount_sent=amount_sent.quantize(Decimal("0.01")),
        total_amount_recovered=amount_recovered.quantize(Decimal("0.01")),
        avg_days_to_recovery=average.quantize(Decimal("0.1"), ROUND_HALF_UP),
        with_phone_success_rate=_rate(with_phone[1], with_phone[0]),
        without_phone_success_rate=_rate(without_phone[1], without_phone[0]),
        currency=currency,
    )
