"""``recoveryStats`` and the commission price list."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.types import Info

from debtgraph.domain.receivables.stats import StatsPeriod as DomainPeriod
from debtgraph.resolvers import reports
from debtgraph.schema.base import ctx_of


@strawberry.enum(description="Window of receivable creation the statistics cover.")
class StatsPeriod(enum.Enum):
    LAST_MONTH = "last_month"
    LAST_QUARTER = "last_quarter"
    LAST_YEAR = "last_year"
    ALL_TIME = "all_time"


@strawberry.type(description="Recovery statistics (GET /v1/reports/stats).")
class RecoveryStats:
    total_sent: int
    total_recovered: int
    total_amount_sent: Decimal
    total_amount_recovered: Decimal
    avg_days_to_recovery: Decimal
    with_phone_success_rate: Decimal
    without_phone_success_rate: Decimal
    currency: str = strawberry.field(
        description="The ISO 4217 currency of the two amounts: only receivables in it add to them."
    )


@strawberry.type(description="One band of the commission price list.")
class CommissionBand:
    min_days: int
    max_days: int | None
    rate: Decimal


@strawberry.type(description="Commission on an amount (POST /v1/commission/calculate).")
class CommissionQuote:
    rate: Decimal
    commission: Decimal
    net: Decimal
    days_overdue: int


@strawberry.type
class ReportQuery:
    @strawberry.field(description="Recovery statistics over the receivables within reach.")
    async def recovery_stats(
        self,
        info: Info,
        period: StatsPeriod = StatsPeriod.ALL_TIME,
        currency: Annotated[
            str | None,
            strawberry.argument(
                description="ISO 4217 code of the amounts (EUR when not given); counts and "
                "rates cover every currency."
            ),
        ] = None,
    ) -> RecoveryStats:
        result = await reports.recovery_stats(ctx_of(info), DomainPeriod(period.value), currency)
        return RecoveryStats(**result.as_dict())

    @strawberry.field(description="Commission rates by the invoice's age at submission.")
    def commission_rates(self, info: Info) -> list[CommissionBand]:
        return [
            CommissionBand(min_days=b.min_days, max_days=b.max_days, rate=b.rate)
            for b in reports.commission_rates(ctx_of(info))
        ]

    @strawberry.field(description="Commission and net for an amount and a due date, today.")
    def commission_quote(self, info: Info, amount: Decimal, due_date: date) -> CommissionQuote:
        quote = reports.commission_quote(
            ctx_of(info), {"amount": amount, "due_date": due_date.isoformat()}
        )
        return CommissionQuote(
            rate=quote.rate,
            commission=quote.commission,
            net=quote.net,
            days_overdue=quote.days_overdue,
        )
