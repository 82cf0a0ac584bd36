"""The extractor: lines of an invoice (text layer or OCR) to a ``CreateReceivableRequest`` draft.

Pure: no I/O, no clock. Each field is found by its label (French and English wordings), its
value read from the rest of the label's segment, the next segment on the line, or the segment
just below (label-over-value tables); the billed-to party is the block under its label, which
tells it apart from the seller, whose identifiers usually sit in the header or the footer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from stdnum.eu import vat as eu_vat

from debtgraph.domain.creditors import kyb
from debtgraph.domain.extraction.layout import Line, Segment
from debtgraph.domain.extraction.values import (
    TERMS_LABEL,
    FoundDate,
    amounts_in,
    currency_of,
    dates_in,
    due_from_terms,
)

T = TypeVar("T")
_I = re.IGNORECASE

# Required fields of CreateReceivableRequest (user_id comes from the request itself).
REQUIRED = (
    "invoice.numbers",
    "invoice.issue_date",
    "invoice.due_date",
    "invoice.amount",
    "invoice.service_description",
    "debtor.company_name",
    "debtor.contacts[0].email",
)

# Confidence by how a value was found; OCR'd text scales it down.
LABELLED = 0.95
BELOW = 0.85
COMPUTED = 0.8
DOUBTFUL = 0.5
INVALID = 0.3
OCR_FACTOR = 0.9

NUMBER_LABEL = re.compile(
    r"(?P<kind>factures?|avoirs?|invoices?|credit\s+notes?)\s*"
    r"(?:n(?:[°ºo]|um[ée]ro)s?\.?|#|no\.?|nos\.?|numbers?|num\.?)\s*[:.]?"
    r"|n[°ºo]\.?\s*(?:de\s+(?:la\s+)?)?(?P<kind2>factures?|avoirs?)\s*[:.]?",
    _I,
)
NUMBER_TOKEN = re.compile(r"[A-Z0-9][A-Z0-9\-/_.]*[A-Z0-9]|[0-9]", _I)
NUMBER_SEPARATOR = re.compile(r"\s*(?:,|;|&|\bet\b|\band\b)\s*", _I)

DUE_LABEL = re.compile(
    r"date\s+d['\u2019]\s?[ée]ch[ée]ance|[ée]ch[ée]ance|due\s+date|payment\s+due(?:\s+date)?|"
    r"date\s+limite(?:\s+de\s+(?:paiement|r[èe]glement))?|[àa]\s+payer\s+avant\s+le|"
    r"payable\s+(?:avant\s+le|by|before)|due\s+(?:by|on)|\bdue\s*:",
    _I,
)
ISSUE_LABEL = re.compile(
    r"date\s+(?:de\s+(?:la\s+)?facture|de\s+facturation|d['\u2019]\s?[ée]mission|de\s+l['\u2019]avoir)|"
    r"invoice\s+date|date\s+of\s+(?:issue|invoice)|issue\s+date|date\s+issued|issued\s+on|"
    r"\bdate\s*:|^date$|\ble\s+(?=\d)",
    _I,
)

TTC_TIERS = (
    re.compile(
        r"net\s+[àa]\s+payer|amount\s+due|balance\s+due|total\s+due|montant\s+d[ûu]|"
        r"reste\s+[àa]\s+payer|total\s+[àa]\s+payer|amount\s+payable",
        _I,
    ),
    re.compile(
        r"total\s+t\.?t\.?c\.?|montant\s+t\.?t\.?c\.?|total\s+toutes\s+taxes|"
        r"total\s*\(?\s*(?:incl\.?|including|inc\.?)\s*(?:vat|tax)|grand\s+total|total\s+amount|"
        r"montant\s+total",
        _I,
    ),
    re.compile(r"\btotal\b(?!\s*(?:h\.?t|t\.?t\.?c|tva|excl|incl|vat|tax|hors|page|\())", _I),
)
HT_TIERS = (
    re.compile(
        r"total\s+h\.?t\.?|montant\s+h\.?t\.?|total\s+hors\s+taxes?|"
        r"total\s*\(?\s*(?:excl\.?|excluding|before)\s*(?:vat|tax)|net\s+amount|total\s+net\s+h\.?t",
        _I,
    ),
    re.compile(r"sous[-\s]total|sub[-\s]?total", _I),
)
TVA_TIERS = (
    re.compile(r"total\s+(?:tva|vat|tax)|montant\s+(?:de\s+la\s+)?tva|(?:vat|tax)\s+amount", _I),
    re.compile(r"\btva\b|\bvat\b|\bsales\s+tax\b|\btax\b", _I),
)
VAT_ID_CONTEXT = re.compile(
    r"intra|n[°ºo]\s*(?:de\s+)?tva|vat\s*(?:no|number|reg|id|n[°º])|tva\s*:?\s*[A-Z]{2}\s?\d|"
    r"(?:vat|tva)\s*:?\s*[A-Z]{2}[0-9A-Z]{2}",
    _I,
)
VAT_ID = re.compile(r"\b([A-Z]{2})[\s.-]?((?:[0-9A-Z][\s.-]?){8,12}[0-9A-Z])\b")
SIRET_RE = re.compile(r"\bSIRE([TN])\b\s*(?:n[°º]\s*)?:?\s*((?:\d[\s.]?){8,13}\d)", _I)
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RE = re.compile(
    r"(?<!\d)(?:\+\d{1,3}[\s.]?(?:\(0\)\s?)?\d{1,4}(?:[\s.-]?\d{2,4}){2,4}"
    r"|0[1-9](?:[\s.-]?\d{2}){4})(?!\d)"
)
BILLED_TO_LABEL = re.compile(
    r"^(?:factur[ée]e?\s+[àa]|[àa]\s+facturer\s+[àa]|facturer\s+[àa]|adress[ée]e?\s+[àa]|"
    r"destinataire|client(?:e)?|bill(?:ed)?\s+to|invoice\s+to|sold\s+to|customer)\b\s*:?\s*",
    _I,
)
# The billed-to labels that are also words a name may start with ("Client Corp SARL", "Customer
# Care Ltd"): a line opening with one is a label only when a colon follows it or nothing does.
_NAME_LIKE_LABELS = frozenset({"client", "cliente", "customer", "destinataire"})


def _opens_billed_to(text: str) -> bool:
    """Whether a line of a party's block opens the billed-to party instead (the block ends)."""
    match = BILLED_TO_LABEL.search(text)
    if match is None:
        return False
    if match.group(0).strip(" :").lower() not in _NAME_LIKE_LABELS:
        return True
    return ":" in match.group(0) or not text[match.end() :].strip()


