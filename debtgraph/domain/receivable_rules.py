"""Receivable rules: the status machine, creation validation, soft rules and recovery figures.

Decisions where PRODUCT.md §3 leaves room (also listed in each function's comments):

- ``submit_evidence`` is accepted from ``disputed`` as well as from ``evidence_requested``: the
  diagram's bottom line joins both states to ``in_process``, and a creditor holding proof should
  not have to wait for the operator to ask for it. Evidence never sends a receivable back to
  ``disputed`` (no action models that).
- ``payout`` needs the receivable fully paid; ``continue_recovery`` and ``mark_complete`` (the
  creditor's partial-payment decision) need it to await that decision. A partial payment moves
  ``in_process`` to ``payment_received`` and sets ``awaiting_decision``.
- Prescription (5 years, Code de commerce L110-4) runs from the due date: a claim cannot lapse
  before it is payable. The claim is time-barred the day after the fifth anniversary.
- Recovery phase: ``amicable`` for the first 30 days after the start, ``formal_notice`` (mise en
  demeure) from day 30, ``legal`` from day 60.
- Contact ``level`` defaults to 0 (first line; escalation goes up to 10).
- Amounts accept JSON numbers or decimal strings with at most 2 decimals; NaN/infinity, exponent
  strings and more decimals are refused rather than rounded (rounding money silently is a bug).
- Duplicate invoice numbers inside one submission are refused (``duplicate_value``).
- Unknown keys in the payload are ignored (forward compatibility with newer clients).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from debtgraph.domain.errors import (
    DomainValidationError,
    FieldError,
    InvalidTransition,
    PayloadReader,
)
from debtgraph.domain.kyb import (
    AddressDraft,
    check_company,
    normalize_siret,
    normalize_vat,
    read_address,
)
from debtgraph.domain.receivables import ReceivableStatus

# --- Status machine ------------------------------------------------------------------------------


class ReceivableAction(enum.StrEnum):
    """What can happen to a receivable (each one is an event in its history)."""

    START = "start"
    PAYMENT = "payment"
    PAYOUT = "payout"
    CONTINUE_RECOVERY = "continue_recovery"
    MARK_COMPLETE = "mark_complete"
    DISPUTE = "dispute"
    REQUEST_EVIDENCE = "request_evidence"
    SUBMIT_EVIDENCE = "submit_evidence"
    CANCEL = "cancel"


class CancelReason(enum.StrEnum):
    """Why a creditor cancelled a recovery (``POST /v1/receivables/{id}/cancel``)."""

    PAID_DIRECTLY = "paid_directly"
    DISPUTED_VALID = "disputed_valid"
    BUSINESS_DECISION = "business_decision"
    INCORRECT_SUBMISSION = "incorrect_submission"


_S = ReceivableStatus
_A = ReceivableAction

TERMINAL_STATUSES: frozenset[ReceivableStatus] = frozenset({_S.RECOVERED, _S.CANCELLED})

TRANSITIONS: dict[tuple[ReceivableStatus, ReceivableAction], ReceivableStatus] = {
    (_S.PENDING, _A.START): _S.IN_PROCESS,
    (_S.IN_PROCESS, _A.PAYMENT): _S.PAYMENT_RECEIVED,
    (_S.PAYMENT_RECEIVED, _A.PAYOUT): _S.RECOVERED,
    (_S.PAYMENT_RECEIVED, _A.CONTINUE_RECOVERY): _S.IN_PROCESS,
    (_S.PAYMENT_RECEIVED, _A.MARK_COMPLETE): _S.RECOVERED,
    (_S.IN_PROCESS, _A.DISPUTE): _S.DISPUTED,
    (_S.DISPUTED, _A.REQUEST_EVIDENCE): _S.EVIDENCE_REQUESTED,
    (_S.EVIDENCE_REQUESTED, _A.SUBMIT_EVIDENCE): _S.IN_PROCESS,
    (_S.DISPUTED, _A.SUBMIT_EVIDENCE): _S.IN_PROCESS,
    **{(status, _A.CANCEL): _S.CANCELLED for status in _S if status not in TERMINAL_STATUSES},
}


# Operators drive recovery; the creditor side (the creditor or its platform) only cancels, answers
# a dispute with evidence and decides after a partial payment.
OPERATOR_ACTIONS: frozenset[ReceivableAction] = frozenset(
    {_A.START, _A.PAYMENT, _A.PAYOUT, _A.DISPUTE, _A.REQUEST_EVIDENCE}
)


def next_status(
    status: str, action: str, *, fully_paid: bool = False, awaiting_decision: bool = False
) -> ReceivableStatus:
    """The status after ``action``, or InvalidTransition; guards use the payment state."""
    try:
        current, act = ReceivableStatus(status), ReceivableAction(action)
    except ValueError:
        raise InvalidTransition(status, action) from None
    target = TRANSITIONS.get((current, act))
    if target is None:
        raise InvalidTransition(status, action)
    if act is _A.PAYOUT and not fully_paid:
        raise InvalidTransition(status, action, "Only a fully paid receivable can be paid out.")
    if act in (_A.CONTINUE_RECOVERY, _A.MARK_COMPLETE) and not awaiting_decision:
        raise InvalidTransition(
            status, action, "This receivable is not awaiting a partial-payment decision."
        )
    return target


def allowed_actions(
    status: str,
    *,
    fully_paid: bool = False,
    awaiting_decision: bool = False,
    operator: bool = True,
) -> list[ReceivableAction]:
    """The actions ``next_status`` would accept now from this side, in declaration order."""
    allowed = []
    for action in ReceivableAction:
        if not operator and action in OPERATOR_ACTIONS:
            continue
        try:
            next_status(status, action, fully_paid=fully_paid, awaiting_decision=awaiting_decision)
        except InvalidTransition:
            continue
        allowed.append(action)
    return allowed


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """The receivable's figures after a payment is recorded."""

    status: ReceivableStatus
    amount_recovered: Decimal
    amount_remaining: Decimal
    fully_paid: bool
    awaiting_decision: bool


