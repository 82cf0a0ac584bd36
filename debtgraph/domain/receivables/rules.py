"""Soft creation rules (skipped with ``force_proceed``): prescription, duplicates, phone.

Prescription (5 years, Code de commerce L110-4) runs from the due date: a claim cannot lapse
before it is payable. The claim is time-barred the day after the fifth anniversary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from debtgraph.domain.core.errors import FieldError
from debtgraph.domain.creditors.kyb import normalize_siret
from debtgraph.domain.receivables.models import NAME_LENGTH, ReceivableStatus
from debtgraph.domain.receivables.parsing import ContactDraft, ReceivableDraft, invoice_number_key

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
    # Bounded by its column: NFKD and casefold can make a name several times longer ("ß" is
    # "ss", "ﬃ" is "ffi"), and names alike in their first NAME_LENGTH characters of key are
    # one debtor to the duplicate check.
    return " ".join(kept or words)[:NAME_LENGTH]


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
    ours = {invoice_number_key(n) for n in draft.invoice.numbers}
    return any(invoice_number_key(n) in ours for n in existing.invoice_numbers)


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