SELLER_LABEL = re.compile(
    r"^(?:[ée]metteur|vendeur|fournisseur|prestataire|from|seller|supplier|vendor)\b\s*:?\s*", _I
)
CONTACT_LABEL = re.compile(
    r"^(?:contact|attn\.?|attention|[àa]\s+l['\u2019]attention\s+de|interlocuteur)\s*:?\s*", _I
)
PHONE_LABEL = re.compile(r"^(?:t[ée]l(?:[ée]phone)?|phone|tel|mobile|portable)\.?\s*:?\s*", _I)
EMAIL_LABEL = re.compile(r"^(?:e-?mail|courriel|mail)\s*:?\s*", _I)
# A label is followed by its separator, or stands alone with its value in the next segment: a
# line that merely starts with the word ("Prestation de conseil") is a description, not a label.
DESCRIPTION_LABEL = re.compile(
    r"^(?:(?:objet|subject|prestations?)\s*(?::|$)|description\s*:|d[ée]signation\s*:|re\s*:)\s*",
    _I,
)
# A line that names the service itself, first word included ("Prestation(s) de conseil").
DESCRIPTION_LINE = re.compile(r"^prestations?\s+(?:de|d['\u2019]|du|des)\b", _I)
TABLE_HEADER = re.compile(r"^(?:d[ée]signation|description|libell[ée]|items?|prestations?)\b", _I)
POSTAL_FR = re.compile(r"^(?:F-)?(\d{5})\s+(.+)$")
POSTAL_UK = re.compile(r"^(.+?)\s+([A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})$")
COUNTRIES = {
    "france": "FR",
    "belgique": "BE",
    "belgium": "BE",
    "suisse": "CH",
    "switzerland": "CH",
    "germany": "DE",
    "allemagne": "DE",
    "united kingdom": "GB",
    "royaume-uni": "GB",
    "uk": "GB",
    "spain": "ES",
    "espagne": "ES",
    "italy": "IT",
    "italie": "IT",
    "luxembourg": "LU",
    "ireland": "IE",
    "netherlands": "NL",
    "pays-bas": "NL",
}
ENGLISH_WORDS = re.compile(r"\b(invoice|due|amount|total|bill|date|payment|the|to)\b", _I)
FRENCH_WORDS = re.compile(r"\b(facture|échéance|montant|payer|règlement|le|de|à|tva)\b", _I)
ANY_LABEL = [
    NUMBER_LABEL,
    DUE_LABEL,
    ISSUE_LABEL,
    SELLER_LABEL,
    *TTC_TIERS[:2],
    HT_TIERS[0],
    TERMS_LABEL,
    TABLE_HEADER,
]


