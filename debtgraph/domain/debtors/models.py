"""CSV uploads of consumer debtors, the debtors they hold, and the IBAN blacklist."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    exists,
    literal,
)
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base


class UploadStatus(enum.StrEnum):
    """Processing state of an upload."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


# An upload in one of these has finished ingesting: nothing more will change its counts.
FINISHED_UPLOAD_STATUSES: frozenset[str] = frozenset({UploadStatus.COMPLETED, UploadStatus.FAILED})
_CENT = Decimal("0.01")


def percent(part: int, total: int) -> Decimal:
    """part / total x 100 with two decimals, rounded half-even; 0.00 when total is 0."""
    if not total:
        return Decimal("0.00")
    return (Decimal(part) * 100 / total).quantize(_CENT, rounding=ROUND_HALF_EVEN)


class DebtorStatus(enum.StrEnum):
    """Collection state of a debtor."""

    PENDING = "pending"
    PROCESSING = "processing"
    RECOVERED = "recovered"
    FAILED = "failed"


class ValidationStatus(enum.StrEnum):
    """Stage-B validation state of a debtor row."""

    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"


class RiskClass(enum.StrEnum):
    """How risky collecting from a debtor looks (from the payee verification)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Upload(Base):
    """One CSV file an operator uploaded."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    original_filename: Mapped[str] = mapped_column(String(255))
    file_size: Mapped[int] = mapped_column(Integer)
    mime_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=UploadStatus.PENDING.value)
    total_records: Mapped[int] = mapped_column(Integer, default=0)
    processed_records: Mapped[int] = mapped_column(Integer, default=0)
    failed_records: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    storage_path: Mapped[str | None] = mapped_column(String(500), default=None)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    processing_started_at: Mapped[datetime | None] = mapped_column(default=None)
    processing_completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Ranges a queued upload is ingested in, and how many are done: the job that brings
    # ranges_done to ranges_total completes the upload (debtors/ranges.py).
    ranges_total: Mapped[int] = mapped_column(Integer, default=0)
    ranges_done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def progress(self) -> Decimal:
        """(processed + failed) / total x 100, two decimals half-even (PRODUCT.md §6)."""
        return upload_progress(self.processed_records, self.failed_records, self.total_records)

    @property
    def success_rate(self) -> Decimal:
        """processed / total x 100, two decimals half-even (PRODUCT.md §6)."""
        return upload_success_rate(self.processed_records, self.total_records)

    @property
    def is_complete(self) -> bool:
        """Whether ingestion has ended, well or badly."""
        return upload_is_complete(self.status)


# An upload's figures on its column values: the model's properties above and a face reading
# uploads as plain rows of columns (schema/uploads.py) answer by the same rule.


def upload_progress(processed: int, failed: int, total: int) -> Decimal:
    """(processed + failed) / total x 100, two decimals half-even (PRODUCT.md §6)."""
    return percent(processed + failed, total)


def upload_success_rate(processed: int, total: int) -> Decimal:
    """processed / total x 100, two decimals half-even (PRODUCT.md §6)."""
    return percent(processed, total)


def upload_is_complete(status: str) -> bool:
    """Whether ingestion has ended, well or badly."""
    return status in FINISHED_UPLOAD_STATUSES


