"""The receivable status machine (PRODUCT.md §3) and how a payment moves it.

Decisions where PRODUCT.md §3 leaves room:

- ``submit_evidence`` is accepted from ``disputed`` as well as from ``evidence_requested``: the
  diagram's bottom line joins both states to ``in_process``, and a creditor holding proof should
  not have to wait for the operator to ask for it. Evidence never sends a receivable back to
  ``disputed`` (no action models that).
- ``payout`` needs the receivable fully paid; ``continue_recovery`` and ``mark_complete`` (the
  creditor's partial-payment decision) need it to await that decision. A partial payment moves
  ``in_process`` to ``payment_received`` and sets ``awaiting_decision``.
- A payment is at most the amount remaining: money recovered on a claim cannot exceed the claim
  (``amount_recovered`` and the stats would count money nobody owed), so more is refused on
  ``amount`` rather than recorded or silently capped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from debtgraph.domain.core.errors import DomainValidationError, FieldError, InvalidTransition
from debtgraph.domain.receivables.models import ReceivableStatus


class ReceivableAction(enum.StrEnum):
    """What can happen to a receivable (each one is an event in its history)."""

    START = "start"
    PAYMENT = "payment"
    PAYOUT = "payout"
    CONTINUE_RECOVERY = "continue_recovery"
    MARK_COMPLETE = "mark_complete"
    DISPUTE = "dispute"
    REQUEST_EVIDENCE = "request_evidence"
    SUBMIT_EVIDENCE = "submit_evidence"
    CANCEL = "cancel"


class PartialPaymentAction(enum.StrEnum):
    """The creditor's decision after a partial payment (``POST …/partial-payment``)."""

    CONTINUE_RECOVERY = ReceivableAction.CONTINUE_RECOVERY.value
    MARK_COMPLETE = ReceivableAction.MARK_COMPLETE.value


class CancelReason(enum.StrEnum):
    """Why a creditor cancelled a recovery (``POST /v1/receivables/{id}/cancel``)."""

    PAID_DIRECTLY = "paid_directly"
    DISPUTED_VALID = "disputed_valid"
    BUSINESS_DECISION = "business_decision"
    INCORRECT_SUBMISSION = "incorrect_submission"


_S = ReceivableStatus
_A = ReceivableAction

TERMINAL_STATUSES: frozenset[ReceivableStatus] = frozenset({_S.RECOVERED, _S.CANCELLED})

TRANSITIONS: dict[tuple[ReceivableStatus, ReceivableAction], ReceivableStatus] = {
    (_S.PENDING, _A.START): _S.IN_PROCESS,
    (_S.IN_PROCESS, _A.PAYMENT): _S.PAYMENT_RECEIVED,
    (_S.PAYMENT_RECEIVED, _A.PAYOUT): _S.RECOVERED,
    (_S.PAYMENT_RECEIVED, _A.CONTINUE_RECOVERY): _S.IN_PROCESS,
    (_S.PAYMENT_RECEIVED, _A.MARK_COMPLETE): _S.RECOVERED,
    (_S.IN_PROCESS, _A.DISPUTE): _S.DISPUTED,
    (_S.DISPUTED, _A.REQUEST_EVIDENCE): _S.EVIDENCE_REQUESTED,
    (_S.EVIDENCE_REQUESTED, _A.SUBMIT_EVIDENCE): _S.IN_PROCESS,
    (_S.DISPUTED, _A.SUBMIT_EVIDENCE): _S.IN_PROCESS,
    **{(status, _A.CANCEL): _S.CANCELLED for status in _S if status not in TERMINAL_STATUSES},
}


# Operators drive recovery; the creditor side (the creditor or its platform) only cancels, answers
# a dispute with evidence and decides after a partial payment.
OPERATOR_ACTIONS: frozenset[ReceivableAction] = frozenset(
    {_A.START, _A.PAYMENT, _A.PAYOUT, _A.DISPUTE, _A.REQUEST_EVIDENCE}
)


def next_status(
    status: str, action: str, *, fully_paid: bool = False, awaiting_decision: bool = False
) -> ReceivableStatus:
    """The status after ``action``, or InvalidTransition; guards use the payment state."""
    try:
        current, act = ReceivableStatus(status), ReceivableAction(action)
    except ValueError:
        raise InvalidTransition(status, action) from None
    target = TRANSITIONS.get((current, act))
    if target is None:
        raise InvalidTransition(status, action)
    if act is _A.PAYOUT and not fully_paid:
        raise InvalidTransition(status, action, "Only a fully paid receivable can be paid out.")
    if act in (_A.CONTINUE_RECOVERY, _A.MARK_COMPLETE) and not awaiting_decision:
        raise InvalidTransition(
            status, action, "This receivable is not awaiting a partial-payment decision."
        )
    return target


def allowed_actions(
    status: str,
    *,
    fully_paid: bool = False,
    awaiting_decision: bool = False,
    operator: bool = True,
) -> list[ReceivableAction]:
    """The actions ``next_status`` would accept now from this side, in declaration order."""
    allowed = []
    for action in ReceivableAction:
        if not operator and action in OPERATOR_ACTIONS:
            continue
        try:
            next_status(status, action, fully_paid=fully_paid, awaiting_decision=awaiting_decision)
        except InvalidTransition:
            continue
        allowed.append(action)
    return allowed


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """The receivable's figures after a payment is recorded."""

    status: ReceivableStatus
    amount_recovered: Decimal
    amount_remaining: Decimal
    fully_paid: bool
    awaiting_decision: bool


def remaining_due(amount: Decimal, amount_recovered: Decimal) -> Decimal:
    """What the debtor still owes on a receivable of ``amount`` (never negative)."""
    return max(Decimal("0.00"), amount - amount_recovered)


def apply_payment(
    status: str, amount: Decimal, amount_recovered: Decimal, payment: Decimal
) -> PaymentOutcome:
    """Record a debtor payment on an ``in_process`` receivable, at most what remains due."""
    if not payment.is_finite() or payment <= 0:
        raise ValueError("a payment must be a positive amount")
    target = next_status(status, _A.PAYMENT)
    remaining = remaining_due(amount, amount_recovered)
    if payment > remaining:
        raise DomainValidationError([overpayment_error(remaining)])
    recovered = amount_recovered + payment
    fully_paid = recovered >= amount
    return PaymentOutcome(
        status=target,
        amount_recovered=recovered,
        amount_remaining=remaining_due(amount, recovered),
        fully_paid=fully_paid,
        awaiting_decision=not fully_paid,
    )


def overpayment_error(remaining: Decimal) -> FieldError:
    """The refusal of a payment larger than the receivable's amount remaining."""
    return FieldError(
        "amount",
        "out_of_range",
        f"amount must not exceed {remaining}, the amount remaining on this receivable.",
    )
