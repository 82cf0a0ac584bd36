"""A billing attempt's outcome rules and a VOP log's score bands are properties of the domain
objects, so every face reads the same answer (PRODUCT.md §8, tether-api.md VOP score ranges)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from debtgraph.domain.payments.models import (
    FINAL_DECLINE_CODES,
    MAX_ATTEMPTS,
    BillingAttempt,
    BillingStatus,
    VopLog,
    attempt_may_follow,
)


def _attempt(
    status: str, number: int = 1, code: str | None = None, *, due: bool = True
) -> BillingAttempt:
    """An attempt as settling its answer leaves it: a retry due when one may follow."""
    attempt = BillingAttempt(status=status, attempt_number=number, error_code=code)
    if due and attempt_may_follow(status, code, number):
        attempt.next_retry_at = datetime(2026, 1, 6, tzinfo=UTC)
    return attempt


@pytest.mark.parametrize(
    ("attempt", "approved", "final", "retry"),
    [
        (_attempt(BillingStatus.PENDING), False, False, False),
        # The last allowed attempt still pending is not final yet: no answer has come.
        (_attempt(BillingStatus.PENDING, MAX_ATTEMPTS), False, False, False),
        (_attempt(BillingStatus.APPROVED), True, True, False),
        (_attempt(BillingStatus.VOIDED), False, True, False),
        (_attempt(BillingStatus.DECLINED, 1, "AM04"), False, False, True),
        (_attempt(BillingStatus.ERROR, 2), False, False, True),
        (_attempt(BillingStatus.DECLINED, 1, "AC04"), False, True, False),
        (_attempt(BillingStatus.DECLINED, MAX_ATTEMPTS, "AM04"), False, True, False),
        (_attempt(BillingStatus.ERROR, MAX_ATTEMPTS), False, True, False),
        # Once retried (or its series ended): no retry to come, and not the last answer either.
        (_attempt(BillingStatus.DECLINED, 1, "AM04", due=False), False, False, False),
    ],
)
def test_billing_attempt_outcome(
    attempt: BillingAttempt, approved: bool, final: bool, retry: bool
) -> None:
    assert (attempt.is_approved, attempt.is_final, attempt.can_retry) == (approved, final, retry)


def test_every_final_decline_code_ends_the_series() -> None:
    for code in FINAL_DECLINE_CODES:
        attempt = _attempt(BillingStatus.DECLINED, 1, code)
        assert (attempt.is_final, attempt.can_retry) == (True, False)


@pytest.mark.parametrize(
    ("score", "positive", "negative"),
    [(100, True, False), (60, True, False), (59, False, False), (40, False, False),
     (39, False, True), (0, False, True)],
)  # fmt: skip
def test_vop_log_score_bands(score: int, positive: bool, negative: bool) -> None:
    log = VopLog(vop_score=score)
    assert (log.is_positive, log.is_negative) == (positive, negative)