@dataclass(slots=True)
class ReviewWarning:
    """A reason to review the result: ``{code, message, field}``."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object."""
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(slots=True)
class Extraction:
    """What the extractor found: the draft, its confidences, what is missing and why to review."""

    data: dict[str, Any]
    field_confidence: dict[str, float]
    missing_fields: list[str]
    warnings: list[ReviewWarning]
    confidence: float
    page_count: int = 0
    ocr_pages: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what the worker process hands back)."""
        return {
            "data": self.data,
            "field_confidence": self.field_confidence,
            "missing_fields": self.missing_fields,
            "warnings": [w.as_dict() for w in self.warnings],
            "confidence": self.confidence,
            "page_count": self.page_count,
            "ocr_pages": self.ocr_pages,
        }


@dataclass(slots=True)
class _Found:
    value: Any
    confidence: float
    line: Line | None = None


@dataclass
class _Reader:
    lines: list[Line]
    ocr_pages: set[int]

    def confidence(self, base: float, line: Line | None) -> float:
        if line is not None and line.page in self.ocr_pages:
            return round(base * OCR_FACTOR, 2)
        return base

    def below(self, line: Line, segment: Segment) -> Segment | None:
        """The segment right under ``segment`` on the next line of the same page, if any."""
        index = self.lines.index(line)
        if index + 1 >= len(self.lines):
            return None
        nxt = self.lines[index + 1]
        if nxt.page != line.page or nxt.top - line.bottom > 3 * line.height:
            return None
        for candidate in nxt.segments:
            if candidate.x0 < segment.x1 + 2 and candidate.x1 > segment.x0 - 2:
                return candidate
        return None

    def labelled(
        self,
        label: re.Pattern[str],
        parse: Callable[[str], T | None],
        *,
        last: bool = False,
        allow_below: bool = True,
        skip: Callable[[str], bool] | None = None,
    ) -> _Found | None:
        """The value after a label: same segment, next segment, or the segment below."""
        hits: list[_Found] = []
        for line in self.lines:
            for i, segment in enumerate(line.segments):
                match = label.search(segment.text)
                if match is None or (skip is not None and skip(segment.text)):
                    continue
                rest = segment.text[match.end() :]
                value = parse(rest)
                if value is None and i + 1 < len(line.segments):
                    value = parse(" ".join(s.text for s in line.segments[i + 1 :]))
                if value is not None:
                    hits.append(_Found(value, self.confidence(LABELLED, line), line))
                    if not last:
                        return hits[0]
                    continue
                if allow_below and not rest.strip(" :"):
                    under = self.below(line, segment)
                    if under is not None and (value := parse(under.text)) is not None:
                        hits.append(_Found(value, self.confidence(BELOW, line), line))
                        if not last:
                            return hits[0]
        return hits[-1] if hits else None


def _first_date(month_first: bool) -> Callable[[str], FoundDate | None]:
    def parse(text: str) -> FoundDate | None:
        found = dates_in(text, month_first=month_first)
        return found[0] if found else None

    return parse


def _last_amount(text: str) -> Decimal | None:
    found = amounts_in(text)
    return found[-1] if found else None


def _numbers(text: str) -> list[str] | None:
    text = text.strip(" :.#")
    numbers: list[str] = []
    while text:
        match = NUMBER_TOKEN.match(text)
        if match is None or not any(c.isdigit() for c in match.group(0)):
            break
        numbers.append(match.group(0))
        text = text[match.end() :]
        sep = NUMBER_SEPARATOR.match(text)
        if sep is None:
            break
        text = text[sep.end() :]
    return numbers or None


def _amount_field(reader: _Reader, tiers: Sequence[re.Pattern[str]], **kw: Any) -> _Found | None:
    for tier in tiers:
        found = reader.labelled(tier, _last_amount, last=True, allow_below=False, **kw)
        if found is not None:
            return found
    for tier in tiers:
        found = reader.labelled(tier, _last_amount, last=True, **kw)
        if found is not None:
            return found
    return None


def _is_vat_id(text: str) -> bool:
    return VAT_ID_CONTEXT.search(text) is not None


@dataclass(slots=True)
class _Party:
    name: str | None = None
    name_line: Line | None = None
    siret: str | None = None
    siren: str | None = None
    vat: str | None = None
    address_lines: list[str] = field(default_factory=list)
    contacts: list[dict[str, str]] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    person: tuple[str, str] | None = None
    lines: list[Line] = field(default_factory=list)


def _party_block(reader: _Reader, label: re.Pattern[str]) -> tuple[_Party, set[int]] | None:
    """The block of segments under a party label, read into a party."""
    for li, line in enumerate(reader.lines):
        for segment in line.segments:
            match = label.search(segment.text)
            if match is None or re.match(r"(?:n[°ºo]|code|r[ée]f)", segment.text, _I):
                continue
            party = _Party()
            used: set[int] = {id(segment)}
            texts: list[tuple[str, Line]] = []
            rest = segment.text[match.end() :].strip(" :")
            if rest:
                texts.append((rest, line))
            x0 = segment.x0
            prev = line
            for nxt in reader.lines[li + 1 :]:
                if nxt.page != line.page or nxt.top - prev.bottom > 1.2 * prev.height + 4:
                    break
                block = [s for s in nxt.segments if abs(s.x0 - x0) < 40]
                if not block:
                    break
                seg = block[0]
                if any(p.search(seg.text) for p in ANY_LABEL) or _opens_billed_to(seg.text):
                    break
                texts.append((seg.text, nxt))
                used.add(id(seg))
                prev = nxt
            _read_party(party, texts)
            return party, used
    return None


def _read_party(party: _Party, texts: list[tuple[str, Line]]) -> None:
    for text, line in texts:
        party.lines.append(line)
        consumed = False
        for m in SIRET_RE.finditer(text):
            digits = re.sub(r"\D", "", m.group(2))
            if m.group(1).upper() == "T" or len(digits) == 14:
                party.siret = party.siret or digits
            else:
                party.siren = party.siren or digits[:9]
            consumed = True
        if _is_vat_id(text) and (vm := VAT_ID.search(text.split(":", 1)[-1].upper())):
            party.vat = party.vat or re.sub(r"[\s.-]", "", vm.group(0))
            consumed = True
        # OCR often reads "a @b.fr" for "a@b.fr".
        emails = EMAIL_RE.findall(re.sub(r"\s*@\s*", "@", text))
        for email in emails:
            party.contacts.append({"email": email})
            consumed = True
        without_emails = EMAIL_RE.sub(" ", re.sub(r"\s*@\s*", "@", text))
        for phone in PHONE_RE.findall(without_emails):
            party.phones.append(re.sub(r"\s+", " ", phone.strip()))
            consumed = True
        if contact := CONTACT_LABEL.match(text):
            # The person is the part of the line that names one: its email and phone, read
            # above, are no part of the name ("Jean Dupont, compta@x.fr, +33 1 23 45 67 89").
            rest = re.sub(r"\s*@\s*", "@", text[contact.end() :])
            rest = PHONE_RE.sub(",", EMAIL_RE.sub(",", rest))
            person = next((p for p in rest.split(",") if re.search(r"[^\W\d_]", p)), "")
            names = [n for n in re.split(r"\s+", person.strip(" -\u2013")) if n]
            if len(names) >= 2 and party.person is None:
                party.person = (names[0], " ".join(names[1:]))
            consumed = True
        if consumed or PHONE_LABEL.match(text) or EMAIL_LABEL.match(text):
            continue
        if party.name is None:
            party.name = text.strip(" ,")
            party.name_line = line
        else:
            party.address_lines.append(text.strip(" ,"))


def _address(lines: list[str]) -> tuple[dict[str, str], bool]:
    """An Address from a party's lines after its name; True when a postal-code line was seen."""
    address: dict[str, str] = {}
    street: list[str] = []
    complete = False
    for text in lines:
        country = COUNTRIES.get(text.strip().lower())
        if country:
            address["country"] = country
            continue
        if m := POSTAL_FR.match(text):
            address["postal_code"], address["city"] = m.group(1), m.group(2).strip()
            address.setdefault("country", "FR")
            complete = True
            continue
        if m := POSTAL_UK.match(text):
            address["city"], address["postal_code"] = m.group(1).strip(" ,"), m.group(2)
            address.setdefault("country", "GB")
            complete = True
            continue
        if not complete:
            street.append(text)
    if street:
        address["line1"] = street[0]
    if len(street) > 1:
        address["line2"] = ", ".join(street[1:])
    return address, complete


