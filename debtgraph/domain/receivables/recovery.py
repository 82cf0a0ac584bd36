"""Recovery escalation: the phase reached since the start and the indemnity due.

The phase is ``amicable`` for the first 30 days after the start, ``formal_notice`` (mise en
demeure) from day 30, ``legal`` from day 60.
"""

from __future__ import annotations

import enum
from decimal import Decimal


class RecoveryPhase(enum.StrEnum):
    """How far recovery has escalated."""

    AMICABLE = "amicable"
    FORMAL_NOTICE = "formal_notice"
    LEGAL = "legal"


FORMAL_NOTICE_AFTER_DAYS = 30
LEGAL_AFTER_DAYS = 60
INDEMNITY_PER_INVOICE = Decimal("40.00")


def recovery_phase(days_since_start: int) -> RecoveryPhase:
    """The phase reached ``days_since_start`` days after recovery started (30 / 60 day steps)."""
    # A negative count (clock skew between processes) is simply "not started long ago".
    if days_since_start >= LEGAL_AFTER_DAYS:
        return RecoveryPhase.LEGAL
    if days_since_start >= FORMAL_NOTICE_AFTER_DAYS:
        return RecoveryPhase.FORMAL_NOTICE
    return RecoveryPhase.AMICABLE


def indemnity_due(number_of_invoices: int, company_type: str) -> Decimal:
    """The fixed 40 EUR recovery indemnity per invoice (L441-10, D441-5); none for individuals."""
    if number_of_invoices < 0:
        raise ValueError("number_of_invoices must not be negative")
    # The indemnity is owed between professionals only; consumers never owe it.
    if company_type == "individual":
        return Decimal("0.00")
    return INDEMNITY_PER_INVOICE * number_of_invoices
