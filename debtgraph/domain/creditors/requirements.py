"""Creditor onboarding (PRODUCT.md §2): requirements, user and KYB status, capabilities.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from debtgraph.domain.creditors.kyb import (
    AddressDraft,
    check_company,
    is_valid_siret,
)
from debtgraph.domain.creditors.models import KybStatus, UserStatus

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