def _siret_warnings(party: _Party, warnings: list[ReviewWarning]) -> tuple[float, float]:
    siret_conf = vat_conf = LABELLED
    if party.siret and not kyb.is_valid_siret(party.siret):
        warnings.append(
            ReviewWarning(
                "invalid_siret",
                f"SIRET {party.siret} fails its checksum (Luhn): check it on the invoice.",
                "debtor.siret",
            )
        )
        siret_conf = INVALID
    if party.siren and not kyb.is_valid_siren(party.siren):
        warnings.append(
            ReviewWarning(
                "invalid_siren",
                f"SIREN {party.siren} fails its checksum (Luhn): check it on the invoice.",
                "metadata.debtor_siren",
            )
        )
    if party.vat:
        valid = (
            kyb.is_valid_fr_vat(party.vat)
            if party.vat.startswith("FR")
            else eu_vat.is_valid(party.vat)
        )
        if not valid:
            warnings.append(
                ReviewWarning(
                    "invalid_vat_number",
                    f"VAT number {party.vat} fails its check digits: check it on the invoice.",
                    "debtor.vat_number",
                )
            )
            vat_conf = INVALID
        elif party.vat.startswith("FR") and (party.siret or party.siren):
            identifier = party.siret or party.siren or ""
            if not kyb.vat_matches_siren(party.vat, identifier):
                warnings.append(
                    ReviewWarning(
                        "vat_siren_mismatch",
                        f"VAT number {party.vat} does not belong to SIREN {identifier[:9]}.",
                        "debtor.vat_number",
                    )
                )
                vat_conf = DOUBTFUL
    return siret_conf, vat_conf


