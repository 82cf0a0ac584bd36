"""Reading a receivable creation payload into a typed draft (PRODUCT.md §3).

Decisions:

- Contact ``level`` defaults to 0 (first line; escalation goes up to 10).
- Amounts accept JSON numbers or decimal strings with at most 2 decimals; NaN/infinity, exponent
  strings and more decimals are refused rather than rounded (rounding money silently is a bug).
- Duplicate invoice numbers inside one submission are refused (``duplicate_value``).
- Unknown keys in the payload are ignored (forward compatibility with newer clients).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

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
from debtgraph.domain.receivables.models import NAME_LENGTH

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
CURRENCY_MESSAGE = "{field} must be an ISO 4217 currency code such as EUR."
DEFAULT_CONTACT_LEVEL = 0
COMPANY_TYPES = ("company", "individual")
AMOUNT_TOLERANCE = Decimal("0.01")
MAX_CONTACTS = 50
CONTACTS_FIELD = "debtor.contacts"
MAX_INVOICE_NUMBERS = 100
# Stripe's metadata limits (the seed's metadata is Stripe's): a receivable holds at most 50
# keys of at most 40 characters, each value at most 500 characters (a string's own; any other
# value's as JSON text, since ours may be objects or numbers as well). Unbounded,
# a few PATCHes grew one receivable to megabytes, sent with every read, page and webhook.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_CHARS = 500
TOO_MANY_METADATA_KEYS = f"metadata must have at most {MAX_METADATA_KEYS} keys."


def _value_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    try:
        return len(orjson.dumps(value).decode())
    except TypeError:
        # An integer beyond 64 bits (a GraphQL literal: variables and REST bodies make floats of
        # them), which orjson cannot write: the standard library can.
        return len(json.dumps(value, default=str))


def check_metadata(
    reader: PayloadReader,
    metadata: Mapping[str, Any],
    path: str,
    held: Mapping[str, Any] | None = None,
) -> None:
    """Record the errors of metadata as sent: its number of keys, its keys and values (a PATCH
    counts the keys merged too). A PATCH removing (null or "") a key the receivable ``held``
    is not judged: a key written before these bounds held can be shed; any other key,
    whatever its value, is."""
    if len(metadata) > MAX_METADATA_KEYS:
        reader.add(path, "too_many", TOO_MANY_METADATA_KEYS)
    for key, value in metadata.items():
        removed = value is None or value == ""
        if removed and held is not None and key in held:
            continue
        if len(key) > MAX_METADATA_KEY_LENGTH:
            reader.add(
                f"{path}.{key[:MAX_METADATA_KEY_LENGTH]}",
                "too_long",
                f"metadata keys must be at most {MAX_METADATA_KEY_LENGTH} characters.",
            )
        elif _value_length(value) > MAX_METADATA_VALUE_CHARS:
            reader.add(
                f"{path}.{key}",
                "too_long",
                f"{path}.{key} must be at most {MAX_METADATA_VALUE_CHARS} characters.",
            )


def too_many_contacts_error() -> FieldError:
    """A receivable's debtor holds at most ``MAX_CONTACTS`` contacts, however they were added."""
    return FieldError(
        CONTACTS_FIELD, "too_many", f"{CONTACTS_FIELD} must contain at most {MAX_CONTACTS} items."
    )


def currency_code(text: str) -> str | None:
    """The ISO 4217 code ``text`` spells in any case (``eur`` is EUR), or None for none."""
    # ASCII letters only: str.upper() maps others onto them ("\\u0131dr", dotless i, is "IDR").
    code = text.upper() if text.isascii() else ""
    return code if code in ISO_4217_CURRENCIES else None


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


def invoice_number_key(number: str) -> str:
    """The form of an invoice number used to compare numbers ("INV 001" equals "inv001")."""
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
        if invoice_number_key(number) in seen:
            reader.add(path, "duplicate_value", f"{path} repeats an earlier invoice number.")
            continue
        seen.add(invoice_number_key(number))
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
    elif currency_code(currency) is None:
        reader.add(
            "invoice.currency",
            "invalid_currency",
            CURRENCY_MESSAGE.format(field="invoice.currency"),
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
    name = reader.string(
        raw.get("company_name"), "debtor.company_name", required=True, max_length=NAME_LENGTH
    )
    company_type = reader.choice(
        raw.get("company_type"), "debtor.company_type", COMPANY_TYPES, default="company"
    )
    siret = reader.string(raw.get("siret"), "debtor.siret", max_length=30)
    vat = reader.string(raw.get("vat_number"), "debtor.vat_number", max_length=30)
    kyb_errors = check_company(siret, vat, field_prefix="debtor")
    reader.errors.extend(kyb_errors)
    address = read_address(reader, raw.get("address"), "debtor.address")
    contacts: list[ContactDraft] = []
    items = reader.array(raw.get("contacts"), CONTACTS_FIELD, required=True, max_items=MAX_CONTACTS)
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


def validate_receivable(payload: Any, today: date) -> ReceivableDraft:
    """Apply the hard rules to a ``CreateReceivableRequest``; DomainValidationError lists all.

    ``payload`` is REST's JSON object or GraphQL's typed input (see ``InputRecord``).
    """
    payload = input_fields(payload)
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
    metadata = reader.free_mapping(body.get("metadata"), "metadata")
    if metadata is not None:
        check_metadata(reader, metadata, "metadata")
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
