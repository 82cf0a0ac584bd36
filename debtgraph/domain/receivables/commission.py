"""Cleavr's published commission: a rate by the invoice's age (days past its due date).

Ages are counted in whole days from the due date to the submission day. An invoice not yet due
(negative age) is quoted at the first band's rate with ``days_overdue`` 0: a quote is a price
list lookup, and it is what the recovery would cost once the invoice falls due. Refusing such
invoices is receivable creation's job (``invoice_not_overdue``), not the price list's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from debtgraph.domain.core.errors import DomainValidationError, FieldError

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CommissionBand:
    """Ages ``min_days``..``max_days`` (inclusive; None = unbounded) pay ``rate`` percent."""

    min_days: int
    max_days: int | None
    rate: Decimal

    def contains(self, days: int) -> bool:
        """Whether an invoice aged ``days`` falls in this band."""
        return days >= self.min_days and (self.max_days is None or days <= self.max_days)


COMMISSION_BANDS: tuple[CommissionBand, ...] = (
    CommissionBand(0, 44, Decimal("10.80")),
    CommissionBand(45, 89, Decimal("15.90")),
    CommissionBand(90, 179, Decimal("20.60")),
    CommissionBand(180, 364, Decimal("25.70")),
    CommissionBand(365, 546, Decimal("27.50")),
    CommissionBand(547, None, Decimal("29.50")),
)


@dataclass(frozen=True, slots=True)
class CommissionQuote:
    """The rate (percent), commission and net amount for one invoice amount."""

    rate: Decimal
    commission: Decimal
    net: Decimal
    days_overdue: int


def days_overdue(due_date: date, today: date) -> int:
    """Whole days past the due date; 0 for an invoice not yet due."""
    return max(0, (today - due_date).days)


def band_for(due_date: date, today: date) -> CommissionBand:
    """The band that applies to an invoice with this due date, submitted today."""
    age = days_overdue(due_date, today)
    return next(band for band in COMMISSION_BANDS if band.contains(age))


def rate_for(due_date: date, today: date) -> Decimal:
    """The commission rate in percent (e.g. ``Decimal("15.90")``) for this due date, today."""
    return band_for(due_date, today).rate


def calculate(amount: Decimal, due_date: date, today: date) -> CommissionQuote:
    """Commission and net for an amount, rounded half-up to the cent; the amount must be > 0."""
    # A float here means money went through binary floating point somewhere upstream.
    if not isinstance(amount, Decimal):
        raise TypeError("amount must be a Decimal")
    if not amount.is_finite() or amount <= 0:
        raise DomainValidationError(
            [FieldError("amount", "out_of_range", "amount must be a number greater than 0.")]
        )
    rate = rate_for(due_date, today)
    commission = (amount * rate / 100).quantize(_CENT, rounding=ROUND_HALF_UP)
    # net is derived from the rounded commission so that commission + net == amount exactly.
    return CommissionQuote(
        rate=rate,
        commission=commission,
        net=amount - commission,
        days_overdue=days_overdue(due_date, today),
    )
