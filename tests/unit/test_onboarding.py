"""Creditor onboarding: requirements, statuses, capabilities and the POST /v1/users payload."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from debtgraph.domain.core.errors import DomainValidationError
from debtgraph.domain.creditors.kyb import AddressDraft
from debtgraph.domain.creditors.parsing import TosAcceptanceDraft, validate_user_payload
from debtgraph.domain.creditors.requirements import (
    Capabilities,
    OnboardingSnapshot,
    Requirements,
    capabilities,
    compute_requirements,
    kyb_status,
    payout_account_status,
    reinstate_status,
    user_status,
)

CREATED = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
NOW = CREATED + timedelta(days=1)
DANONE_SIRET = "55203253400646"
DANONE_VAT = "FR27552032534"
ADDRESS = {"line1": "17 bd Haussmann", "city": "Paris", "postal_code": "75009", "country": "FR"}

EMPTY = OnboardingSnapshot(created_at=CREATED, now=NOW)
COMPLETE = OnboardingSnapshot(
    created_at=CREATED,
    now=NOW,
    company_name="Danone",
    company_siret=DANONE_SIRET,
    company_vat_number=DANONE_VAT,
    company_address=ADDRESS,
    contact_first_name="Anne",
    contact_last_name="Martin",
    tos_accepted_at=CREATED,
)
ALL_CURRENT = (
    "company.name",
    "company.siret",
    "company.address",
    "contact.first_name",
    "contact.last_name",
    "tos_acceptance",
)
ALL_EVENTUAL = ("bank_account.iban", "representative.identity_document")


def test_everything_due_for_a_new_user() -> None:
    assert compute_requirements(EMPTY) == Requirements(ALL_CURRENT, ALL_EVENTUAL, ())


def test_nothing_currently_due_when_complete() -> None:
    assert compute_requirements(COMPLETE) == Requirements((), ALL_EVENTUAL, ())
    full = replace(COMPLETE, bank_iban="FR76...", representative_identity_document="doc_1")
    assert compute_requirements(full).as_dict() == {
        "currently_due": [],
        "eventually_due": [],
        "past_due": [],
    }


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"company_name": "  "}, "company.name"),
        ({"company_siret": None}, "company.siret"),
        ({"company_siret": "12345678901234"}, "company.siret"),
        ({"company_address": None}, "company.address"),
        ({"company_address": {**ADDRESS, "city": ""}}, "company.address"),
        (
            {"company_address": AddressDraft("1 rue X", None, "Lyon", "69001", None)},
            "company.address",
        ),
        ({"contact_first_name": None}, "contact.first_name"),
        ({"contact_last_name": ""}, "contact.last_name"),
        ({"tos_accepted_at": None}, "tos_acceptance"),
    ],
)
def test_each_currently_due_item(changes: dict[str, Any], missing: str) -> None:
    assert compute_requirements(replace(COMPLETE, **changes)).currently_due == (missing,)


def test_address_draft_with_all_parts_counts() -> None:
    snapshot = replace(
        COMPLETE, company_address=AddressDraft("1 rue X", None, "Lyon", "69001", "FR")
    )
    assert compute_requirements(snapshot).currently_due == ()


def test_past_due_from_fourteen_days_after_creation() -> None:
    snapshot = replace(
        COMPLETE, contact_last_name=None, now=CREATED + timedelta(days=14, seconds=-1)
    )
    assert compute_requirements(snapshot).past_due == ()
    snapshot = replace(snapshot, now=CREATED + timedelta(days=14))
    assert compute_requirements(snapshot).past_due == ("contact.last_name",)
    # eventually_due items never become past due.
    assert compute_requirements(replace(COMPLETE, now=CREATED + timedelta(days=30))).past_due == ()


def test_kyb_status() -> None:
    assert kyb_status(None, None) == "unverified"
    assert kyb_status("  ", DANONE_VAT) == "unverified"
    assert kyb_status(DANONE_SIRET, None, checked=False) == "pending"
    assert kyb_status(DANONE_SIRET, None) == "verified"
    assert kyb_status(DANONE_SIRET, DANONE_VAT) == "verified"
    assert kyb_status("12345678901234", None) == "rejected"
    assert kyb_status(DANONE_SIRET, "FR13542107651") == "rejected"
    assert kyb_status(DANONE_SIRET, "FR12345678901") == "rejected"


def test_user_status_progression() -> None:
    assert user_status("pending_onboarding", EMPTY) == "pending_onboarding"
    assert user_status("pending_onboarding", replace(EMPTY, company_name="Danone")) == "onboarding"
    assert user_status("pending_onboarding", replace(EMPTY, bank_iban="FR76")) == "onboarding"
    assert user_status("pending_onboarding", COMPLETE) == "active"
    assert user_status("onboarding", COMPLETE) == "active"
    # Never back to pending_onboarding once started.
    assert user_status("onboarding", EMPTY) == "onboarding"


def test_active_needs_verified_kyb() -> None:
    mismatch = replace(COMPLETE, company_vat_number="FR13542107651")
    assert compute_requirements(mismatch).currently_due == ()
    assert user_status("onboarding", mismatch) == "onboarding"
    assert user_status("active", mismatch) == "onboarding"


def test_suspended_is_sticky_until_reinstated() -> None:
    assert user_status("suspended", COMPLETE) == "suspended"
    assert user_status("suspended", EMPTY) == "suspended"
    assert reinstate_status(COMPLETE) == "active"
    assert reinstate_status(replace(COMPLETE, tos_accepted_at=None)) == "onboarding"
    assert reinstate_status(EMPTY) == "pending_onboarding"


@pytest.mark.parametrize(
    ("status", "has_iban", "expected"),
    [
        ("active", True, Capabilities(True, True)),
        ("active", False, Capabilities(True, False)),
        ("onboarding", True, Capabilities(False, False)),
        ("pending_onboarding", False, Capabilities(False, False)),
        ("suspended", True, Capabilities(False, False)),
    ],
)
def test_capabilities(status: str, has_iban: bool, expected: Capabilities) -> None:
    assert capabilities(status, has_iban) == expected


def test_capabilities_as_dict() -> None:
    assert capabilities("active", True).as_dict() == {
        "send_receivables": True,
        "receive_payments": True,
    }


def test_payout_account_status() -> None:
    assert payout_account_status("active", False, True) == "none"
    assert payout_account_status("active", True, False) == "pending"
    assert payout_account_status("onboarding", True, True) == "pending"
    assert payout_account_status("active", True, True) == "enabled"


# --- POST /v1/users ------------------------------------------------------------------------------

FULL_USER: dict[str, Any] = {
    "email": "Finance@Acme.FR",
    "company": {
        "name": "Danone",
        "siret": "552 032 534 00646",
        "vat_number": "FR 27 552 032 534",
        "address": ADDRESS,
        "website": "https://www.danone.com",
        "phone": "+33 1 44 35 20 20",
    },
    "contact": {"first_name": "Anne", "last_name": "Martin", "job_title": "CFO"},
    "platform": {"callback_url": "https://platform.example/done", "metadata": {"crm": "42"}},
    "tos_acceptance": {"date": "2025-06-01T08:00:00Z", "ip": "203.0.113.7"},
}


def user_errors(data: Any, now: datetime | None = NOW) -> list[tuple[str, str]]:
    with pytest.raises(DomainValidationError) as caught:
        validate_user_payload(data, now=now)
    return [(e.field, e.code) for e in caught.value.errors]


def test_minimal_user() -> None:
    draft = validate_user_payload({"email": "a@b.fr"})
    assert draft.email == "a@b.fr"
    assert draft.company.name is None
    assert draft.tos_acceptance is None
    assert user_status("pending_onboarding", draft.snapshot(CREATED, NOW)) == "pending_onboarding"


def test_complete_user_is_active_at_once() -> None:
    draft = validate_user_payload(FULL_USER, now=NOW)
    assert draft.email == "finance@acme.fr"  # a sign-in name: lower-cased whole
    assert draft.company.siret == DANONE_SIRET
    assert draft.company.vat_number == DANONE_VAT
    assert draft.company.address == AddressDraft("17 bd Haussmann", None, "Paris", "75009", "FR")
    assert draft.contact.last_name == "Martin"
    assert draft.platform.metadata == {"crm": "42"}
    assert draft.tos_acceptance == TosAcceptanceDraft(
        date=datetime(2025, 6, 1, 8, 0, tzinfo=UTC), ip="203.0.113.7"
    )
    snapshot = draft.snapshot(CREATED, NOW)
    assert compute_requirements(snapshot).currently_due == ()
    assert user_status("pending_onboarding", snapshot) == "active"


def test_tos_date_as_unix_timestamp_and_naive_text() -> None:
    stamp = int(datetime(2025, 6, 1, 8, 0, tzinfo=UTC).timestamp())
    for value in (stamp, "2025-06-01T08:00:00"):
        draft = validate_user_payload(
            {"email": "a@b.fr", "tos_acceptance": {"date": value, "ip": "::1"}}
        )
        assert draft.tos_acceptance == TosAcceptanceDraft(
            date=datetime(2025, 6, 1, 8, 0, tzinfo=UTC), ip="::1"
        )


def with_changes(section: str, key: str, value: Any) -> dict[str, Any]:
    data = {**FULL_USER, section: {**FULL_USER[section], key: value}}
    if value is ...:
        del data[section][key]
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, [("email", "required")]),
        ({"email": "  "}, [("email", "required")]),
        ({"email": 3}, [("email", "invalid_type")]),
        ({"email": "not-an-email"}, [("email", "invalid_email")]),
        ({"email": "a@b.fr", "company": "Danone"}, [("company", "invalid_type")]),
        ({"email": "a@b.fr", "contact": ["Anne"]}, [("contact", "invalid_type")]),
        ({"email": "a@b.fr", "platform": 1}, [("platform", "invalid_type")]),
        ({"email": "a@b.fr", "tos_acceptance": True}, [("tos_acceptance", "invalid_type")]),
        (with_changes("company", "name", 12), [("company.name", "invalid_type")]),
        (with_changes("company", "siret", "55203253400647"), [("company.siret", "invalid_siret")]),
        (
            with_changes("company", "vat_number", "FR12345678901"),
            [("company.vat_number", "invalid_vat")],
        ),
        (
            with_changes("company", "vat_number", "FR13542107651"),
            [("company.vat_number", "vat_siret_mismatch")],
        ),
        (with_changes("company", "address", "Paris"), [("company.address", "invalid_type")]),
        (
            with_changes("company", "address", {**ADDRESS, "country": "FRA"}),
            [("company.address.country", "invalid_country")],
        ),
        (
            with_changes("company", "address", {**ADDRESS, "postal_code": "7509"}),
            [("company.address.postal_code", "invalid_postal_code")],
        ),
        (with_changes("company", "website", "danone.com"), [("company.website", "invalid_url")]),
        (with_changes("company", "phone", "12"), [("company.phone", "invalid_phone")]),
        (with_changes("contact", "first_name", ["A"]), [("contact.first_name", "invalid_type")]),
        (with_changes("contact", "last_name", "x" * 101), [("contact.last_name", "too_long")]),
        (with_changes("contact", "phone", "phone"), [("contact.phone", "invalid_phone")]),
        (with_changes("contact", "job_title", 1), [("contact.job_title", "invalid_type")]),
        (
            with_changes("platform", "callback_url", "ftp://x.fr/"),
            [("platform.callback_url", "invalid_url")],
        ),
        (with_changes("platform", "metadata", [1]), [("platform.metadata", "invalid_type")]),
        (with_changes("tos_acceptance", "date", ...), [("tos_acceptance.date", "required")]),
        (
            with_changes("tos_acceptance", "date", "yesterday"),
            [("tos_acceptance.date", "invalid_date")],
        ),
        (with_changes("tos_acceptance", "date", True), [("tos_acceptance.date", "invalid_date")]),
        (
            with_changes("tos_acceptance", "date", "2025-06-02T09:10:00Z"),
            [("tos_acceptance.date", "out_of_range")],
        ),
        (with_changes("tos_acceptance", "ip", ...), [("tos_acceptance.ip", "required")]),
        (with_changes("tos_acceptance", "ip", "999.1.1.1"), [("tos_acceptance.ip", "invalid_ip")]),
    ],
)
def test_user_validation_rule(data: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert user_errors(data) == expected


def test_user_errors_are_all_collected() -> None:
    data = {
        "email": "x",
        "company": {"siret": "1", "website": "nope"},
        "contact": {"phone": "?"},
        "tos_acceptance": {},
    }
    assert user_errors(data) == [
        ("email", "invalid_email"),
        ("company.siret", "invalid_siret"),
        ("company.website", "invalid_url"),
        ("contact.phone", "invalid_phone"),
        ("tos_acceptance.date", "required"),
        ("tos_acceptance.ip", "required"),
    ]


def test_user_body_must_be_an_object() -> None:
    assert user_errors(["a@b.fr"]) == [("", "invalid_type")]


def test_future_tos_within_clock_skew_is_accepted() -> None:
    data = with_changes("tos_acceptance", "date", (NOW + timedelta(minutes=4)).isoformat())
    assert validate_user_payload(data, now=NOW).tos_acceptance is not None
