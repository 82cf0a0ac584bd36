"""Debtor fields from CSV columns.

``derive_debtor_fields`` reads a row's normalised column names. For each debtor field the first
non-blank column in this table wins (names are compared without accents, so ``dirección`` is
``direccion``):

==================  ==========================================================================
field               columns
==================  ==========================================================================
iban                iban, iban_number, iban_code, account_iban, bank_account, account_number
first_name          first_name, firstname, given_name, forename, nombre
last_name           last_name, lastname, surname, family_name, apellidos, apellido
(full name)         name, full_name, fullname, holder_name, account_holder, debtor_name —
                    used only when first_name and last_name are both blank: "Last, First", or
                    the first word as first_name and the rest as last_name
email               email, e_mail, email_address, mail
phone               phone, mobile, telephone, phone_number, mobile_phone, primary_phone, tel,
                    telefono, movil
national_id         national_id, nationalid, national_id_number, dni, nif, nie, tax_id,
                    id_number, document_number
birth_date          birth_date, birthdate, date_of_birth, dob, fecha_nacimiento
street              street, address, address_line_1, address_line1, address1, street_address,
                    direccion, calle
street_number       street_number, house_number, street_no, number, numero
floor               floor, piso
door                door, puerta
apartment           apartment, apt, flat
postcode            postcode, postal_code, post_code, zip, zipcode, zip_code, codigo_postal, cp
city                city, town, locality, ciudad, localidad, municipio, poblacion
province            province, state, region, county, provincia
country             country, country_code, pais
amount              amount, debt, debt_amount, amount_due, outstanding, balance, importe
currency            currency, currency_code, moneda
sepa_type           sepa_type, sepa_scheme, scheme
external_reference  external_reference, external_ref, ext_ref, reference, ref, referencia
==================  ==========================================================================

Which columns feed which field depends only on the column names, so ``field_map`` resolves it
once per set of headers (a whole file) and ``FieldMap.derive`` applies it to each row. A column
named in no row of the table is unrecognised (``unrecognized_columns``): it is kept in
``raw_data`` and feeds no field. A file is taken for a debtor list only when some column feeds
the name, amount, city, postcode or address (``describes_debtors``): those are language-specific,
while an ``IBAN`` column is spelled alike in most languages and says nothing about the rest.

Line breaks and tabs inside any field are folded to one space and fields are trimmed; blank
fields become None. ``country`` keeps only a two-letter code (upper case) and defaults to the
IBAN's country when the row has none and the IBAN is valid; ``currency`` defaults to EUR and
``sepa_type`` to CORE.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Final, TypedDict

from debtgraph.domain.banking.iban import is_valid_iban, normalize_iban
from debtgraph.domain.debtors.amounts import parse_amount

COLUMNS_NOT_RECOGNISED: Final = (
    "The file's columns are not recognised: expected first_name, last_name (or name), iban,"
    " amount, city, postcode and address, or an alias of them listed in the README; found {found}."
)
# How many of the columns found the refusal lists, and how much of each name.
_FOUND_LISTED: Final = 20
_FOUND_NAME_CHARS: Final = 40

# Line breaks (including Unicode ones) and tabs, with the spaces around them.
_FOLDABLE: Final = re.compile(r"[ ]*[\t\n\r\v\f\x85\u2028\u2029]+[ \t\n\r\v\f\x85\u2028\u2029]*")
_DATE_FORMATS: Final = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")
# The usual spellings of those formats with ASCII digits; anything else goes to strptime.
_PLAIN_DATE: Final = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})([/.-])(\d{1,2})\5(\d{4})", re.ASCII
)
STREET_KEYS: Final = ("street", "street_number", "floor", "door", "apartment")

_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "iban": (
        "iban",
        "iban_number",
        "iban_code",
        "account_iban",
        "bank_account",
        "account_number",
    ),
    "first_name": ("first_name", "firstname", "given_name", "forename", "nombre"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "apellidos", "apellido"),
    "email": ("email", "e_mail", "email_address", "mail"),
    "phone": (
        "phone",
        "mobile",
        "telephone",
        "phone_number",
        "mobile_phone",
        "primary_phone",
        "tel",
        "telefono",
        "movil",
    ),
    "national_id": (
        "national_id",
        "nationalid",
        "national_id_number",
        "dni",
        "nif",
        "nie",
        "tax_id",
        "id_number",
        "document_number",
    ),
    "birth_date": ("birth_date", "birthdate", "date_of_birth", "dob", "fecha_nacimiento"),
    "street": (
        "street",
        "address",
        "address_line_1",
        "address_line1",
        "address1",
        "street_address",
        "direccion",
        "calle",
    ),
    "street_number": ("street_number", "house_number", "street_no", "number", "numero"),
    "floor": ("floor", "piso"),
    "door": ("door", "puerta"),
    "apartment": ("apartment", "apt", "flat"),
    "postcode": (
        "postcode",
        "postal_code",
        "post_code",
        "zip",
        "zipcode",
        "zip_code",
        "codigo_postal",
        "cp",
    ),
    "city": ("city", "town", "locality", "ciudad", "localidad", "municipio", "poblacion"),
    "province": ("province", "state", "region", "county", "provincia"),
    "country": ("country", "country_code", "pais"),
    "amount": (
        "amount",
        "debt",
        "debt_amount",
        "amount_due",
        "outstanding",
        "balance",
        "importe",
    ),
    "currency": ("currency", "currency_code", "moneda"),
    "sepa_type": ("sepa_type", "sepa_scheme", "scheme"),
    "external_reference": (
        "external_reference",
        "external_ref",
        "ext_ref",
        "reference",
        "ref",
        "referencia",
    ),
}
_FULL_NAME_ALIASES: Final = (
    "name",
    "full_name",
    "fullname",
    "holder_name",
    "account_holder",
    "debtor_name",
)


# Fields whose column names are language-specific: a file with a column for none of them is
# not a debtor list this service can read (see ``describes_debtors``).
_DEBTOR_FIELDS: Final = ("first_name", "last_name", "amount", "city", "postcode", "street")
# The SEPA mandate a row may name, kept in raw_data and read from there by the pain.008 export
# (payments.sepa.mandate_of): no debtor field, but not unrecognised either (review: an upload
# listed them among its unrecognized_columns while the export used them).
MANDATE_ID_COLUMNS: Final = ("mandate_reference", "mandate_id", "mandate")
MANDATE_DATE_COLUMNS: Final = ("mandate_date", "mandate_signature_date", "signature_date")
_KNOWN_COLUMNS: Final = frozenset(
    [alias for aliases in _ALIASES.values() for alias in aliases]
    + list(_FULL_NAME_ALIASES)
    + list(MANDATE_ID_COLUMNS + MANDATE_DATE_COLUMNS)
)
_DEBTOR_COLUMNS: Final = frozenset(
    [alias for name in _DEBTOR_FIELDS for alias in _ALIASES[name]] + list(_FULL_NAME_ALIASES)
)


def unrecognized_columns(columns: Iterable[str]) -> list[str]:
    """The normalised column names that feed no debtor field nor the mandate, in file order."""
    return [column for column in columns if _strip_accents(column) not in _KNOWN_COLUMNS]


def describes_debtors(columns: Iterable[str]) -> bool:
    """Tell whether some column feeds a debtor's name, amount, city, postcode or address."""
    return any(_strip_accents(column) in _DEBTOR_COLUMNS for column in columns)