def apply_payment(
    status: str, amount: Decimal, amount_recovered: Decimal, payment: Decimal
) -> PaymentOutcome:
    """Record a debtor payment on an ``in_process`` receivable (full or partial)."""
    if not payment.is_finite() or payment <= 0:
        raise ValueError("a payment must be a positive amount")
    target = next_status(status, _A.PAYMENT)
    recovered = amount_recovered + payment
    fully_paid = recovered >= amount
    return PaymentOutcome(
        status=target,
        amount_recovered=recovered,
        # An overpayment leaves nothing to recover, not a negative balance.
        amount_remaining=max(Decimal("0.00"), amount - recovered),
        fully_paid=fully_paid,
        awaiting_decision=not fully_paid,
    )


# --- Creation payload ----------------------------------------------------------------------------

# Active ISO 4217 currencies, without funds, precious metals and testing codes (XAU, XTS, XXX…):
# none of those is what an invoice is payable in.
_ISO_4217_TEXT = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217_CURRENCIES: frozenset[str] = frozenset(_ISO_4217_TEXT.split())

DEFAULT_CURRENCY = "EUR"
DEFAULT_CONTACT_LEVEL = 0
COMPANY_TYPES = ("company", "individual")
AMOUNT_TOLERANCE = Decimal("0.01")
MAX_CONTACTS = 50
MAX_INVOICE_NUMBERS = 100


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """A validated ``Invoice``."""

    numbers: tuple[str, ...]
    issue_date: date
    due_date: date
    service_description: str
    amount: Decimal
    amount_before_tax: Decimal | None
    tax_amount: Decimal | None
    currency: str


