"""Amount parsing in European and US notation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from debtgraph.domain.core.base import Money
from debtgraph.domain.debtors.amounts import parse_amount


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("150.00", "150.00"),
        ("150,00", "150.00"),
        ("150", "150.00"),
        ("1 234,56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1\u00a0234,56", "1234.56"),
        ("1\u202f234,56", "1234.56"),
        ("1\u2009234\u2009567.8", "1234567.80"),
        ("1.234.567", "1234567.00"),
        ("1,234,567.89", "1234567.89"),
        ("1,234", "1234.00"),
        ("1.234", "1234.00"),
        ("0,125", "0.13"),
        ("1234,567", "1234.57"),
        ("1 234,567", "1234.57"),
        ("12,5", "12.50"),
        ("0.005", "0.01"),
        (",50", "0.50"),
        ("-20", "-20.00"),
        ("+20", "20.00"),
        ("-1.234,50", "-1234.50"),
        ("150,00 €", "150.00"),
        ("€150", "150.00"),
        ("EUR 99.9", "99.90"),
        ("-0", "0.00"),
        ("  50000  ", "50000.00"),
    ],
)
def test_parse_amount(raw: str, expected: str) -> None:
    value = parse_amount(raw)
    assert value == Decimal(expected)
    assert str(value) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "\u00a0"])
def test_blank_is_none(raw: str | None) -> None:
    assert parse_amount(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        *("abc", "12 34", "1,2,3", "1.234.56,7", "1 234.567,89", "--5", "1e5", "1.", "€", "-"),
        "NaN",
        # Digits of other scripts, which Decimal reads (outside review: Arabic-Indic 123 was 123).
        "\u0661\u0662\u0663",
        "\u0967\u0968,\u0966\u0966",
        "1\u0662,50",
        "\uff11\uff12\uff13",  # fullwidth
    ],
)
def test_garbage_raises(raw: str) -> None:
    with pytest.raises(ValueError, match="Invalid amount"):
        parse_amount(raw)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("10.50"),
        Decimal("10.5"),
        Decimal("-0.00"),
        Decimal("1E+3"),
        Decimal("0.005"),
        Decimal("9999999999.99"),
        10.5,
        "3.14159",
        7,
    ],
)
def test_money_reads_a_decimal_as_its_text_would(value: object) -> None:
    # The Decimal fast path (asyncpg's values) answers what the text round trip answers.
    read = Money().process_result_value(value, None)  # type: ignore[arg-type]
    expected = Decimal(str(value)).quantize(Decimal("0.01"))
    assert (str(read), type(read)) == (str(expected), Decimal)


def test_an_amount_of_any_length_parses() -> None:
    # The default context (28 digits) made quantize raise InvalidOperation for 27+ digits:
    # an upload of such a cell answered 500, or its job failed and the upload stayed
    # processing for good.
    assert parse_amount("1" * 40) == Decimal("1" * 40 + ".00")
    assert parse_amount("-" + "9" * 30 + ",995") == Decimal("-" + "1" + "0" * 30 + ".00")
    assert parse_amount("12 345 678 901 234 567 890 123 456 789,12") == Decimal(
        "12345678901234567890123456789.12"
    )