def _seller(reader: _Reader, debtor_segments: set[int]) -> dict[str, str]:
    """The seller: its label's block, else page 1's first line; identifiers outside the debtor."""
    seller: dict[str, str] = {}
    block = _party_block(reader, SELLER_LABEL)
    if block is not None and block[0].name:
        seller["name"] = block[0].name
    elif reader.lines:
        first = reader.lines[0].segments[0]
        if id(first) not in debtor_segments and not any(p.search(first.text) for p in ANY_LABEL):
            seller["name"] = first.text
    for line in reader.lines:
        for segment in line.segments:
            if id(segment) in debtor_segments:
                continue
            if "siret" not in seller and (m := SIRET_RE.search(segment.text)):
                seller["siret"] = re.sub(r"\D", "", m.group(2))
            if (
                "vat_number" not in seller
                and _is_vat_id(segment.text)
                and (vm := VAT_ID.search(segment.text.split(":", 1)[-1].upper()))
            ):
                seller["vat_number"] = re.sub(r"[\s.-]", "", vm.group(0))
    return seller


def _description(reader: _Reader) -> _Found | None:
    found = reader.labelled(DESCRIPTION_LABEL, lambda t: t.strip(" :") or None, allow_below=False)
    if found is not None:
        return found
    for line in reader.lines:
        # Its first column only: on a table row the quantity and amounts follow in others.
        text = line.segments[0].text.strip() if line.segments else ""
        if DESCRIPTION_LINE.match(text):
            return _Found(text, reader.confidence(BELOW, line), line)
    for line in reader.lines:
        for segment in line.segments:
            if TABLE_HEADER.match(segment.text) and len(line.segments) > 1:
                under = reader.below(line, segment)
                if under is not None and under.text.strip():
                    return _Found(under.text.strip(), reader.confidence(BELOW, line), line)
    return None