class RangeStatus(enum.StrEnum):
    """Ingestion state of one range of an upload."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class UploadRange(Base):
    """Rows ``first_row``..``last_row`` of a queued upload, ingested by one job at a time."""

    __tablename__ = "upload_ranges"
    __table_args__ = (UniqueConstraint("upload_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    first_row: Mapped[int] = mapped_column(Integer)
    last_row: Mapped[int] = mapped_column(Integer)
    # Where first_row's line starts; None: read from the start of the file.
    byte_offset: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[str] = mapped_column(String(20), default=RangeStatus.PENDING.value)
    # The job holding the range (its job id); renewed with every chunk stored.
    claim_token: Mapped[str | None] = mapped_column(String(64), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class Debtor(Base):
    """One data row of an upload: a consumer to collect from by SEPA direct debit."""

    __tablename__ = "debtors"
    __table_args__ = (
        # Makes a retried ingestion job idempotent: a row is stored at most once.
        UniqueConstraint("upload_id", "row_number"),
        # Serves stage B's keyset over an upload's pending rows (ordered by id).
        Index("ix_debtors_upload_id_validation_status", "upload_id", "validation_status", "id"),
        Index("ix_debtors_status_id", "status", "id"),
        Index("ix_debtors_country", "country"),
        Index("ix_debtors_risk_class", "risk_class"),
        # No index on the IBAN: no query looks debtors up by it (final declines have their own
        # table, FinalDecline below, and the blacklist its own unique IBAN), and a
        # random key in an index as large as the table cost every stored row 4-5 µs.
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    raw_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    iban: Mapped[str | None] = mapped_column(String(34), default=None)
    iban_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    iban_valid: Mapped[bool | None] = mapped_column(Boolean, default=None)
    bank_name: Mapped[str | None] = mapped_column(String(200), default=None)
    bank_code: Mapped[str | None] = mapped_column(String(20), default=None)
    bic: Mapped[str | None] = mapped_column(String(11), default=None)
    first_name: Mapped[str | None] = mapped_column(String(200), default=None)
    last_name: Mapped[str | None] = mapped_column(String(200), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    national_id: Mapped[str | None] = mapped_column(String(50), default=None)
    birth_date: Mapped[date | None] = mapped_column(default=None)
    street: Mapped[str | None] = mapped_column(String(300), default=None)
    street_number: Mapped[str | None] = mapped_column(String(30), default=None)
    floor: Mapped[str | None] = mapped_column(String(30), default=None)
    door: Mapped[str | None] = mapped_column(String(30), default=None)
    apartment: Mapped[str | None] = mapped_column(String(30), default=None)
    postcode: Mapped[str | None] = mapped_column(String(30), default=None)
    city: Mapped[str | None] = mapped_column(String(200), default=None)
    province: Mapped[str | None] = mapped_column(String(200), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    amount: Mapped[Decimal | None] = mapped_column(default=None)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    sepa_type: Mapped[str] = mapped_column(String(10), default="CORE")
    status: Mapped[str] = mapped_column(String(20), default=DebtorStatus.PENDING.value)
    risk_class: Mapped[str | None] = mapped_column(String(10), default=None)
    name_matched: Mapped[bool | None] = mapped_column(Boolean, default=None)
    external_reference: Mapped[str | None] = mapped_column(String(100), default=None)
    validation_status: Mapped[str] = mapped_column(
        String(20), default=ValidationStatus.PENDING.value
    )
    validation_errors: Mapped[list[str] | None] = mapped_column(default=None)
    blacklisted: Mapped[bool] = mapped_column(Boolean, default=False)
    validated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# VOP risk classes billing may debit (PRODUCT.md §7): a high risk (negative VOP score or a final
# decline on the IBAN before) is not debited, and an unchecked debtor (no class yet) waits.
BILLABLE_RISK_CLASSES: tuple[str, ...] = ("low", "medium")


def billable_condition() -> ColumnElement[bool]:
    """Debtors ready for sync: the one rule of who may be charged (PRODUCT.md §7, §8).

    Valid, still a ``pending`` collection, VOP-checked and not high risk, with a valid IBAN and
    an amount, and not blacklisted: neither when validated nor on the list as it is now (the
    list may have grown since). The upload's ``ready_for_sync`` counts these; billing and the
    pain.008 export claim exactly these.
    """
    return and_(Debtor.status == DebtorStatus.PENDING.value, *_chargeable())


def still_collectable_condition() -> ColumnElement[bool]:
    """Debtors in collection a retry may charge again: the billable rule, status ``processing``.

    Checked again at every retry because the blacklist may have grown (and any other part of
    the rule changed) since the first attempt.
    """
    return and_(Debtor.status == DebtorStatus.PROCESSING.value, *_chargeable())


def awaiting_check_condition() -> ColumnElement[bool]:
    """Debtors validated, with an IBAN, whose VOP check has not been written yet (the risk class
    is the processed marker): the one rule, which ``ix_debtors_awaiting_check`` indexes.

    The status is compared with a literal: PostgreSQL uses a partial index only where it can
    prove the query's condition implies the index's, which a parameter never allows.
    """
    return and_(
        Debtor.validation_status
        != literal(ValidationStatus.PENDING.value, String, literal_execute=True),
        Debtor.iban.is_not(None),
        Debtor.risk_class.is_(None),
    )


# The debtors still to check, by upload: ingestion stores rows checked already, so this index
# holds only what a failed provider or a stored upload's validation left (none, mostly), and
# the checks after an upload completes, and the sweep, read it instead of every debtor.
Index(
    "ix_debtors_awaiting_check",
    Debtor.upload_id,
    Debtor.id,
    postgresql_where=awaiting_check_condition(),
    sqlite_where=awaiting_check_condition(),
)


class FinalDecline(Base):
    """A billing attempt answered with a final decline code, and the IBAN it debited.

    An IBAN's history, beside the blacklist: the billable rule below reads both as they are now
    (the attempt is the payments area's; the row is written there, read here and there).

    What a later check of the same IBAN asks (PRODUCT.md §7: high risk after a previous final
    decline), kept apart so that asking costs a lookup in this small table, not one in the
    debtors' IBAN index for each IBAN of a 5,000-row chunk: that index cost every ingested row
    (a random key in a large index) and was read only here. Written by ``billing.settle`` in the
    attempt's own transaction; gone with the attempt.
    """

    __tablename__ = "final_declines"
    __table_args__ = (Index("ix_final_declines_iban", "iban"),)

    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("billing_attempts.id", ondelete="CASCADE"), primary_key=True
    )
    iban: Mapped[str] = mapped_column(String(34))
    created_at: Mapped[datetime]


def _chargeable() -> tuple[ColumnElement[bool], ...]:
    # Every part of the billable rule except the collection status: kept here once.
    return (
        Debtor.validation_status == ValidationStatus.VALID.value,
        Debtor.risk_class.in_(BILLABLE_RISK_CLASSES),
        Debtor.blacklisted.is_(False),
        Debtor.iban_valid.is_(True),
        Debtor.iban.is_not(None),
        Debtor.amount > 0,
        ~exists().where(BlacklistedIban.iban == Debtor.iban),
        # A final decline on the IBAN, ever (another upload's debtor's, or this one's): the high
        # risk PRODUCT.md §7 names, read as the table is now, not as the row's check found it.
        ~exists().where(FinalDecline.iban == Debtor.iban),
    )


class BlacklistedIban(Base):
    """An IBAN operators refuse to debit; stored normalised (no spaces, upper case)."""

    __tablename__ = "iban_blacklist"

    id: Mapped[int] = mapped_column(primary_key=True)
    iban: Mapped[str] = mapped_column(String(34), unique=True)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime]