@dataclass(frozen=True, slots=True)
class ContactDraft:
    """A validated debtor ``Contact``."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    job_title: str | None = None
    level: int = DEFAULT_CONTACT_LEVEL


@dataclass(frozen=True, slots=True)
class DebtorDraft:
    """A validated ``Debtor``; SIRET as 14 digits, VAT as ``FR`` + 11 characters."""

    company_name: str
    company_type: str
    siret: str | None
    vat_number: str | None
    address: AddressDraft | None
    contacts: tuple[ContactDraft, ...]


@dataclass(frozen=True, slots=True)
class ReceivableDraft:
    """A validated ``CreateReceivableRequest``, ready for the soft rules and persistence."""

    user_id: str
    invoice: InvoiceDraft
    debtor: DebtorDraft
    metadata: dict[str, Any] = field(default_factory=dict)
    force_proceed: bool = False


def _invoice_number_key(number: str) -> str:
    # "INV 001" and "inv-001"-style variants of one number must compare equal.
    return re.sub(r"\s+", "", number).casefold()


def _read_invoice(
    reader: PayloadReader, raw: Mapping[str, Any], today: date
) -> InvoiceDraft | None:
    numbers: list[str] = []
    items = reader.array(
        raw.get("numbers"), "invoice.numbers", required=True, max_items=MAX_INVOICE_NUMBERS
    )
    seen: set[str] = set()
    for index, item in enumerate(items or []):
        path = f"invoice.numbers[{index}]"
        number = reader.string(item, path, required=True, max_length=100)
        if number is None:
            continue
        if _invoice_number_key(number) in seen:
            reader.add(path, "duplicate_value", f"{path} repeats an earlier invoice number.")
            continue
        seen.add(_invoice_number_key(number))
        numbers.append(number)

    issue_date = reader.iso_date(raw.get("issue_date"), "invoice.issue_date", required=True)
    due_date = reader.iso_date(raw.get("due_date"), "invoice.due_date", required=True)
    if issue_date and due_date and issue_date > due_date:
        reader.add(
            "invoice.due_date",
            "invalid_date_range",
            "invoice.due_date must be on or after invoice.issue_date.",
        )
    elif due_date and due_date >= today:
        # Only overdue invoices are recovered: the due date must be strictly before today.
        reader.add(
            "invoice.due_date",
            "invoice_not_overdue",
            f"invoice.due_date must be in the past (before {today.isoformat()}): "
            "only overdue invoices can be recovered.",
        )

    description = reader.string(
        raw.get("service_description"),
        "invoice.service_description",
        required=True,
        max_length=2000,
    )
    amount = reader.money(raw.get("amount"), "invoice.amount", required=True, positive=True)
    before_tax = reader.money(raw.get("amount_before_tax"), "invoice.amount_before_tax")
    tax = reader.money(raw.get("tax_amount"), "invoice.tax_amount")
    if (
        amount is not None
        and before_tax is not None
        and tax is not None
        and abs(before_tax + tax - amount) > AMOUNT_TOLERANCE
    ):
        reader.add(
            "invoice.amount",
            "amount_mismatch",
            f"invoice.amount ({amount}) must equal amount_before_tax + tax_amount "
            f"({before_tax + tax}) within {AMOUNT_TOLERANCE}.",
        )

    currency = reader.string(raw.get("currency"), "invoice.currency", max_length=10)
    if currency is None:
        currency = DEFAULT_CURRENCY
    elif currency.upper() not in ISO_4217_CURRENCIES:
        reader.add(
            "invoice.currency",
            "invalid_currency",
            "invoice.currency must be an ISO 4217 currency code such as EUR.",
        )
    currency = currency.upper()

    if issue_date is None or due_date is None or description is None or amount is None:
        return None
    return InvoiceDraft(
        numbers=tuple(numbers),
        issue_date=issue_date,
        due_date=due_date,
        service_description=description,
        amount=amount,
        amount_before_tax=before_tax,
        tax_amount=tax,
        currency=currency,
    )


def _read_contact(reader: PayloadReader, value: Any, path: str) -> ContactDraft | None:
    raw = reader.mapping(value, path, required=True)
    if raw is None:
        return None
    email = reader.email(raw.get("email"), f"{path}.email", required=True)
    contact = ContactDraft(
        email=email or "",
        first_name=reader.string(raw.get("first_name"), f"{path}.first_name", max_length=100),
        last_name=reader.string(raw.get("last_name"), f"{path}.last_name", max_length=100),
        phone=reader.phone(raw.get("phone"), f"{path}.phone"),
        job_title=reader.string(raw.get("job_title"), f"{path}.job_title", max_length=100),
        level=reader.integer(
            raw.get("level"), f"{path}.level", default=DEFAULT_CONTACT_LEVEL, minimum=0, maximum=10
        )
        or 0,
    )
    return contact if email else None


def _read_debtor(reader: PayloadReader, raw: Mapping[str, Any]) -> DebtorDraft | None:
    name = reader.string(raw.get("company_name"), "debtor.company_name", required=True)
    company_type = reader.choice(
        raw.get("company_type"), "debtor.company_type", COMPANY_TYPES, default="company"
    )
    siret = reader.string(raw.get("siret"), "debtor.siret", max_length=30)
    vat = reader.string(raw.get("vat_number"), "debtor.vat_number", max_length=30)
    kyb_errors = check_company(siret, vat, field_prefix="debtor")
    reader.errors.extend(kyb_errors)
    address = read_address(reader, raw.get("address"), "debtor.address")
    contacts: list[ContactDraft] = []
    items = reader.array(
        raw.get("contacts"), "debtor.contacts", required=True, max_items=MAX_CONTACTS
    )
    for index, item in enumerate(items or []):
        contact = _read_contact(reader, item, f"debtor.contacts[{index}]")
        if contact is not None:
            contacts.append(contact)
    if name is None or company_type is None or kyb_errors:
        return None
    return DebtorDraft(
        company_name=name,
        company_type=company_type,
        siret=normalize_siret(siret) if siret else None,
        vat_number=normalize_vat(vat) if vat else None,
        address=address,
        contacts=tuple(contacts),
    )


def validate_receivable(payload: Mapping[str, Any], today: date) -> ReceivableDraft:
    """Apply the hard rules to a ``CreateReceivableRequest``; DomainValidationError lists all."""
    if not isinstance(payload, Mapping):
        raise DomainValidationError(
            [FieldError("", "invalid_type", "The request body must be a JSON object.")]
        )
    reader = PayloadReader()
    body = payload
    user_id = reader.string(body.get("user_id"), "user_id", required=True, max_length=100)
    raw_invoice = reader.mapping(body.get("invoice"), "invoice", required=True)
    invoice = _read_invoice(reader, raw_invoice, today) if raw_invoice is not None else None
    raw_debtor = reader.mapping(body.get("debtor"), "debtor", required=True)
    debtor = _read_debtor(reader, raw_debtor) if raw_debtor is not None else None
    metadata = reader.mapping(body.get("metadata"), "metadata")
    force_proceed = reader.boolean(body.get("force_proceed"), "force_proceed")
    reader.raise_if_any()
    # Every None below would have recorded an error and raised above.
    assert user_id is not None
    assert invoice is not None
    assert debtor is not None
    return ReceivableDraft(
        user_id=user_id,
        invoice=invoice,
        debtor=debtor,
        metadata=dict(metadata or {}),
        force_proceed=force_proceed,
    )


# --- Soft rules (skipped with force_proceed) -----------------------------------------------------

PRESCRIPTION_YEARS = 5
DUPLICATE_RECEIVABLE = "duplicate_receivable"
INVOICE_TIME_BARRED = "invoice_time_barred"
NO_PHONE_CONTACT = "no_phone_contact"

# Legal forms dropped for duplicate detection: "ACME SAS" and "Acme" are the same debtor.
_LEGAL_FORMS_TEXT = """
    sa sas sasu sarl eurl sci snc scs sca scop selarl selas selafa gie ei eirl
    ltd llc inc plc gmbh ag bv nv srl spa
