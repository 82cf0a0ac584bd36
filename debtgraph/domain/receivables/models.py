"""Receivables (overdue B2B invoices under recovery), their contacts, events and evidence."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from debtgraph.domain.core.base import Base

# The debtor's company name, and its comparison key, as stored (rules.normalize_company_name).
NAME_LENGTH = 200


class ReceivableStatus(enum.StrEnum):
    """Lifecycle of a receivable (PRODUCT.md §3)."""

    PENDING = "pending"
    IN_PROCESS = "in_process"
    PAYMENT_RECEIVED = "payment_received"
    RECOVERED = "recovered"
    DISPUTED = "disputed"
    EVIDENCE_REQUESTED = "evidence_requested"
    CANCELLED = "cancelled"


class Receivable(Base):
    """An overdue invoice (or group of invoices) a creditor sent for recovery."""

    __tablename__ = "receivables"
    __table_args__ = (
        Index("ix_receivables_user_id_id", "user_id", "id"),
        Index("ix_receivables_platform_id_id", "platform_id", "id"),
        Index("ix_receivables_status_id", "status", "id"),
        Index("ix_receivables_user_id_debtor_name_key", "user_id", "debtor_name_key"),
        Index("ix_receivables_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The platform that submitted it: the tenant whose API key may see it.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(30), default=ReceivableStatus.PENDING.value)
    invoice_numbers: Mapped[list[str]] = mapped_column(default=list)
    issue_date: Mapped[date]
    due_date: Mapped[date]
    service_description: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[Decimal]
    amount_before_tax: Mapped[Decimal | None] = mapped_column(default=None)
    tax_amount: Mapped[Decimal | None] = mapped_column(default=None)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    debtor_company_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    debtor_name_key: Mapped[str] = mapped_column(String(NAME_LENGTH))
    debtor_company_type: Mapped[str] = mapped_column(String(20), default="company")
    debtor_siret: Mapped[str | None] = mapped_column(String(14), default=None)
    debtor_vat_number: Mapped[str | None] = mapped_column(String(20), default=None)
    debtor_address: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    commission_rate: Mapped[Decimal | None] = mapped_column(default=None)
    amount_recovered: Mapped[Decimal] = mapped_column(default=Decimal("0.00"))
    awaiting_decision: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[str] = mapped_column(String(20), default="amicable")
    actions_count: Mapped[int] = mapped_column(Integer, default=0)
    last_action: Mapped[str | None] = mapped_column(String(100), default=None)
    next_action_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    recovered_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    cancel_notes: Mapped[str | None] = mapped_column(Text, default=None)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    contacts: Mapped[list[Contact]] = relationship(lazy="raise", order_by="Contact.id")


class Contact(Base):
    """A person at the debtor company to reach about the receivable."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    receivable_id: Mapped[int] = mapped_column(
        ForeignKey("receivables.id", ondelete="CASCADE"), index=True
    )
    first_name: Mapped[str | None] = mapped_column(String(100), default=None)
    last_name: Mapped[str | None] = mapped_column(String(100), default=None)
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    job_title: Mapped[str | None] = mapped_column(String(100), default=None)
    level: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class ReceivableEvent(Base):
    """One entry of a receivable's history: a transition or an action, with actor and reason."""

    __tablename__ = "receivable_events"
    __table_args__ = (Index("ix_receivable_events_receivable_id_id", "receivable_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    receivable_id: Mapped[int] = mapped_column(ForeignKey("receivables.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30), default=None)
    to_status: Mapped[str | None] = mapped_column(String(30), default=None)
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(40), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class Evidence(Base):
    """Documents and a statement a creditor submits against a dispute."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    receivable_id: Mapped[int] = mapped_column(
        ForeignKey("receivables.id", ondelete="CASCADE"), index=True
    )
    statement: Mapped[str | None] = mapped_column(Text, default=None)
    documents: Mapped[list[Any]] = mapped_column(default=list)
    submitted_by: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime]
