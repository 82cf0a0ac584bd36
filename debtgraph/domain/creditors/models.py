"""Users: operators (role admin) and creditor companies (role creditor), and operator tokens."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base
from debtgraph.domain.core.concurrency import DUPLICATE_ERROR
from debtgraph.domain.core.errors import FieldError

# The unique constraint is the check: a read first would let concurrent creations pass it.
EMAIL_TAKEN = FieldError("email", "email_taken", "A user with this email already exists.")
# Column lengths the payload readers hold their fields to (a longer value failed the insert).
NAME_LENGTH = 200
WEBSITE_LENGTH = 300
CALLBACK_URL_LENGTH = 500


def display_name(company_name: str | None, email: str) -> str:
    """A user's name: the company's, else the email, cut to the column (an email may be 254
    characters long, the name 200)."""
    return (company_name or email)[:NAME_LENGTH]


class Role(enum.StrEnum):
    """What a user is."""

    ADMIN = "admin"
    CREDITOR = "creditor"


class UserStatus(enum.StrEnum):
    """Creditor onboarding status (operators are always active)."""

    PENDING_ONBOARDING = "pending_onboarding"
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class KybStatus(enum.StrEnum):
    """Know-your-business verification of the creditor company."""

    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class User(Base):
    """A person or company that signs in: an operator, or a creditor onboarded by a platform."""

    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_platform_id_created_at", "platform_id", "created_at"),
        Index("ix_users_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(
        String(254), unique=True, info={DUPLICATE_ERROR: EMAIL_TAKEN}
    )
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(30), default=UserStatus.ACTIVE.value)
    # The platform that created the creditor (its tenant); null for operators.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="SET NULL"), default=None
    )
    company_name: Mapped[str | None] = mapped_column(String(200), default=None)
    company_siret: Mapped[str | None] = mapped_column(String(14), default=None, index=True)
    company_vat_number: Mapped[str | None] = mapped_column(String(20), default=None)
    company_address: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    company_website: Mapped[str | None] = mapped_column(String(WEBSITE_LENGTH), default=None)
    company_phone: Mapped[str | None] = mapped_column(String(40), default=None)
    contact_first_name: Mapped[str | None] = mapped_column(String(100), default=None)
    contact_last_name: Mapped[str | None] = mapped_column(String(100), default=None)
    contact_phone: Mapped[str | None] = mapped_column(String(40), default=None)
    contact_job_title: Mapped[str | None] = mapped_column(String(100), default=None)
    tos_accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    tos_acceptance_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    bank_iban: Mapped[str | None] = mapped_column(String(34), default=None)
    representative_document: Mapped[str | None] = mapped_column(Text, default=None)
    kyb_status: Mapped[str] = mapped_column(String(20), default=KybStatus.UNVERIFIED.value)
    callback_url: Mapped[str | None] = mapped_column(String(CALLBACK_URL_LENGTH), default=None)
    platform_metadata: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # Hash of the one-time token behind onboarding_url / the set-password link.
    onboarding_token_hash: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    onboarding_token_used_at: Mapped[datetime | None] = mapped_column(default=None)
    onboarding_started_on: Mapped[date | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class AccessToken(Base):
    """An operator's API token, shown once as ``"{id}|{secret}"``; only the hash is kept."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="api")
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