def extract_fields(
    lines: list[Line],
    *,
    user_id: str | None = None,
    ocr_pages: Sequence[int] = (),
    warnings: Sequence[ReviewWarning] = (),
) -> Extraction:
    """Turn an invoice's lines into a ``CreateReceivableRequest`` draft with confidences."""
    reader = _Reader(lines, set(ocr_pages))
    found_warnings: list[ReviewWarning] = list(warnings)
    confidence: dict[str, float] = {}
    full_text = "\n".join(line.text for line in lines)
    english = len(ENGLISH_WORDS.findall(full_text)) > len(FRENCH_WORDS.findall(full_text))
    currency = _currency(reader, full_text)
    month_first = currency == "USD"

    invoice: dict[str, Any] = {}
    numbers: list[str] = []
    credit_note = False
    for line in lines:
        for segment in line.segments:
            for match in NUMBER_LABEL.finditer(segment.text):
                kind = (match.group("kind") or match.group("kind2") or "").lower()
                rest = segment.text[match.end() :]
                parsed = _numbers(rest)
                base = LABELLED
                if parsed is None and not rest.strip(" :"):
                    # A label over its value, as in a header table.
                    under = reader.below(line, segment)
                    parsed = _numbers(under.text) if under is not None else None
                    base = BELOW
                if parsed is None:
                    continue
                if kind.startswith(("avoir", "credit")):
                    credit_note = True
                for number in parsed:
                    if number not in numbers:
                        numbers.append(number)
                confidence.setdefault("invoice.numbers", reader.confidence(base, line))
    invoice["numbers"] = numbers
    if credit_note:
        found_warnings.append(
            ReviewWarning(
                "credit_note",
                "The document is a credit note (avoir): it is money owed to the debtor, not a "
                "receivable to recover.",
                "invoice.numbers",
            )
        )

    issue = reader.labelled(
        ISSUE_LABEL, _first_date(month_first), skip=lambda text: DUE_LABEL.search(text) is not None
    )
    due = reader.labelled(DUE_LABEL, _first_date(month_first))
    if issue is not None:
        invoice["issue_date"] = issue.value.value.isoformat()
        confidence["invoice.issue_date"] = issue.confidence
    terms = reader.labelled(TERMS_LABEL, lambda t: t.strip() or None, allow_below=True)
    if due is not None:
        invoice["due_date"] = due.value.value.isoformat()
        confidence["invoice.due_date"] = due.confidence
    elif issue is not None:
        computed: date | None = None
        for line in lines:
            computed = due_from_terms(line.text, issue.value.value)
            if computed is not None and (TERMS_LABEL.search(line.text) or "jours" in line.text):
                break
            computed = None
        if computed is None and terms is not None:
            computed = due_from_terms(str(terms.value), issue.value.value)
        if computed is not None:
            invoice["due_date"] = computed.isoformat()
            confidence["invoice.due_date"] = reader.confidence(
                COMPUTED, terms.line if terms else None
            )
    for key, found_date in (("issue_date", issue), ("due_date", due)):
        if found_date is not None and found_date.value.ambiguous and english:
            found_warnings.append(
                ReviewWarning(
                    "date_ambiguous",
                    f"{found_date.value.value.isoformat()} was read day first; day and month "
                    "could be swapped.",
                    f"invoice.{key}",
                )
            )
            confidence[f"invoice.{key}"] = DOUBTFUL
    if (
        "issue_date" in invoice
        and "due_date" in invoice
        and invoice["due_date"] < invoice["issue_date"]
    ):
        found_warnings.append(
            ReviewWarning(
                "dates_out_of_order",
                f"The due date {invoice['due_date']} is before the issue date "
                f"{invoice['issue_date']}.",
                "invoice.due_date",
            )
        )
        confidence["invoice.due_date"] = DOUBTFUL

    description = _description(reader)
    if description is not None:
        invoice["service_description"] = description.value
        confidence["invoice.service_description"] = description.confidence

    _totals(reader, invoice, confidence, found_warnings)
    invoice["currency"] = currency or "EUR"
    confidence["invoice.currency"] = LABELLED if currency else DOUBTFUL

    debtor: dict[str, Any] = {"company_type": "company", "contacts": []}
    metadata: dict[str, Any] = {}
    block = _party_block(reader, BILLED_TO_LABEL)
    debtor_segments: set[int] = set()
    if block is not None:
        party, debtor_segments = block
        _fill_debtor(reader, party, debtor, metadata, confidence, found_warnings)
    seller = _seller(reader, debtor_segments)
    if seller:
        metadata["seller"] = seller

    data: dict[str, Any] = {"invoice": invoice, "debtor": debtor}
    if user_id is not None:
        data = {"user_id": user_id, **data}
    if metadata:
        data["metadata"] = metadata
    missing = [path for path in REQUIRED if path not in confidence]
    overall = round(sum(confidence.get(path, 0.0) for path in REQUIRED) / len(REQUIRED), 2)
    return Extraction(
        data=data,
        field_confidence=dict(sorted(confidence.items())),
        missing_fields=missing,
        warnings=found_warnings,
        confidence=overall,
        ocr_pages=sorted(ocr_pages),
    )


