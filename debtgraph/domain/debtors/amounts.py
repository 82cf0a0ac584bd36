"""Money amounts as people type them in spreadsheets, in European and US notation.

Accepted: ``150.00``, ``150,00``, ``1 234,56``, ``1.234,56``, ``1,234.56``, ``-20``, ``+20``, a
leading or trailing ``€``/``EUR``, and regular, no-break, thin or figure spaces as thousands
separators. Thousands groups must have exactly three digits.

Which of ``,`` and ``.`` is the decimal separator:

* both occur → the last one is the decimal separator (``1.234,56`` and ``1,234.56``);
* one of them occurs several times → thousands separator (``1.234.567``);
* one occurs once → decimal separator, except when it is followed by exactly three digits and
  preceded by one to three digits that do not start with 0: then it is a thousands separator, so
  ``1,234`` and ``1.234`` are both 1234. Euro amounts never have three decimals, and this is how
  a US reader reads ``1,234`` and a European reader reads ``1.234``. ``0,125`` stays 0.13, and a
  separator after space-grouped thousands (``1 234,567``) is always the decimal one.

Results are rounded half up to two decimals. Digits are ASCII digits only.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Final

_CENT: Final = Decimal("0.01")
_SPACES: Final = re.compile(r"[ \u00a0\u2007\u2008\u2009\u200a\u202f]+")
_CURRENCY: Final = re.compile(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", re.IGNORECASE)
_GROUPED: Final = re.compile(r"\d{1,3}(?:[ ,.]\d{3})+", re.ASCII)
_LEADING_GROUP: Final = re.compile(r"[1-9]\d{0,2}", re.ASCII)
_BODY: Final = re.compile(r"[0-9 ,.]+")


def _split_decimal(body: str) -> tuple[str, str | None]:
    """Split ``body`` into its integer part (with group separators) and its decimals."""
    commas, dots = body.count(","), body.count(".")
    if commas and dots:
        decimal_mark = "," if body.rfind(",") > body.rfind(".") else "."
        if body.count(decimal_mark) > 1:
            raise ValueError(body)
        whole, _, decimals = body.rpartition(decimal_mark)
        return whole, decimals
    if commas + dots == 0:
        return body, None
    mark = "," if commas else "."
    if commas + dots > 1:
        return body, None
    whole, _, decimals = body.partition(mark)
    if len(decimals) == 3 and " " not in whole and _LEADING_GROUP.fullmatch(whole):
        return body, None
    return whole, decimals


def _integer_digits(whole: str) -> str:
    """Check the thousands grouping of an integer part and return its bare digits."""
    if whole.isdigit() or whole == "":
        return whole
    separators = {char for char in whole if not char.isdigit()}
    if len(separators) != 1 or not _GROUPED.fullmatch(whole):
        raise ValueError(whole)
    return whole.replace(separators.pop(), "")


# How nearly every amount of an upload is written: ASCII digits, then a comma or dot and two
# decimals, or none; nothing in it that the rules below could read otherwise.
_PLAIN: Final = re.compile(r"(\d{1,15})(?:[,.](\d\d))?", re.ASCII)


def parse_amount(raw: str | None) -> Decimal | None:
    """Parse an amount to a Decimal with two decimals; None when blank, ValueError on garbage."""
    if raw is None:
        return None
    plain = _PLAIN.fullmatch(raw)
    if plain is not None:
        return Decimal(f"{plain[1]}.{plain[2] or '00'}")
    text = _SPACES.sub(" ", raw).strip()
    if not text:
        return None
    text = _CURRENCY.sub("", text).strip()
    sign = ""
    if text[:1] in {"+", "-"}:
        sign, text = text[0], _CURRENCY.sub("", text[1:].strip()).strip()
    # ASCII digits only: Decimal reads "١٢٣" (and other scripts' digits) as 123, which no
    # spreadsheet of an operator's writes and no person reviewing the row would read.
    if not text or not _BODY.fullmatch(text) or not any(c.isdigit() for c in text):
        raise ValueError(f"Invalid amount: {raw!r}")
    try:
        whole, decimals = _split_decimal(text)
        digits = _integer_digits(whole)
    except ValueError as error:
        raise ValueError(f"Invalid amount: {raw!r}") from error
    if decimals is not None and not decimals.isdigit():
        raise ValueError(f"Invalid amount: {raw!r}")
    value = Decimal(f"{sign}{digits or '0'}.{decimals or '0'}")
    # Rounded with room for every digit: the default context's 28 digits made a longer amount
    # (a cell of 27 digits or more) an InvalidOperation, which no caller expects of a number.
    exact = Context(prec=len(digits) + 3)
    value = value.quantize(_CENT, rounding=ROUND_HALF_UP, context=exact)
    # "-0" and "-0.00" are zero, not a negative amount.
    return value if value else Decimal("0.00")
