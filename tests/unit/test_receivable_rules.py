"""Receivable status machine, creation validation, soft rules and recovery figures."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from debtgraph.domain.core.errors import DomainValidationError, FieldError, InvalidTransition
from debtgraph.domain.creditors.kyb import AddressDraft
from debtgraph.domain.receivables.parsing import ContactDraft, validate_receivable
from debtgraph.domain.receivables.recovery import (
    RecoveryPhase,
    indemnity_due,
    recovery_phase,
)
from debtgraph.domain.receivables.rules import (
    ExistingReceivable,
    duplicate_error,
    is_duplicate_of,
    is_time_barred,
    normalize_company_name,
    phone_warning,
    prescription_date,
    time_barred_error,
)
from debtgraph.domain.receivables.status_machine import (
    TRANSITIONS,
    CancelReason,
    ReceivableAction,
    allowed_actions,
    apply_payment,
    next_status,
    remaining_due,
)

TODAY = date(2025, 6, 15)
DANONE_SIRET = "55203253400646"
DANONE_VAT = "FR27552032534"

ALL_STATUSES = [
    "pending",
    "in_process",
    "payment_received",
    "recovered",
    "disputed",
    "evidence_requested",
    "cancelled",
]
ALL_ACTIONS = [a.value for a in ReceivableAction]

# --- status machine ------------------------------------------------------------------------------

ALLOWED = [
    ("pending", "start", {}, "in_process"),
    ("in_process", "payment", {}, "payment_received"),
    ("payment_received", "payout", {"fully_paid": True}, "recovered"),
    ("payment_received", "continue_recovery", {"awaiting_decision": True}, "in_process"),
    ("payment_received", "mark_complete", {"awaiting_decision": True}, "recovered"),
    ("in_process", "dispute", {}, "disputed"),
    ("disputed", "request_evidence", {}, "evidence_requested"),
    ("evidence_requested", "submit_evidence", {}, "in_process"),
    ("disputed", "submit_evidence", {}, "in_process"),
    ("pending", "cancel", {}, "cancelled"),
    ("in_process", "cancel", {}, "cancelled"),
    ("payment_received", "cancel", {}, "cancelled"),
    ("disputed", "cancel", {}, "cancelled"),
    ("evidence_requested", "cancel", {}, "cancelled"),
]


@pytest.mark.parametrize(("status", "action", "guards", "target"), ALLOWED)
def test_allowed_transitions(
    status: str, action: str, guards: dict[str, bool], target: str
) -> None:
    assert next_status(status, action, **guards) == target


def test_table_holds_exactly_the_allowed_transitions() -> None:
    assert {(s.value, a.value): t.value for (s, a), t in TRANSITIONS.items()} == {
        (status, action): target for status, action, _, target in ALLOWED
    }


@pytest.mark.parametrize("status", ["recovered", "cancelled"])
@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_no_action_from_terminal_statuses(status: str, action: str) -> None:
    with pytest.raises(InvalidTransition) as caught:
        next_status(status, action, fully_paid=True, awaiting_decision=True)
    assert (caught.value.from_status, caught.value.action) == (status, action)
    assert caught.value.code == "invalid_transition"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("pending", "payment"),
        ("pending", "dispute"),
        ("pending", "payout"),
        ("in_process", "start"),
        ("in_process", "payout"),
        ("in_process", "submit_evidence"),
        ("in_process", "request_evidence"),
        ("payment_received", "payment"),
        ("payment_received", "dispute"),
        ("disputed", "dispute"),
        ("disputed", "payment"),
        ("evidence_requested", "request_evidence"),
        ("evidence_requested", "start"),
        ("bogus", "start"),
        ("pending", "bogus"),
    ],
)
def test_disallowed_transitions(status: str, action: str) -> None:
    with pytest.raises(InvalidTransition):
        next_status(status, action, fully_paid=True, awaiting_decision=True)


def test_every_pair_outside_the_table_is_refused() -> None:
    for status in ALL_STATUSES:
        for action in ALL_ACTIONS:
            if (status, action) in {(s, a) for s, a, _, _ in ALLOWED}:
                continue
            with pytest.raises(InvalidTransition):
                next_status(status, action, fully_paid=True, awaiting_decision=True)


def test_guards() -> None:
    with pytest.raises(InvalidTransition, match="fully paid"):
        next_status("payment_received", "payout", awaiting_decision=True)
    for action in ("continue_recovery", "mark_complete"):
        with pytest.raises(InvalidTransition, match="partial-payment decision"):
            next_status("payment_received", action, fully_paid=True)


def test_invalid_transition_message() -> None:
    with pytest.raises(InvalidTransition) as caught:
        next_status("recovered", "cancel")
    assert caught.value.message == "Action 'cancel' is not allowed from status 'recovered'."


def test_allowed_actions() -> None:
    assert allowed_actions("pending") == ["start", "cancel"]
    assert allowed_actions("payment_received", fully_paid=True) == ["payout", "cancel"]
    assert allowed_actions("payment_received", awaiting_decision=True) == [
        "continue_recovery",
        "mark_complete",
        "cancel",
    ]
    assert allowed_actions("disputed") == ["request_evidence", "submit_evidence", "cancel"]
    assert allowed_actions("recovered") == []
    assert allowed_actions("cancelled") == []


def test_cancel_reasons() -> None:
    assert [r.value for r in CancelReason] == [
        "paid_directly",
        "disputed_valid",
        "business_decision",
        "incorrect_submission",
    ]


def test_full_payment() -> None:
    outcome = apply_payment("in_process", Decimal("100.00"), Decimal("0.00"), Decimal("100.00"))
    assert outcome.status == "payment_received"
    assert (outcome.amount_recovered, outcome.amount_remaining) == (
        Decimal("100.00"),
        Decimal("0.00"),
    )
    assert (outcome.fully_paid, outcome.awaiting_decision) == (True, False)


def test_partial_payment_awaits_a_decision() -> None:
    outcome = apply_payment("in_process", Decimal("100.00"), Decimal("10.00"), Decimal("30.00"))
    assert outcome.status == "payment_received"
    assert (outcome.amount_recovered, outcome.amount_remaining) == (
        Decimal("40.00"),
        Decimal("60.00"),
    )
    assert (outcome.fully_paid, outcome.awaiting_decision) == (False, True)


def test_a_payment_of_exactly_the_amount_remaining_pays_in_full() -> None:
    outcome = apply_payment("in_process", Decimal("500.00"), Decimal("200.00"), Decimal("300.00"))
    assert (outcome.amount_recovered, outcome.amount_remaining) == (
        Decimal("500.00"),
        Decimal("0.00"),
    )
    assert (outcome.fully_paid, outcome.awaiting_decision) == (True, False)


def test_the_amount_remaining_is_never_negative() -> None:
    # One rule for the figure a receivable shows and the bound a payment is held to: a
    # receivable recovered beyond its amount (as before overpayments were refused) owes nothing.
    assert remaining_due(Decimal("100.00"), Decimal("30.00")) == Decimal("70.00")
    assert remaining_due(Decimal("100.00"), Decimal("100.00")) == Decimal("0.00")
    assert remaining_due(Decimal("100.00"), Decimal("120.00")) == Decimal("0.00")


@pytest.mark.parametrize(
    ("amount", "recovered", "payment", "remaining"),
    [
        ("1000.00", "0.00", "2000.00", "1000.00"),
        ("500.00", "200.00", "400.00", "300.00"),
        ("100.00", "0.00", "100.01", "100.00"),
    ],
)
def test_a_payment_above_the_amount_remaining_is_refused_on_amount(
    amount: str, recovered: str, payment: str, remaining: str
) -> None:
    with pytest.raises(DomainValidationError) as refused:
        apply_payment("in_process", Decimal(amount), Decimal(recovered), Decimal(payment))
    assert refused.value.errors == [
        FieldError(
            "amount",
            "out_of_range",
            f"amount must not exceed {remaining}, the amount remaining on this receivable.",
        )
    ]


def test_a_payment_out_of_turn_is_a_transition_error_whatever_its_amount() -> None:
    # What the status refuses is said first: the balance is only judged on a payable receivable.
    with pytest.raises(InvalidTransition):
        apply_payment("payment_received", Decimal("100"), Decimal("40"), Decimal("500"))


def test_payment_needs_in_process_and_a_positive_amount() -> None:
    with pytest.raises(InvalidTransition):
        apply_payment("pending", Decimal("100"), Decimal("0"), Decimal("10"))
    with pytest.raises(ValueError, match="positive"):
        apply_payment("in_process", Decimal("100"), Decimal("0"), Decimal("0"))


# --- validation ----------------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "user_id": "usr_123",
    "invoice": {
        "numbers": ["F-2025-001", "F-2025-002"],
        "issue_date": "2025-03-01",
        "due_date": "2025-04-01",
        "service_description": "Consulting, March 2025",
        "amount": 1200.5,
        "amount_before_tax": 1000.42,
        "tax_amount": 200.08,
    },
    "debtor": {
        "company_name": "Danone SA",
        "siret": "552 032 534 00646",
        "vat_number": "fr27552032534",
        "address": {
            "line1": "17 boulevard Haussmann",
            "city": "Paris",
            "postal_code": "75009",
            "country": "FR",
        },
        "contacts": [
            {"email": "Compta@Danone.COM", "first_name": "Anne", "phone": "+33 1 23 45 67 89"},
            {"email": "dg@danone.com", "level": 3},
        ],
    },
    "metadata": {"order": "A1"},
}


def payload(**changes: Any) -> dict[str, Any]:
    """VALID with dotted-path changes applied (value ``...`` deletes the key)."""
    data = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target: Any = data
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is ...:
            del target[leaf]
        elif isinstance(target, list):
            target[int(leaf)] = value
        else:
            target[leaf] = value
    return data


def errors_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(DomainValidationError) as caught:
        validate_receivable(data, TODAY)
    return [(e.field, e.code) for e in caught.value.errors]


def test_valid_payload_gives_a_typed_draft() -> None:
    draft = validate_receivable(VALID, TODAY)
    assert draft.user_id == "usr_123"
    assert draft.invoice.numbers == ("F-2025-001", "F-2025-002")
    assert draft.invoice.issue_date == date(2025, 3, 1)
    assert draft.invoice.due_date == date(2025, 4, 1)
    assert draft.invoice.amount == Decimal("1200.50")
    assert draft.invoice.amount_before_tax == Decimal("1000.42")
    assert draft.invoice.tax_amount == Decimal("200.08")
    assert draft.invoice.currency == "EUR"
    assert draft.debtor.company_name == "Danone SA"
    assert draft.debtor.company_type == "company"
    assert draft.debtor.siret == DANONE_SIRET
    assert draft.debtor.vat_number == DANONE_VAT
    assert draft.debtor.address == AddressDraft(
        "17 boulevard Haussmann", None, "Paris", "75009", "FR"
    )
    assert draft.debtor.contacts == (
        ContactDraft(
            email="Compta@danone.com", first_name="Anne", phone="+33 1 23 45 67 89", level=0
        ),
        ContactDraft(email="dg@danone.com", level=3),
    )
    assert draft.metadata == {"order": "A1"}
    assert draft.force_proceed is False


def test_optional_parts_may_be_absent() -> None:
    draft = validate_receivable(
        payload(
            invoice__amount_before_tax=...,
            invoice__tax_amount=...,
            debtor__siret=None,
            debtor__vat_number="",
            debtor__address=...,
            metadata=...,
            force_proceed=True,
            invoice__currency="usd",
            debtor__company_type="individual",
        ),
        TODAY,
    )
    assert (draft.debtor.siret, draft.debtor.vat_number, draft.debtor.address) == (None, None, None)
    assert (draft.metadata, draft.force_proceed, draft.invoice.currency) == ({}, True, "USD")
    assert draft.debtor.company_type == "individual"


def test_collects_every_error_at_once() -> None:
    data = payload(
        invoice__numbers=["A", " "],
        invoice__amount=0,
        debtor__company_name="  ",
        debtor__contacts=[{"email": "nope"}],
    )
    assert errors_of(data) == [
        ("invoice.numbers[1]", "required"),
        ("invoice.amount", "out_of_range"),
        ("debtor.company_name", "required"),
        ("debtor.contacts[0].email", "invalid_email"),
    ]


def test_first_error_is_the_error() -> None:
    with pytest.raises(DomainValidationError) as caught:
        validate_receivable(payload(invoice__due_date="2025-06-15"), TODAY)
    assert caught.value.first == FieldError(
        "invoice.due_date",
        "invoice_not_overdue",
        "invoice.due_date must be in the past (before 2025-06-15): "
        "only overdue invoices can be recovered.",
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # body and top level
        ({"user_id": ...}, [("user_id", "required")]),
        ({"user_id": 5}, [("user_id", "invalid_type")]),
        ({"invoice": ...}, [("invoice", "required")]),
        ({"invoice": "F-1"}, [("invoice", "invalid_type")]),
        ({"debtor": ...}, [("debtor", "required")]),
        ({"debtor": []}, [("debtor", "invalid_type")]),
        ({"metadata": "x"}, [("metadata", "invalid_type")]),
        ({"force_proceed": "yes"}, [("force_proceed", "invalid_type")]),
        # invoice.numbers
        ({"invoice__numbers": ...}, [("invoice.numbers", "required")]),
        ({"invoice__numbers": []}, [("invoice.numbers", "required")]),
        ({"invoice__numbers": "F-1"}, [("invoice.numbers", "invalid_type")]),
        ({"invoice__numbers": ["F-1", ""]}, [("invoice.numbers[1]", "required")]),
        ({"invoice__numbers": ["F-1", 7]}, [("invoice.numbers[1]", "invalid_type")]),
        ({"invoice__numbers": ["F-1", "f-1 "]}, [("invoice.numbers[1]", "duplicate_value")]),
        ({"invoice__numbers": ["x" * 101]}, [("invoice.numbers[0]", "too_long")]),
        ({"invoice__numbers": ["n"] * 101}, [("invoice.numbers", "too_many")]),
        # dates
        ({"invoice__issue_date": ...}, [("invoice.issue_date", "required")]),
        ({"invoice__issue_date": "01/03/2025"}, [("invoice.issue_date", "invalid_date")]),
        ({"invoice__issue_date": "2025-02-30"}, [("invoice.issue_date", "invalid_date")]),
        ({"invoice__issue_date": "20250301"}, [("invoice.issue_date", "invalid_date")]),
        ({"invoice__due_date": 20250401}, [("invoice.due_date", "invalid_date")]),
        ({"invoice__due_date": "2025-02-28"}, [("invoice.due_date", "invalid_date_range")]),
        ({"invoice__due_date": "2025-06-15"}, [("invoice.due_date", "invoice_not_overdue")]),
        ({"invoice__due_date": "2025-07-01"}, [("invoice.due_date", "invoice_not_overdue")]),
        # service_description
        ({"invoice__service_description": ...}, [("invoice.service_description", "required")]),
        ({"invoice__service_description": " "}, [("invoice.service_description", "required")]),
        # amounts
        ({"invoice__amount": ...}, [("invoice.amount", "required")]),
        (
            {"invoice__amount": 0, "invoice__amount_before_tax": ...},
            [("invoice.amount", "out_of_range")],
        ),
        (
            {"invoice__amount": -1.00, "invoice__tax_amount": ...},
            [("invoice.amount", "out_of_range")],
        ),
        ({"invoice__amount": True}, [("invoice.amount", "invalid_type")]),
        ({"invoice__amount": [1]}, [("invoice.amount", "invalid_type")]),
        # The seed types every amount ``number``: text is refused, whatever it reads as.
        ({"invoice__amount": "1200.50"}, [("invoice.amount", "invalid_type")]),
        ({"invoice__amount": "12,50"}, [("invoice.amount", "invalid_type")]),
        ({"invoice__amount": "NaN"}, [("invoice.amount", "invalid_type")]),
        ({"invoice__amount": float("nan")}, [("invoice.amount", "invalid_amount")]),
        ({"invoice__amount": float("inf")}, [("invoice.amount", "invalid_amount")]),
        ({"invoice__amount": 1200.505}, [("invoice.amount", "invalid_amount")]),
        ({"invoice__amount": 10_000_000_000}, [("invoice.amount", "out_of_range")]),
        ({"invoice__tax_amount": -1}, [("invoice.tax_amount", "out_of_range")]),
        ({"invoice__amount_before_tax": "abc"}, [("invoice.amount_before_tax", "invalid_type")]),
        ({"invoice__amount": 1200.52}, [("invoice.amount", "amount_mismatch")]),
        # currency
        ({"invoice__currency": "EURO"}, [("invoice.currency", "invalid_currency")]),
        ({"invoice__currency": "XAU"}, [("invoice.currency", "invalid_currency")]),
        ({"invoice__currency": "ABC"}, [("invoice.currency", "invalid_currency")]),
        ({"invoice__currency": 978}, [("invoice.currency", "invalid_type")]),
        # debtor
        ({"debtor__company_name": ...}, [("debtor.company_name", "required")]),
        ({"debtor__company_name": ""}, [("debtor.company_name", "required")]),
        ({"debtor__company_name": {"a": 1}}, [("debtor.company_name", "invalid_type")]),
        ({"debtor__company_type": "person"}, [("debtor.company_type", "invalid_choice")]),
        ({"debtor__siret": "55203253400647"}, [("debtor.siret", "invalid_siret")]),
        ({"debtor__siret": "552032534"}, [("debtor.siret", "invalid_siret")]),
        ({"debtor__vat_number": "FR12345678901"}, [("debtor.vat_number", "invalid_vat")]),
        ({"debtor__vat_number": "FR13542107651"}, [("debtor.vat_number", "vat_siret_mismatch")]),
        ({"debtor__address": "Paris"}, [("debtor.address", "invalid_type")]),
        ({"debtor__address__country": "France"}, [("debtor.address.country", "invalid_country")]),
        # contacts
        ({"debtor__contacts": ...}, [("debtor.contacts", "required")]),
        ({"debtor__contacts": []}, [("debtor.contacts", "required")]),
        ({"debtor__contacts": {"email": "a@b.fr"}}, [("debtor.contacts", "invalid_type")]),
        ({"debtor__contacts__1": "dg@danone.com"}, [("debtor.contacts[1]", "invalid_type")]),
        ({"debtor__contacts__1": None}, [("debtor.contacts[1]", "required")]),
        ({"debtor__contacts__0__email": ...}, [("debtor.contacts[0].email", "required")]),
        ({"debtor__contacts__0__email": "anne@"}, [("debtor.contacts[0].email", "invalid_email")]),
        (
            {"debtor__contacts__1__email": "a b@c.fr"},
            [("debtor.contacts[1].email", "invalid_email")],
        ),
        ({"debtor__contacts__1__email": "a@b"}, [("debtor.contacts[1].email", "invalid_email")]),
        (
            {"debtor__contacts__1__email": "a..b@c.fr"},
            [("debtor.contacts[1].email", "invalid_email")],
        ),
        (
            {"debtor__contacts__1__email": "a@-c.fr"},
            [("debtor.contacts[1].email", "invalid_email")],
        ),
        ({"debtor__contacts__1__level": 11}, [("debtor.contacts[1].level", "out_of_range")]),
        ({"debtor__contacts__1__level": -1}, [("debtor.contacts[1].level", "out_of_range")]),
        ({"debtor__contacts__1__level": 2.0}, [("debtor.contacts[1].level", "invalid_type")]),
        ({"debtor__contacts__1__level": "2"}, [("debtor.contacts[1].level", "invalid_type")]),
        ({"debtor__contacts__1__level": True}, [("debtor.contacts[1].level", "invalid_type")]),
        (
            {"debtor__contacts__0__phone": "call me"},
            [("debtor.contacts[0].phone", "invalid_phone")],
        ),
        (
            {"debtor__contacts__0__first_name": 1},
            [("debtor.contacts[0].first_name", "invalid_type")],
        ),
    ],
)
def test_validation_rule(changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors_of(payload(**changes)) == expected


@pytest.mark.parametrize("body", [None, [], "x", 3])
def test_body_must_be_an_object(body: Any) -> None:
    assert errors_of(body) == [("", "invalid_type")]


def test_amount_tolerance_is_one_cent() -> None:
    draft = validate_receivable(payload(invoice__amount=1200.51), TODAY)
    assert draft.invoice.amount == Decimal("1200.51")


def test_amount_from_float_keeps_its_decimal_text() -> None:
    draft = validate_receivable(
        payload(invoice__amount=0.1, invoice__amount_before_tax=..., invoice__tax_amount=...),
        TODAY,
    )
    assert draft.invoice.amount == Decimal("0.10")


def test_levels_zero_to_ten_accepted() -> None:
    for level in (0, 10):
        draft = validate_receivable(payload(debtor__contacts__1__level=level), TODAY)
        assert draft.debtor.contacts[1].level == level


def test_due_yesterday_is_overdue_and_issue_equal_due_is_fine() -> None:
    draft = validate_receivable(
        payload(invoice__issue_date="2025-06-14", invoice__due_date="2025-06-14"), TODAY
    )
    assert draft.invoice.due_date == date(2025, 6, 14)


def test_accepts_date_objects() -> None:
    draft = validate_receivable(
        payload(invoice__issue_date=date(2025, 3, 1), invoice__due_date=date(2025, 4, 1)), TODAY
    )
    assert draft.invoice.issue_date == date(2025, 3, 1)


def test_international_email_domain() -> None:
    draft = validate_receivable(payload(debtor__contacts__1__email="jean@café.fr"), TODAY)
    assert draft.debtor.contacts[1].email == "jean@café.fr"


# --- soft rules ----------------------------------------------------------------------------------


def test_time_barred_after_five_years_from_the_due_date() -> None:
    assert prescription_date(date(2020, 6, 15)) == date(2025, 6, 15)
    assert is_time_barred(date(2020, 6, 15), TODAY) is False
    assert is_time_barred(date(2020, 6, 14), TODAY) is True
    assert prescription_date(date(2020, 2, 29)) == date(2025, 2, 28)
    assert time_barred_error(date(2020, 6, 15), TODAY) is None
    error = time_barred_error(date(2019, 1, 1), TODAY)
    assert error is not None
    assert (error.field, error.code) == ("invoice.due_date", "invoice_time_barred")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("ACME SAS", "acme"),
        ("Acme", "acme"),
        ("S.A.R.L. Acmé", "acme"),
        ("  acme   sasu ", "acme"),
        ("Boulangerie Dupont & Fils, EURL", "boulangerie dupont fils"),
        ("L'Oréal S.A.", "loreal"),
        ("Société Générale SA", "societe generale"),
        ("SAS", "sas"),
    ],
)
def test_normalize_company_name(name: str, key: str) -> None:
    assert normalize_company_name(name) == key


def test_duplicate_detection() -> None:
    draft = validate_receivable(VALID, TODAY)
    same = ExistingReceivable(DANONE_SIRET, "other name", ("f-2025-002",), "in_process")
    assert is_duplicate_of(draft, same) is True
    by_name = ExistingReceivable(None, "danone", ("F-2025-001",), "recovered")
    assert is_duplicate_of(draft, by_name) is True
    cancelled = ExistingReceivable(DANONE_SIRET, "danone", ("F-2025-001",), "cancelled")
    assert is_duplicate_of(draft, cancelled) is False
    other_invoice = ExistingReceivable(DANONE_SIRET, "danone", ("F-2024-999",), "pending")
    assert is_duplicate_of(draft, other_invoice) is False
    other_debtor = ExistingReceivable("54210765113030", "engie", ("F-2025-001",), "pending")
    assert is_duplicate_of(draft, other_debtor) is False
    error = duplicate_error("rcv_1")
    assert (error.field, error.code) == ("invoice.numbers", "duplicate_receivable")


def test_phone_warning() -> None:
    warning = phone_warning([ContactDraft(email="a@b.fr"), {"email": "c@d.fr", "phone": " "}])
    assert warning is not None
    assert warning["code"] == "no_phone_contact"
    assert warning["message"]
    assert phone_warning([ContactDraft(email="a@b.fr", phone="0123456789")]) is None
    assert phone_warning([{"email": "c@d.fr", "phone": "+33123456789"}]) is None
    assert phone_warning([]) is not None


# --- recovery figures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "phase"),
    [
        (-1, "amicable"),
        (0, "amicable"),
        (29, "amicable"),
        (30, "formal_notice"),
        (59, "formal_notice"),
        (60, "legal"),
        (400, "legal"),
    ],
)
def test_recovery_phase(days: int, phase: str) -> None:
    assert recovery_phase(days) == phase
    assert isinstance(recovery_phase(days), RecoveryPhase)


def test_indemnity_due() -> None:
    assert indemnity_due(1, "company") == Decimal("40.00")
    assert indemnity_due(3, "company") == Decimal("120.00")
    assert indemnity_due(0, "company") == Decimal("0.00")
    assert indemnity_due(3, "individual") == Decimal("0.00")
    with pytest.raises(ValueError, match="negative"):
        indemnity_due(-1, "company")
