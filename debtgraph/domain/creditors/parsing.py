"""Reading a ``POST /v1/users`` payload into a typed draft (PRODUCT.md §2).

Decisions:

- ``tos_acceptance.date`` may be ISO 8601 (naive = UTC) or Unix seconds, and may not be more than
  5 minutes in the future of ``now`` (clock skew between the platform and us).
- Unknown keys in the payload are ignored (forward compatibility with newer clients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from debtgraph.domain.core.errors import (
    DomainValidationError,
    FieldError,
    PayloadReader,
    input_fields,
)
from debtgraph.domain.creditors.kyb import (
    AddressDraft,
    check_company,
    normalize_siret,
    normalize_vat,
    read_address,
)
from debtgraph.domain.creditors.models import CALLBACK_URL_LENGTH, WEBSITE_LENGTH
from debtgraph.domain.creditors.requirements import TOS_CLOCK_SKEW, OnboardingSnapshot


@dataclass(frozen=True, slots=True)
class CompanyDraft:
    """A validated ``Company``; SIRET as 14 digits, VAT as ``FR`` + 11 characters."""

    name: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address: AddressDraft | None = None
    website: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class UserContactDraft:
    """A validated ``UserContact``."""

    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    job_title: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformDraft:
    """The platform's own data about the user."""

    callback_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TosAcceptanceDraft:
    """When and from where the creditor accepted the terms of service."""

    date: datetime
    ip: str


@dataclass(frozen=True, slots=True)
class UserDraft:
    """A validated ``CreateUserRequest``."""

    email: str
    company: CompanyDraft = field(default_factory=CompanyDraft)
    contact: UserContactDraft = field(default_factory=UserContactDraft)
    platform: PlatformDraft = field(default_factory=PlatformDraft)
    tos_acceptance: TosAcceptanceDraft | None = None

    def snapshot(self, created_at: datetime, now: datetime) -> OnboardingSnapshot:
        """The onboarding snapshot of a user created from this draft."""
        return OnboardingSnapshot(
            created_at=created_at,
            now=now,
            company_name=self.company.name,
            company_siret=self.company.siret,
            company_vat_number=self.company.vat_number,
            company_address=self.company.address,
            contact_first_name=self.contact.first_name,
            contact_last_name=self.contact.last_name,
            tos_accepted_at=self.tos_acceptance.date if self.tos_acceptance else None,
        )


def _read_company(reader: PayloadReader, value: Any) -> CompanyDraft:
    raw = reader.mapping(value, "company")
    if raw is None:
        return CompanyDraft()
    siret = reader.string(raw.get("siret"), "company.siret", max_length=30)
    vat = reader.string(raw.get("vat_number"), "company.vat_number", max_length=30)
    reader.errors.extend(check_company(siret, vat, field_prefix="company"))
    return CompanyDraft(
        name=reader.string(raw.get("name"), "company.name", max_length=200),
        siret=normalize_siret(siret) if siret else None,
        vat_number=normalize_vat(vat) if vat else None,
        address=read_address(reader, raw.get("address"), "company.address"),
        website=reader.url(raw.get("website"), "company.website", max_length=WEBSITE_LENGTH),
        phone=reader.phone(raw.get("phone"), "company.phone"),
    )


def _read_contact(reader: PayloadReader, value: Any) -> UserContactDraft:
    raw = reader.mapping(value, "contact")
    if raw is None:
        return UserContactDraft()
    return UserContactDraft(
        first_name=reader.string(raw.get("first_name"), "contact.first_name", max_length=100),
        last_name=reader.string(raw.get("last_name"), "contact.last_name", max_length=100),
        phone=reader.phone(raw.get("phone"), "contact.phone"),
        job_title=reader.string(raw.get("job_title"), "contact.job_title", max_length=100),
    )


def _read_platform(reader: PayloadReader, value: Any) -> PlatformDraft:
    raw = reader.mapping(value, "platform")
    if raw is None:
        return PlatformDraft()
    metadata = reader.free_mapping(raw.get("metadata"), "platform.metadata")
    return PlatformDraft(
        callback_url=reader.url(
            raw.get("callback_url"), "platform.callback_url", max_length=CALLBACK_URL_LENGTH
        ),
        metadata=dict(metadata or {}),
    )


def _read_tos(reader: PayloadReader, value: Any, now: datetime | None) -> TosAcceptanceDraft | None:
    raw = reader.mapping(value, "tos_acceptance")
    if raw is None:
        return None
    accepted_at = reader.timestamp(raw.get("date"), "tos_acceptance.date", required=True)
    ip = reader.ip_address(raw.get("ip"), "tos_acceptance.ip", required=True)
    if accepted_at is not None and now is not None and accepted_at > now + TOS_CLOCK_SKEW:
        reader.add(
            "tos_acceptance.date", "out_of_range", "tos_acceptance.date must not be in the future."
        )
        return None
    if accepted_at is None or ip is None:
        return None
    return TosAcceptanceDraft(date=accepted_at, ip=ip)


def validate_user_payload(payload: Any, *, now: datetime | None = None) -> UserDraft:
    """Validate a ``CreateUserRequest`` (REST JSON or a GraphQL typed input); lists all problems."""
    payload = input_fields(payload)
    if not isinstance(payload, Mapping):
        raise DomainValidationError(
            [FieldError("", "invalid_type", "The request body must be a JSON object.")]
        )
    reader = PayloadReader()
    # A creditor's email is its sign-in name, compared lower-cased on the consent page: stored
    # lower-cased whole (not only the domain), so CASE1@ and case1@ are one email_taken.
    email = reader.email(payload.get("email"), "email", required=True)
    email = email.lower() if email is not None else None
    company = _read_company(reader, payload.get("company"))
    contact = _read_contact(reader, payload.get("contact"))
    platform = _read_platform(reader, payload.get("platform"))
    tos = _read_tos(reader, payload.get("tos_acceptance"), now)
    reader.raise_if_any()
    # A missing or invalid email has recorded an error and raised above.
    assert email is not None
    return UserDraft(
        email=email, company=company, contact=contact, platform=platform, tos_acceptance=tos
    )