def _currency(reader: _Reader, full_text: str) -> str | None:
    for tier in (*TTC_TIERS, *HT_TIERS):
        found = reader.labelled(tier, currency_of, last=True, allow_below=False)
        if found is not None:
            return str(found.value)
    return currency_of(full_text)


def _money(value: Decimal) -> float:
    # JSON rendering: the draft is what a client posts back as JSON numbers.
    return float(abs(value))


def _totals(
    reader: _Reader,
    invoice: dict[str, Any],
    confidence: dict[str, float],
    warnings: list[ReviewWarning],
) -> None:
    ttc = _amount_field(reader, TTC_TIERS)
    ht = _amount_field(reader, HT_TIERS)
    tva = _amount_field(reader, TVA_TIERS[:1], skip=_is_vat_id)
    if tva is None:
        # Several rates and no total line: the tax is the sum of the rate lines.
        rate_lines = [
            (line, _last_amount(line.text))
            for line in reader.lines
            if TVA_TIERS[1].search(line.text)
            and not _is_vat_id(line.text)
            and not any(p.search(line.text) for p in (*TTC_TIERS[:2], *HT_TIERS))
        ]
        amounts = [a for _, a in rate_lines if a is not None]
        if amounts:
            line = next(line for line, a in rate_lines if a is not None)
            tva = _Found(sum(amounts, Decimal("0")), reader.confidence(LABELLED, line), line)
    if ttc is not None and ht is not None and ttc.line is ht.line:
        ttc = None
    if ttc is not None:
        invoice["amount"] = _money(ttc.value)
        confidence["invoice.amount"] = ttc.confidence
    elif ht is not None and tva is not None:
        invoice["amount"] = _money(ht.value + tva.value)
        confidence["invoice.amount"] = COMPUTED
    if ht is not None:
        invoice["amount_before_tax"] = _money(ht.value)
        confidence["invoice.amount_before_tax"] = ht.confidence
    if tva is not None:
        invoice["tax_amount"] = _money(tva.value)
        confidence["invoice.tax_amount"] = tva.confidence
    if (
        ttc is not None
        and ht is not None
        and tva is not None
        and abs(abs(ht.value) + abs(tva.value) - abs(ttc.value)) > Decimal("0.01")
    ):
        warnings.append(
            ReviewWarning(
                "totals_mismatch",
                f"HT {abs(ht.value)} + TVA {abs(tva.value)} does not equal TTC {abs(ttc.value)}.",
                "invoice.amount",
            )
        )
        for key in ("invoice.amount", "invoice.amount_before_tax", "invoice.tax_amount"):
            confidence[key] = DOUBTFUL