def columns_not_recognised(columns: Sequence[str]) -> str:
    """The refusal of a file whose columns describe no debtor: what is expected, what was found."""
    named = [column for column in columns if not column.startswith("_column_")]
    shown = [
        name if len(name) <= _FOUND_NAME_CHARS else name[:_FOUND_NAME_CHARS] + "…"
        for name in named[:_FOUND_LISTED]
    ]
    found = ", ".join(shown)
    if len(named) > _FOUND_LISTED:
        found += f" and {len(named) - _FOUND_LISTED} more"
    return COLUMNS_NOT_RECOGNISED.format(found=found)


class DebtorFields(TypedDict):
    """Debtor columns derived from a CSV row, plus ``amount_invalid`` (not a Debtor column)."""

    iban: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    national_id: str | None
    birth_date: date | None
    street: str | None
    street_number: str | None
    floor: str | None
    door: str | None
    apartment: str | None
    postcode: str | None
    city: str | None
    province: str | None
    country: str | None
    amount: Decimal | None
    # True when the row had an amount that could not be parsed (amount is then None).
    amount_invalid: bool
    currency: str
    sepa_type: str
    external_reference: str | None


def fold_whitespace(value: str | None) -> str:
    """Fold line breaks and tabs into one space and trim; None becomes an empty string."""
    if value is None:
        return ""
    if value.isprintable():
        # Every foldable character is unprintable, so there is nothing to fold.
        return value.strip()
    return _FOLDABLE.sub(" ", value).strip()


