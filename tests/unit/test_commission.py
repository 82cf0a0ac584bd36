"""Commission bands and quotes."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from debtgraph.domain.core.errors import DomainValidationError
from debtgraph.domain.receivables.commission import (
    COMMISSION_BANDS,
    CommissionQuote,
    calculate,
    days_overdue,
    rate_for,
)

TODAY = date(2025, 6, 15)


def due(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


def test_bands_as_published() -> None:
    assert [(b.min_days, b.max_days, b.rate) for b in COMMISSION_BANDS] == [
        (0, 44, Decimal("10.80")),
        (45, 89, Decimal("15.90")),
        (90, 179, Decimal("20.60")),
        (180, 364, Decimal("25.70")),
        (365, 546, Decimal("27.50")),
        (547, None, Decimal("29.50")),
    ]


@pytest.mark.parametrize(
    ("age", "rate"),
    [
        (0, "10.80"),
        (1, "10.80"),
        (44, "10.80"),
        (45, "15.90"),
        (89, "15.90"),
        (90, "20.60"),
        (179, "20.60"),
        (180, "25.70"),
        (364, "25.70"),
        (365, "27.50"),
        (546, "27.50"),
        (547, "29.50"),
        (5000, "29.50"),
    ],
)
def test_rate_at_band_boundaries(age: int, rate: str) -> None:
    assert rate_for(due(age), TODAY) == Decimal(rate)


def test_not_yet_due_is_quoted_at_the_first_band() -> None:
    assert rate_for(TODAY + timedelta(days=10), TODAY) == Decimal("10.80")
    assert days_overdue(TODAY + timedelta(days=10), TODAY) == 0
    assert calculate(Decimal("100.00"), TODAY + timedelta(days=1), TODAY).days_overdue == 0


def test_calculate_rounds_half_up_to_the_cent() -> None:
    # 1000.05 * 10.80 % = 108.0054 -> 108.01
    assert calculate(Decimal("1000.05"), due(10), TODAY) == CommissionQuote(
        rate=Decimal("10.80"),
        commission=Decimal("108.01"),
        net=Decimal("892.04"),
        days_overdue=10,
    )
    # 12.50 * 15.90 % = 1.9875 -> 1.99
    quote = calculate(Decimal("12.50"), due(45), TODAY)
    assert (quote.commission, quote.net) == (Decimal("1.99"), Decimal("10.51"))
    # 10.05 * 29.50 % = 2.96475 -> 2.96
    assert calculate(Decimal("10.05"), due(600), TODAY).commission == Decimal("2.96")
    # 1.50 * 10.80 % = 0.162 -> 0.16 ; exact half: 25.00 * 10.80 % = 2.70
    assert calculate(Decimal("1.50"), due(0), TODAY).commission == Decimal("0.16")


def test_commission_plus_net_is_the_amount() -> None:
    quote = calculate(Decimal("12345.67"), due(200), TODAY)
    assert quote.commission + quote.net == Decimal("12345.67")
    assert quote.commission == Decimal("3172.84")  # 12345.67 * 25.70 % = 3172.837...


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-5.00"), Decimal("NaN"), Decimal("Inf")])
def test_calculate_refuses_non_positive_amounts(amount: Decimal) -> None:
    with pytest.raises(DomainValidationError) as caught:
        calculate(amount, due(10), TODAY)
    assert (caught.value.field, caught.value.code) == ("amount", "out_of_range")


def test_calculate_refuses_floats() -> None:
    with pytest.raises(TypeError):
        calculate(100.0, due(10), TODAY)  # type: ignore[arg-type]
