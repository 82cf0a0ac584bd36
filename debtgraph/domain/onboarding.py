"""Creditor onboarding (PRODUCT.md §2): requirements, user and KYB status, capabilities, payload.

Decisions:

- A requirement is met only by a usable value: ``company.siret`` needs a SIRET that passes the
  checksum, ``company.address`` needs line1, city, postal code and country (line2 is optional),
  ``tos_acceptance`` needs its date. The IBAN and identity document only need to be on file here;
  their own checks happen where they are captured.
- ``past_due`` starts exactly 14 days (to the second) after creation.
- Status only moves forward from ``pending_onboarding``: a user that has supplied something never
  goes back to it; an ``active`` user that loses a requirement (e.g. a new, invalid SIRET) goes back
  to ``onboarding``. ``suspended`` sticks until an operator reinstates (``reinstate_status``).
- ``kyb_status`` is ``pending`` only while supplied identifiers wait for a check the caller has not
  run yet (``checked=False``); the stdnum checks are local, so callers normally decide at once.
- ``tos_acceptance.date`` may be ISO 8601 (naive = UTC) or Unix seconds, and may not be more than
  5 minutes in the future of ``now`` (clock skew between the platform and us).
- Unknown keys in the payload are ignored (forward compatibility with newer clients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from debtgraph.domain.errors import DomainValidationError, FieldError, PayloadReader
from debtgraph.domain.kyb import (
    AddressDraft,
    check_company,
    is_valid_siret,
    normalize_siret,
    normalize_vat,
    read_address,
)
from debtgraph.domain.users import KybStatus, UserStatus

CURRENTLY_DUE_ITEMS: tuple[str, ...] = (
    "company.name",
    "company.siret",
    "company.address",
    "contact.first_name",
    "contact.last_name",
    "tos_acceptance",
)
EVENTUALLY_DUE_ITEMS: tuple[str, ...] = ("bank_account.iban", "representative.identity_document")
PAST_DUE_AFTER = timedelta(days=14)
TOS_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class OnboardingSnapshot:
    """What is on file for a creditor, plus its creation time and "now"."""

    created_at: datetime
    now: datetime
    company_name: str | None = None
    company_siret: str | None = None
    company_vat_number: str | None = None
    company_address: AddressDraft | Mapping[str, Any] | None = None
    contact_first_name: str | None = None
    contact_last_name: str | None = None
    tos_accepted_at: datetime | None = None
    bank_iban: str | None = None
    representative_identity_document: str | None = None


@dataclass(frozen=True, slots=True)
class Requirements:
    """Missing onboarding items, by urgency (the Cleavr ``Requirements`` schema)."""

    currently_due: tuple[str, ...]
    eventually_due: tuple[str, ...]
    past_due: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        """The requirements as JSON-ready lists."""
        return {
            "currently_due": list(self.currently_due),
            "eventually_due": list(self.eventually_due),
            "past_due": list(self.past_due),
        }


def _filled(value: str | None) -> bool:
    return bool(value and value.strip())


def _address_complete(address: AddressDraft | Mapping[str, Any] | None) -> bool:
    if address is None:
        return False
    if isinstance(address, AddressDraft):
        return address.is_complete
    return all(
        isinstance(address.get(part), str) and address[part].strip()
        for part in ("line1", "city", "postal_code", "country")
    )


def _met(snapshot: OnboardingSnapshot) -> dict[str, bool]:
    siret = snapshot.company_siret
    return {
        "company.name": _filled(snapshot.company_name),
        "company.siret": bool(siret and is_valid_siret(siret)),
        "company.address": _address_complete(snapshot.company_address),
        "contact.first_name": _filled(snapshot.contact_first_name),
        "contact.last_name": _filled(snapshot.contact_last_name),
        "tos_acceptance": snapshot.tos_accepted_at is not None,
        "bank_account.iban": _filled(snapshot.bank_iban),
        "representative.identity_document": _filled(snapshot.representative_identity_document),
    }


def compute_requirements(snapshot: OnboardingSnapshot) -> Requirements:
    """The missing items: currently_due, eventually_due, and past_due after 14 days."""
    met = _met(snapshot)
    currently_due = tuple(item for item in CURRENTLY_DUE_ITEMS if not met[item])
    eventually_due = tuple(item for item in EVENTUALLY_DUE_ITEMS if not met[item])
    overdue = snapshot.now - snapshot.created_at >= PAST_DUE_AFTER
    return Requirements(
        currently_due=currently_due,
        eventually_due=eventually_due,
        past_due=currently_due if overdue else (),
    )


def kyb_status(siret: str | None, vat_number: str | None, *, checked: bool = True) -> KybStatus:
    """``unverified`` without a SIRET, ``pending`` until checked, then verified or rejected."""
    if not _filled(siret):
        return KybStatus.UNVERIFIED
    if not checked:
        return KybStatus.PENDING
    if check_company(siret, vat_number):
        return KybStatus.REJECTED
    return KybStatus.VERIFIED


def user_status(current: str, snapshot: OnboardingSnapshot) -> UserStatus:
    """The creditor's status given what is on file; ``suspended`` is kept as is."""
    if current == UserStatus.SUSPENDED:
        return UserStatus.SUSPENDED
    met = _met(snapshot)
    complete = all(met[item] for item in CURRENTLY_DUE_ITEMS)
    verified = kyb_status(snapshot.company_siret, snapshot.company_vat_number) == KybStatus.VERIFIED
    if complete and verified:
        return UserStatus.ACTIVE
    started = current in (UserStatus.ONBOARDING, UserStatus.ACTIVE) or any(met.values())
    return UserStatus.ONBOARDING if started else UserStatus.PENDING_ONBOARDING


def reinstate_status(snapshot: OnboardingSnapshot) -> UserStatus:
    """The status an operator's reinstatement gives a suspended creditor."""
    return user_status(UserStatus.PENDING_ONBOARDING, snapshot)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a creditor may do (the ``capabilities`` object of ``User``)."""

    send_receivables: bool
    receive_payments: bool

    def as_dict(self) -> dict[str, bool]:
        """The capabilities as a JSON-ready mapping."""
        return {
            "send_receivables": self.send_receivables,
            "receive_payments": self.receive_payments,
        }


def capabilities(status: str, has_iban: bool) -> Capabilities:
    """send_receivables = active; receive_payments = active with an IBAN on file."""
    active = status == UserStatus.ACTIVE
    return Capabilities(send_receivables=active, receive_payments=active and has_iban)


def payout_account_status(status: str, has_iban: bool, has_identity_document: bool) -> str:
    """``stripe_account_status``: none without IBAN, enabled once payouts work, else pending."""
    if not has_iban:
        return "none"
    if status == UserStatus.ACTIVE and has_identity_document:
        return "enabled"
    return "pending"


# --- POST /v1/users payload -----------------------------------------------------------------------


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
        website=reader.url(raw.get("website"), "company.website"),
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
    metadata = reader.mapping(raw.get("metadata"), "platform.metadata")
    return PlatformDraft(
        callback_url=reader.url(raw.get("callback_url"), "platform.callback_url"),
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


def validate_user_payload(payload: Mapping[str, Any], *, now: datetime | None = None) -> UserDraft:
    """Validate a ``CreateUserRequest``; DomainValidationError lists every problem."""
    if not isinstance(payload, Mapping):
        raise DomainValidationError(
            [FieldError("", "invalid_type", "The request body must be a JSON object.")]
        )
    reader = PayloadReader()
    email = reader.email(payload.get("email"), "email", required=True)
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