def merge_raw(raw: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """A row's columns with ``changes`` applied: each change replaces the column it names,
    accents ignored (``codigo_postal`` replaces ``código_postal``), as the aliases read them.

    Kept beside it, the twin of a change would be one of two values for one field, the one
    read decided by the order of the keys, which a JSON column does not keep (PostgreSQL's JSONB
    orders them by length): an operator's correction came undone at the next edit.
    """
    # By bare name, the last of twins within the changes too.
    latest = {_strip_accents(name): (name, value) for name, value in changes.items()}
    kept = {name: value for name, value in raw.items() if _strip_accents(name) not in latest}
    return {**kept, **dict(latest.values())}


def _strip_accents(text: str) -> str:
    """Remove combining accents, so header aliases match with or without them."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def street_line(
    street: str | None,
    street_number: str | None = None,
    floor: str | None = None,
    door: str | None = None,
    apartment: str | None = None,
) -> str:
    """Join the street and its number, floor, door and apartment; empty without a street."""
    if not fold_whitespace(street):
        return ""
    parts = (street, street_number, floor, door, apartment)
    return " ".join(text for part in parts if (text := fold_whitespace(part)))


def parse_birth_date(raw: str | None) -> date | None:
    """Parse ``YYYY-MM-DD``, ``DD/MM/YYYY``, ``DD.MM.YYYY`` or ``DD-MM-YYYY``; None otherwise."""
    text = fold_whitespace(raw)
    if not text:
        return None
    plain = _PLAIN_DATE.fullmatch(text)
    if plain is not None:
        year, month, day = (1, 2, 3) if plain[1] else (7, 6, 4)
        try:
            return date(int(plain[year]), int(plain[month]), int(plain[day]))
        except ValueError:
            pass  # no such day: strptime below has the last word
    return _strptime_date(text)


def _strptime_date(text: str) -> date | None:
    """Parse a date in the first of the accepted formats strptime reads it with."""
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _first_value(raw: Mapping[str, str], columns: tuple[str, ...]) -> str | None:
    """Return the first non-blank value among the columns, folded and trimmed."""
    for column in columns:
        value = raw.get(column)
        if value and (folded := fold_whitespace(value)):
            return folded
    return None


def _split_full_name(full: str) -> tuple[str | None, str | None]:
    """Split a full name into first and last name ("Last, First" or "First Last…")."""
    if "," in full:
        last, _, first = full.partition(",")
        return first.strip() or None, last.strip() or None
    first, _, last = full.partition(" ")
    return first or None, last.strip() or None


@dataclass(frozen=True, slots=True)
class FieldMap:
    """The columns feeding each debtor field, for one set of column names, in alias order."""

    sources: dict[str, tuple[str, ...]]
    full_name: tuple[str, ...]
    # The fields some column feeds, with their columns: most fields have none in a given
    # file, so a row looks only at these. No default: a map built without it would derive
    # nothing from any row (``from_columns`` computes it from ``sources``).
    present: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_columns(cls, columns: Iterable[str]) -> FieldMap:
        """Resolve the aliases against column names (accents ignored; a later twin wins)."""
        by_bare: dict[str, str] = {}
        for column in columns:
            by_bare[_strip_accents(column)] = column

        def present(aliases: tuple[str, ...]) -> tuple[str, ...]:
            """The aliased columns there are, as named in the row."""
            return tuple(by_bare[alias] for alias in aliases if alias in by_bare)

        sources = {name: present(aliases) for name, aliases in _ALIASES.items()}
        fed = tuple((name, columns) for name, columns in sources.items() if columns)
        return cls(sources=sources, full_name=present(_FULL_NAME_ALIASES), present=fed)

    def pick(self, raw: Mapping[str, str], field_name: str) -> str | None:
        """Return the field's first non-blank column value in a row, folded and trimmed."""
        columns = self.sources[field_name]
        return _first_value(raw, columns) if columns else None

    def derive(self, raw: Mapping[str, str]) -> DebtorFields:
        """Map a row with these columns to debtor fields (see ``derive_debtor_fields``)."""
        found: dict[str, str] = {}
        for name, columns in self.present:
            if len(columns) == 1:
                # The usual case, one column per field, without _first_value's loop.
                value = raw.get(columns[0])
                if value:
                    value = value.strip() if value.isprintable() else fold_whitespace(value)
                    if value:
                        found[name] = value
            elif (value := _first_value(raw, columns)) is not None:
                found[name] = value
        pick = found.get
        first_name, last_name = pick("first_name"), pick("last_name")
        if first_name is None and last_name is None and self.full_name:
            full = _first_value(raw, self.full_name)
            if full:
                first_name, last_name = _split_full_name(full)

        try:
            amount = parse_amount(pick("amount"))
            amount_invalid = False
        except ValueError:
            amount, amount_invalid = None, True

        iban = normalize_iban(pick("iban")) or None
        country = (pick("country") or "").upper()
        if not (len(country) == 2 and country.isascii() and country.isalpha()):
            country = iban[:2] if iban and is_valid_iban(iban) else ""
        national_id = pick("national_id")

        return DebtorFields(
            iban=iban,
            first_name=first_name,
            last_name=last_name,
            email=pick("email"),
            phone=pick("phone"),
            national_id=national_id.replace(" ", "").upper() if national_id else None,
            birth_date=parse_birth_date(pick("birth_date")),
            street=pick("street"),
            street_number=pick("street_number"),
            floor=pick("floor"),
            door=pick("door"),
            apartment=pick("apartment"),
            postcode=pick("postcode"),
            city=pick("city"),
            province=pick("province"),
            country=country or None,
            amount=amount,
            amount_invalid=amount_invalid,
            currency=_currency(pick("currency")),
            sepa_type=_sepa_type(pick("sepa_type")),
            external_reference=pick("external_reference"),
        )


# ISO 4217's code for "no currency involved": a currency cell that is no three-letter code is
# stored as this, since its column holds three characters and "EURO" or "EUR/USD" cut to "EUR"
# would pass the euro rule (raw_data keeps the cell as it was).
NO_CURRENCY = "XXX"


def _currency(text: str | None) -> str:
    code = (text or "EUR").upper()
    return code if len(code) == 3 else NO_CURRENCY


# A scheme cell longer than its ten-character column is stored as this (and so refused): cut,
# "CORE      -B2B" was stored "CORE      " and read as CORE.
UNKNOWN_SEPA_TYPE = "UNKNOWN"


def _sepa_type(text: str | None) -> str:
    scheme = (text or "CORE").upper()
    return scheme if len(scheme) <= 10 else UNKNOWN_SEPA_TYPE


@lru_cache(maxsize=64)
def _field_map(columns: tuple[str, ...]) -> FieldMap:
    return FieldMap.from_columns(columns)


def field_map(columns: Iterable[str]) -> FieldMap:
    """The FieldMap of a set of column names, resolved once and reused (rows of a file share it)."""
    return _field_map(tuple(columns))


def derive_debtor_fields(raw: Mapping[str, str]) -> DebtorFields:
    """Map a CSV row's normalised columns (aliases in the module docstring) to debtor fields."""
    return field_map(raw).derive(raw)


def full_name(first_name: str | None, last_name: str | None) -> str | None:
    """Join first and last name with a space; None when both are blank."""
    parts = (fold_whitespace(first_name), fold_whitespace(last_name))
    return " ".join(part for part in parts if part) or None


def full_address(
    *,
    street: str | None = None,
    street_number: str | None = None,
    floor: str | None = None,
    door: str | None = None,
    apartment: str | None = None,
    postcode: str | None = None,
    city: str | None = None,
    province: str | None = None,
    country: str | None = None,
) -> str | None:
    """Format ``"STREET 7 [floor door apt]\\nPOSTCODE, CITY, Province, CC"``, skipping blanks."""
    first_line = street_line(street, street_number, floor, door, apartment)
    locality = (postcode, city, province, country)
    second_line = ", ".join(text for part in locality if (text := fold_whitespace(part)))
    return "\n".join(line for line in (first_line, second_line) if line) or None
