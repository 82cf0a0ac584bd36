"""Verification-of-payee logs and SEPA direct-debit billing attempts."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from sqlalchemy import (
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    or_,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base
from debtgraph.domain.payments import vop


class BillingStatus(enum.StrEnum):
    """Gateway state of one debit attempt."""

    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"
    VOIDED = "voided"


# SEPA reason codes after which a debit must not be tried again (closed or blocked account, no
# mandate, refused by the debtor; PRODUCT.md §8), and how many attempts a debtor gets in all.
FINAL_DECLINE_CODES: frozenset[str] = frozenset({"AC04", "AC06", "AG01", "MD01", "MD06", "MS02"})
# Insufficient funds and "reason not specified": the debit is presented again (PRODUCT.md §8).
RETRYABLE_DECLINE_CODES: frozenset[str] = frozenset({"AM04", "MS03"})
MAX_ATTEMPTS = 3
# A retryable failure is presented again this long after its answer.
RETRY_INTERVAL: Final = timedelta(days=5)
_RETRYABLE_STATUSES: frozenset[str] = frozenset({BillingStatus.DECLINED, BillingStatus.ERROR})

# What each SEPA reason code means, as the error_message of an attempt declined with it.
SEPA_REASONS: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        "AC04": "Account closed",
        "AC06": "Account blocked",
        "AG01": "Transaction forbidden",
        "AM04": "Insufficient funds",
        "MD01": "No mandate",
        "MD06": "Refund requested by the debtor",
        "MS02": "Refused by the debtor",
        "MS03": "Reason not specified",
    }
)


class BillingChannel(enum.StrEnum):
    """How an attempt reaches the bank: through the gateway, or in a pain.008 file."""

    GATEWAY = "gateway"
    SEPA_FILE = "sepa_file"


# The result most checks have (the VOP sandbox's and most banks' answer for the named holder).
COMMON_RESULT: Final = "verified"


class VopLog(Base):
    """The result of one verification-of-payee check on a debtor's IBAN and name."""

    __tablename__ = "vop_logs"
    __table_args__ = (
        Index("ix_vop_logs_debtor_id_id", "debtor_id", "id"),
        Index("ix_vop_logs_upload_id_id", "upload_id", "id"),
        # The result filter across uploads, for the results worth looking for: "verified",
        # most checks, is left out, so most log inserts skip this index (2 µs a row of an
        # upload's log INSERT on PostgreSQL); its page is found in id order anyway and its
        # count reads most of the table with or without an index. The filter names the
        # result as a literal (resolvers/vop_logs.py), which the planner needs to use it.
        Index(
            "ix_vop_logs_result_id",
            "result",
            "id",
            postgresql_where=text(f"result <> '{COMMON_RESULT}'"),
            sqlite_where=text(f"result <> '{COMMON_RESULT}'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    # The debtor's upload, copied from the debtor row by every statement that writes a log (it
    # serves the upload filter's index). No foreign key of its own: the debtor's already holds
    # the upload, and deleting an upload deletes its debtors and so their logs. Its check, run once
    # per log row, cost a third of an upload's log INSERT (4 of 12 µs per row on PostgreSQL,
    # measured on 100,000 rows).
    upload_id: Mapped[int] = mapped_column(Integer)
    iban_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    iban_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    bank_identified: Mapped[bool] = mapped_column(Boolean, default=False)
    bank_name: Mapped[str | None] = mapped_column(String(200), default=None)
    bic: Mapped[str | None] = mapped_column(String(11), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    vop_score: Mapped[int] = mapped_column(Integer, default=0)
    score_label: Mapped[str] = mapped_column(String(10))
    result: Mapped[str] = mapped_column(String(20))
    epc_code: Mapped[str | None] = mapped_column(String(4), default=None)
    provider_name: Mapped[str | None] = mapped_column(String(200), default=None)
    name_ratio: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime]

    @property
    def is_positive(self) -> bool:
        """Whether the score counts as positive (VOP score ranges)."""
        return vop.is_positive(self.vop_score)

    @property
    def is_negative(self) -> bool:
        """Whether the score counts as negative (VOP score ranges)."""
        return vop.is_negative(self.vop_score)


class BillingAttempt(Base):
    """One SEPA direct-debit attempt for a debtor, with the gateway's answer."""

    __tablename__ = "billing_attempts"
    __table_args__ = (
        Index("ix_billing_attempts_debtor_id_id", "debtor_id", "id"),
        Index("ix_billing_attempts_upload_id_id", "upload_id", "id"),
        Index("ix_billing_attempts_status_id", "status", "id"),
        # Serves the retry cron: attempts whose next presentation is due.
        Index("ix_billing_attempts_next_retry_at", "next_retry_at"),
        # The double-charge guard: a debtor's n-th attempt exists at most once, whichever
        # request, job or worker creates it.
        UniqueConstraint("debtor_id", "attempt_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    transaction_id: Mapped[str] = mapped_column(String(64), unique=True)
    unique_id: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[str] = mapped_column(String(20), default=BillingStatus.PENDING.value)
    attempt_number: Mapped[int] = mapped_column(Integer, default=1)
    mid_reference: Mapped[str | None] = mapped_column(String(64), default=None)
    error_code: Mapped[str | None] = mapped_column(String(10), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    channel: Mapped[str] = mapped_column(String(20), default=BillingChannel.GATEWAY.value)
    next_retry_at: Mapped[datetime | None] = mapped_column(default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def is_approved(self) -> bool:
        """Whether the gateway took the money."""
        return attempt_is_approved(self.status)

    @property
    def is_final(self) -> bool:
        """Whether this attempt is the debtor's last: answered and nothing may follow it."""
        return attempt_is_final(self.status, self.error_code, self.attempt_number)

    @property
    def can_retry(self) -> bool:
        """Whether a retry of this failed attempt is still to come (see attempt_can_retry)."""
        return attempt_can_retry(
            self.status, self.error_code, self.attempt_number, self.next_retry_at
        )


# The rules of an attempt's state, on its column values: the model's properties above and a
# face reading attempts as plain rows of columns (schema/billing.py) answer by the same rule.


def attempt_is_approved(status: str) -> bool:
    """Whether the gateway took the money."""
    return status == BillingStatus.APPROVED


def _ends_the_series(status: str, error_code: str | None, attempt_number: int) -> bool:
    # Approved, voided, a final decline code or the last allowed attempt: no retry follows.
    return (
        attempt_is_approved(status)
        or status == BillingStatus.VOIDED
        or error_code in FINAL_DECLINE_CODES
        or attempt_number >= MAX_ATTEMPTS
    )


def attempt_is_final(status: str, error_code: str | None, attempt_number: int) -> bool:
    """Whether the attempt is the debtor's last: answered and nothing may follow it."""
    return _ends_the_series(status, error_code, attempt_number) and status != BillingStatus.PENDING


def attempt_may_follow(status: str, error_code: str | None, attempt_number: int) -> bool:
    """Whether this answer lets another attempt follow: a retryable failure short of the last.

    What settling an answer schedules a retry for (its ``next_retry_at``)."""
    return status in _RETRYABLE_STATUSES and not _ends_the_series(
        status, error_code, attempt_number
    )


def attempt_can_retry(
    status: str, error_code: str | None, attempt_number: int, next_retry_at: datetime | None
) -> bool:
    """Whether a retry of this failed attempt is still to come: another attempt may follow it
    and none has been presented yet.

    A retry (the operator's or the cron's) claims the failure by clearing its ``next_retry_at``,
    and so does a retry refused because the debtor's series ended (blacklisted since): from then
    on this attempt cannot be retried, whatever its own answer allowed (review: an attempt
    followed by a second one said ``can_retry`` forever, and a retry of it was refused)."""
    return next_retry_at is not None and attempt_may_follow(status, error_code, attempt_number)


def retryable_condition() -> ColumnElement[bool]:
    """SQL twin of :attr:`BillingAttempt.can_retry`, for set-wise selection (same constants)."""
    return and_(
        BillingAttempt.next_retry_at.is_not(None),
        BillingAttempt.status.in_(sorted(_RETRYABLE_STATUSES)),
        or_(
            BillingAttempt.error_code.is_(None),
            BillingAttempt.error_code.not_in(sorted(FINAL_DECLINE_CODES)),
        ),
        BillingAttempt.attempt_number < MAX_ATTEMPTS,
    )