"""
_LEGAL_FORMS = frozenset(_LEGAL_FORMS_TEXT.split())


def prescription_date(due_date: date) -> date:
    """The last day on which a claim due on ``due_date`` can still be pursued (5 years later)."""
    try:
        return due_date.replace(year=due_date.year + PRESCRIPTION_YEARS)
    except ValueError:
        # 29 February: the term ends on the last day of February.
        return due_date.replace(year=due_date.year + PRESCRIPTION_YEARS, day=28)


def is_time_barred(due_date: date, today: date) -> bool:
    """Whether the commercial prescription (5 years from the due date) has run out by today."""
    return today > prescription_date(due_date)


def time_barred_error(due_date: date, today: date) -> FieldError | None:
    """The ``invoice_time_barred`` soft error for this due date, if it applies."""
    if not is_time_barred(due_date, today):
        return None
    return FieldError(
        "invoice.due_date",
        INVOICE_TIME_BARRED,
        f"The invoice fell due more than {PRESCRIPTION_YEARS} years ago "
        f"(prescription reached on {prescription_date(due_date).isoformat()}); "
        "send force_proceed: true to submit it anyway.",
    )


def normalize_company_name(name: str) -> str:
    """A comparison key for a company name: no accents, case, punctuation or legal form."""
    decomposed = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    # Dots and apostrophes join ("S.A.S." -> "sas", "l'atelier" -> "latelier"); other
    # punctuation separates words.
    text = re.sub(r"[.'\u2019]", "", text)
    words = re.sub(r"[\W_]+", " ", text).split()
    kept = [word for word in words if word not in _LEGAL_FORMS]
    # A name made only of legal-form words ("SAS") keeps them rather than becoming empty.
    return " ".join(kept or words)


@dataclass(frozen=True, slots=True)
class ExistingReceivable:
    """What duplicate detection needs to know about a receivable already on file."""

    debtor_siret: str | None
    debtor_name_key: str
    invoice_numbers: tuple[str, ...]
    status: str


def is_duplicate_of(draft: ReceivableDraft, existing: ExistingReceivable) -> bool:
    """Same debtor (SIRET or normalised name) and an invoice number in common, and not cancelled."""
    # A recovered receivable still counts: submitting it again would recover the money twice.
    if existing.status == ReceivableStatus.CANCELLED:
        return False
    same_debtor = (
        draft.debtor.siret is not None
        and existing.debtor_siret is not None
        and draft.debtor.siret == normalize_siret(existing.debtor_siret)
    ) or normalize_company_name(draft.debtor.company_name) == existing.debtor_name_key
    if not same_debtor:
        return False
    ours = {_invoice_number_key(n) for n in draft.invoice.numbers}
    return any(_invoice_number_key(n) in ours for n in existing.invoice_numbers)


def duplicate_error(existing_id: str) -> FieldError:
    """The ``duplicate_receivable`` soft error pointing at the receivable already on file."""
    return FieldError(
        "invoice.numbers",
        DUPLICATE_RECEIVABLE,
        f"A receivable for this debtor with the same invoice number already exists "
        f"({existing_id}); send force_proceed: true to submit it anyway.",
    )


def phone_warning(contacts: Iterable[ContactDraft | Mapping[str, Any]]) -> dict[str, str] | None:
    """The ``no_phone_contact`` warning when no contact has a phone number, else None."""
    for contact in contacts:
        phone = contact.get("phone") if isinstance(contact, Mapping) else contact.phone
        if isinstance(phone, str) and phone.strip():
            return None
    return {
        "code": NO_PHONE_CONTACT,
        "message": "No debtor contact has a phone number: recovery will rely on email and mail, "
        "which succeeds less often. Add a contact with a phone number if you can.",
    }


# --- Recovery progress ---------------------------------------------------------------------------


class RecoveryPhase(enum.StrEnum):
    """How far recovery has escalated."""

    AMICABLE = "amicable"
    FORMAL_NOTICE = "formal_notice"
    LEGAL = "legal"


FORMAL_NOTICE_AFTER_DAYS = 30
LEGAL_AFTER_DAYS = 60
INDEMNITY_PER_INVOICE = Decimal("40.00")


def recovery_phase(days_since_start: int) -> RecoveryPhase:
    """The phase reached ``days_since_start`` days after recovery started (30 / 60 day steps)."""
    # A negative count (clock skew between processes) is simply "not started long ago".
    if days_since_start >= LEGAL_AFTER_DAYS:
        return RecoveryPhase.LEGAL
    if days_since_start >= FORMAL_NOTICE_AFTER_DAYS:
        return RecoveryPhase.FORMAL_NOTICE
    return RecoveryPhase.AMICABLE


def indemnity_due(number_of_invoices: int, company_type: str) -> Decimal:
    """The fixed 40 EUR recovery indemnity per invoice (L441-10, D441-5); none for individuals."""
    if number_of_invoices < 0:
        raise ValueError("number_of_invoices must not be negative")
    # The indemnity is owed between professionals only; consumers never owe it.
    if company_type == "individual":
        return Decimal("0.00")
    return INDEMNITY_PER_INVOICE * number_of_invoices
