"""Values printed on an invoice: amounts, dates and payment terms, in French and English."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

# Thousands separators seen in practice: space, no-break space, narrow no-break space, dot, comma,
# apostrophe (Swiss). The decimal separator is whichever of "," or "." comes last with 1-2 digits.
_SPACES = "\u00a0\u202f\u2009 "
AMOUNT_RE = re.compile(
    r"(?<![\w.,])[-\u2212]?\(?"
    r"(?:[€$£]\s?)?"
    r"(?:\d{1,3}(?:[" + _SPACES + r".,'](?=\d{3})\d{3})+|\d+)"
    r"(?:[.,]\d{1,2})?"
    r"\)?(?:\s?(?:€|EUR|USD|GBP|CHF|\$|£))?(?![\w%])"
)
_CURRENCY_SIGNS = {"€": "EUR", "$": "USD", "£": "GBP"}
CURRENCY_RE = re.compile(r"(€|\$|£|\bEUR\b|\bUSD\b|\bGBP\b|\bCHF\b|\beuros?\b)", re.IGNORECASE)


def currency_of(text: str) -> str | None:
    """The ISO 4217 code of the first currency sign or code in a text."""
    match = CURRENCY_RE.search(text)
    if match is None:
        return None
    token = match.group(1)
    if token in _CURRENCY_SIGNS:
        return _CURRENCY_SIGNS[token]
    token = token.upper()
    return "EUR" if token.startswith("EURO") else token


def parse_amount(token: str) -> Decimal | None:
    """A printed amount ("1 234,56 €", "1,234.56", "-1.234,56", "(12.00)") as a Decimal."""
    text = token.strip()
    negative = text.startswith(("-", "\u2212")) or (text.startswith("(") and text.endswith(")"))
    text = re.sub(r"[^\d.,]", "", text.replace("'", ""))
    if not text or not any(c.isdigit() for c in text):
        return None
    last_sep = max(text.rfind(","), text.rfind("."))
    if last_sep != -1 and len(text) - last_sep - 1 in (1, 2):
        whole, cents = text[:last_sep], text[last_sep + 1 :]
    else:
        whole, cents = text, ""
    whole = re.sub(r"[.,]", "", whole)
    try:
        value = Decimal(f"{whole or '0'}.{cents or '0'}")
    except InvalidOperation:
        return None
    return (-value if negative else value).quantize(Decimal("0.01"))


def amounts_in(text: str) -> list[Decimal]:
    """Every amount printed in a text, in order (percentages and bare years excluded)."""
    found: list[Decimal] = []
    for match in AMOUNT_RE.finditer(text):
        token = match.group(0)
        digits = re.sub(r"\D", "", token)
        has_decimals = re.search(r"[.,]\d{1,2}\)?(?:\s?\S+)?$", token.strip()) is not None
        has_currency = re.search(r"[€$£]|EUR|USD|GBP|CHF", token) is not None
        # A bare integer is a quantity, a year or a reference, not money.
        if not has_decimals and not has_currency:
            continue
        if len(digits) > 13:
            continue
        value = parse_amount(token)
        if value is not None:
            found.append(value)
    return found


FRENCH_MONTHS = {
    "janvier": 1,
    "janv": 1,
    "février": 2,
    "fevrier": 2,
    "févr": 2,
    "fevr": 2,
    "mars": 3,
    "avril": 4,
    "avr": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "août": 8,
    "aout": 8,
    "septembre": 9,
    "sept": 9,
    "octobre": 10,
    "oct": 10,
    "novembre": 11,
    "nov": 11,
    "décembre": 12,
    "decembre": 12,
    "déc": 12,
    "dec": 12,
}
ENGLISH_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name} | {
    name.lower(): i for i, name in enumerate(calendar.month_abbr) if name
}
ENGLISH_MONTHS["sept"] = 9
MONTHS = FRENCH_MONTHS | ENGLISH_MONTHS
_MONTH_ALT = "|".join(sorted(map(re.escape, MONTHS), key=len, reverse=True))

DATE_RE = re.compile(
    r"(?P<iso>\b(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})\b)"
    r"|(?P<num>\b(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<c>\d{4}|\d{2})\b)"
    r"|(?P<dmy>\b(?P<d1>\d{1,2})(?:er|st|nd|rd|th)?\s+(?P<m1>"
    + _MONTH_ALT
    + r")\.?,?\s+(?P<y1>\d{4})\b)"
    r"|(?P<mdy>\b(?P<m2>"
    + _MONTH_ALT
    + r")\.?\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{4})\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class FoundDate:
    """A date read from a text, and whether day and month could be swapped."""

    value: date
    ambiguous: bool = False


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def dates_in(text: str, *, month_first: bool = False) -> list[FoundDate]:
    """Every date in a text; numeric dates are day-first unless ``month_first`` (US usage)."""
    found: list[FoundDate] = []
    for m in DATE_RE.finditer(text):
        value: date | None = None
        ambiguous = False
        if m.group("iso"):
            value = _make(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
        elif m.group("num"):
            a, b, c = int(m.group("a")), int(m.group("b")), int(m.group("c"))
            year = c + 2000 if c < 100 else c
            day_first = _make(year, b, a)
            month_first_date = _make(year, a, b)
            if day_first and month_first_date and a != b:
                ambiguous = True
            preferred = month_first_date if month_first else day_first
            value = preferred or day_first or month_first_date
            if value is not None and not (day_first and month_first_date):
                ambiguous = False
        elif m.group("dmy"):
            value = _make(int(m.group("y1")), MONTHS[m.group("m1").lower()], int(m.group("d1")))
        elif m.group("mdy"):
            value = _make(int(m.group("y2")), MONTHS[m.group("m2").lower()], int(m.group("d2")))
        if value is not None:
            found.append(FoundDate(value, ambiguous))
    return found


def end_of_month(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


# "30 jours fin de mois", "45 jours FDM", "30 jours fin de mois le 10", "fin de mois le 10",
# "à 30 jours", "30 jours net", "Net 30", "payable within 30 days", "30 days end of month",
# "à réception", "upon receipt".
_DAY_OF_NEXT_MONTH = r"(?:\s*,?\s*le\s+(\d{1,2})\b)"
_TERMS_EOM_AFTER = re.compile(
    r"(\d{1,3})\s*(?:jours|days|j)\s*(?:fin\s+de\s+mois|fdm|end\s+of\s+(?:the\s+)?month|eom)"
    + _DAY_OF_NEXT_MONTH
    + "?",
    re.IGNORECASE,
)
_TERMS_EOM_BEFORE = re.compile(
    r"(?:fin\s+de\s+mois|end\s+of\s+(?:the\s+)?month)\s*\+\s*(\d{1,3})\s*(?:jours|days|j)?",
    re.IGNORECASE,
)
_TERMS_EOM_ON = re.compile(r"\b(?:fin\s+de\s+mois|fdm)" + _DAY_OF_NEXT_MONTH, re.IGNORECASE)
_TERMS_DAYS = re.compile(
    r"(?:\bnet\s*(\d{1,3})\b|(\d{1,3})\s*(?:jours|days)(?:\s+net)?\b)", re.IGNORECASE
)
_TERMS_RECEIPT = re.compile(
    r"(?:à|a|dès)\s+réception|upon\s+receipt|on\s+receipt|due\s+on\s+receipt|comptant",
    re.IGNORECASE,
)
TERMS_LABEL = re.compile(
    r"(conditions?\s+de\s+(?:paiement|règlement|reglement)|délai\s+de\s+paiement|"
    r"payment\s+terms?|terms?\s*:|règlement\s*:|paiement\s*:|payable)",
    re.IGNORECASE,
)


def _on_day_of_next_month(month_end: date, day: str | None) -> date:
    """``month_end``, or with "le D" the D-th of the month after it (its last day at most)."""
    if day is None or not 1 <= int(day) <= 31:
        return month_end
    first = month_end + timedelta(days=1)
    return first.replace(day=min(int(day), end_of_month(first).day))


def due_from_terms(text: str, issue: date) -> date | None:
    """The due date that payment terms printed in ``text`` give for an invoice issued on ``issue``.

    "30 jours fin de mois" is the common accounting reading (one of the two the DGCCRF admits
    under L441-10): 30 days after issue, then the end of that month; "fin de mois + 30 jours" is
    the other, the end of the issue month, then 30 days, and is only read when spelled so.
    "… fin de mois le 10" pays on the 10th of the month after that month's end.
    """
    if m := _TERMS_EOM_AFTER.search(text):
        month_end = end_of_month(issue + timedelta(days=int(m.group(1))))
        return _on_day_of_next_month(month_end, m.group(2))
    if m := _TERMS_EOM_BEFORE.search(text):
        return end_of_month(issue) + timedelta(days=int(m.group(1)))
    if m := _TERMS_EOM_ON.search(text):
        return _on_day_of_next_month(end_of_month(issue), m.group(1))
    if m := _TERMS_DAYS.search(text):
        return issue + timedelta(days=int(m.group(1) or m.group(2)))
    if _TERMS_RECEIPT.search(text):
        return issue
    return None