def _fill_debtor(
    reader: _Reader,
    party: _Party,
    debtor: dict[str, Any],
    metadata: dict[str, Any],
    confidence: dict[str, float],
    warnings: list[ReviewWarning],
) -> None:
    line = party.name_line
    if party.name:
        debtor["company_name"] = party.name
        confidence["debtor.company_name"] = reader.confidence(LABELLED, line)
    siret_conf, vat_conf = _siret_warnings(party, warnings)
    if party.siret:
        debtor["siret"] = party.siret
        confidence["debtor.siret"] = reader.confidence(siret_conf, line)
    if party.siren:
        metadata["debtor_siren"] = party.siren
    if party.vat:
        if party.vat.startswith("FR"):
            debtor["vat_number"] = party.vat
            confidence["debtor.vat_number"] = reader.confidence(vat_conf, line)
        else:
            # The receivable rules take French VAT numbers only; keep a foreign one for review.
            metadata["debtor_vat_number"] = party.vat
    address, complete = _address(party.address_lines)
    if address:
        debtor["address"] = address
        confidence["debtor.address"] = reader.confidence(LABELLED if complete else DOUBTFUL, line)
    contacts: list[dict[str, str]] = []
    for i, contact in enumerate(party.contacts):
        entry = dict(contact)
        if i == 0 and party.person:
            entry = {"first_name": party.person[0], "last_name": party.person[1], **entry}
        if i < len(party.phones):
            entry["phone"] = party.phones[i]
        contacts.append(entry)
    debtor["contacts"] = contacts
    if contacts:
        confidence["debtor.contacts[0].email"] = reader.confidence(LABELLED, line)
        if "phone" in contacts[0]:
            confidence["debtor.contacts[0].phone"] = reader.confidence(LABELLED, line)
    elif party.phones:
        metadata["debtor_phones"] = party.phones
