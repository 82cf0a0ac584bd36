"""The debtor validation rules: every failing message of one row, in the rules table's order."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Final

from debtgraph.domain.banking.iban import is_valid_iban, normalize_iban
from debtgraph.domain.debtors.amounts import parse_amount
from debtgraph.domain.debtors.fields import STREET_KEYS, fold_whitespace, street_line

MAX_AMOUNT: Final = Decimal("50000")

IBAN_REQUIRED: Final = "IBAN is required"
IBAN_INVALID: Final = "IBAN is invalid"
NAME_REQUIRED: Final = "Name is required"
AMOUNT_REQUIRED: Final = "Amount is required"
AMOUNT_NOT_POSITIVE: Final = "Amount must be positive"
AMOUNT_TOO_LARGE: Final = "Amount must not exceed 50000"
CITY_REQUIRED: Final = "City is required"
CITY_LENGTH: Final = "City must be between 2 and 100 characters"
CITY_ENCODING: Final = "City contains invalid characters"
POSTCODE_REQUIRED: Final = "Postal code is required"
POSTCODE_LENGTH: Final = "Postal code must be between 3 and 20 characters"
ADDRESS_REQUIRED: Final = "Address is required"
ADDRESS_LENGTH: Final = "Address must be between 5 and 200 characters"
ADDRESS_ENCODING: Final = "Address contains invalid characters"
IBAN_BLACKLISTED: Final = "IBAN is blacklisted"
CURRENCY_NOT_EUR: Final = "Currency must be EUR"
SEPA_TYPE_INVALID: Final = "SEPA type must be CORE"
# A SEPA direct debit is in euros; the gateway and the pain.008 export collect under the Core
# scheme only (a B2B mandate would need its own LclInstrm batch and a checked B2B mandate).
SEPA_CURRENCY: Final = "EUR"
SEPA_TYPE: Final = "CORE"
MAX_CELL_CHARS: Final = 1000
CELL_TOO_LONG: Final = "Field {column} must not exceed 1000 characters"
_ASCII_CONTROLS: Final = re.compile(r"[\x00-\x1f\x7f]")
# Characters whose Windows-1252 byte (0xC2-0xF4) can open a multibyte UTF-8 sequence.
_MOJIBAKE_LEADS: Final = re.compile("[\u00c2-\u00f4]")
_INVALID_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def cell_length_errors(raw: Mapping[str, object] | None) -> list[str]:
    """One message per text cell longer than MAX_CELL_CHARS, in column order."""
    if not raw:
        return []
    try:
        # One C-level pass answers for nearly every row: no cell near the limit.
        if max(map(len, raw.values())) <= MAX_CELL_CHARS:  # type: ignore[arg-type]
            return []
    except TypeError:
        pass  # a value without a length (a number): looked at one by one below
    return [
        CELL_TOO_LONG.format(column=column)
        for column, value in raw.items()
        if isinstance(value, str) and len(value) > MAX_CELL_CHARS
    ]


@dataclass(frozen=True, slots=True)
class ValidationOutcome:
    """The result of validating one debtor: every failing message, in rules-table order."""

    valid: bool
    errors: list[str] = field(default_factory=list)
    blacklisted: bool = False

    @property
    def first_error(self) -> str | None:
        """Return the first failing message, as upload responses report one per row."""
        return self.errors[0] if self.errors else None


def _mojibake_sequence(char_bytes: bytes) -> bool:
    """Tell whether bytes form one multibyte UTF-8 character."""
    try:
        decoded = char_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(decoded) == 1


def _as_cp1252_byte(char: str) -> int | None:
    """Return the byte Windows-1252 encodes a character as (Latin-1 for C1 controls)."""
    if 0x80 <= ord(char) <= 0x9F:
        # Decoders that fill Windows-1252's gaps with Latin-1 leave these C1 characters behind.
        return ord(char)
    try:
        encoded = char.encode("cp1252")
    except UnicodeEncodeError:
        return None
    return encoded[0] if len(encoded) == 1 else None


def has_mojibake(text: str) -> bool:
    """Tell whether text holds UTF-8 bytes that were decoded as Windows-1252, like ``Ã©``."""
    for match in _MOJIBAKE_LEADS.finditer(text):
        index = match.start()
        # U+00C2-U+00F4 are Windows-1252 bytes 0xC2-0xF4 (that range matches Latin-1).
        lead = ord(text[index])
        if lead == 0xE2 and text[index + 1 : index + 2] == "€":
            # "â€" opens UTF-8 quotes and dashes (bytes E2 80 xx); the third byte is often lost.
            return True
        length = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        following = text[index + 1 : index + length]
        if len(following) != length - 1:
            continue
        tail = [_as_cp1252_byte(next_char) for next_char in following]
        if any(byte is None or not 0x80 <= byte <= 0xBF for byte in tail):
            continue
        if _mojibake_sequence(bytes([lead, *(byte for byte in tail if byte is not None)])):
            return True
    return False


def has_invalid_characters(text: str) -> bool:
    """Tell whether text holds control characters, U+FFFD or mojibake (not valid encoding)."""
    if text.isascii():
        # ASCII has neither U+FFFD nor mojibake, and its only invalid characters are controls.
        return _ASCII_CONTROLS.search(text) is not None
    if "\ufffd" in text:
        return True
    # Printable text has no character of the invalid categories (they are all unprintable).
    if not text.isprintable() and any(
        unicodedata.category(char) in _INVALID_CATEGORIES for char in text
    ):
        return True
    return has_mojibake(text)


def _text(fields: Mapping[str, object], key: str) -> str:
    """Read a field as folded, trimmed text; missing and None are empty."""
    value = fields.get(key)
    if value is None:
        return ""
    if type(value) is str and value.isprintable():
        # Nothing to fold (see fold_whitespace): derived fields, read again here, all are so.
        return value.strip()
    return fold_whitespace(str(value))


def _amount_errors(raw: object) -> list[str]:
    """Check the amount: required, positive and at most MAX_AMOUNT."""
    if isinstance(raw, Decimal):
        amount: Decimal | None = raw
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        amount = Decimal(str(raw))
    else:
        try:
            amount = parse_amount(None if raw is None else str(raw))
        except ValueError:
            # An amount nobody can read is no amount; "must be positive" would mislead.
            amount = None
    if amount is None:
        return [AMOUNT_REQUIRED]
    if amount <= 0:
        return [AMOUNT_NOT_POSITIVE]
    if amount > MAX_AMOUNT:
        return [AMOUNT_TOO_LARGE]
    return []


# The rows of a file share few cities, postcodes and streets: their verdicts (the character
# checks read every character) are taken once per distinct value. Bounded, as a file of
# distinct values would otherwise fill memory; a miss costs only the check itself.
_VERDICT_CACHE: Final = 8192


@lru_cache(maxsize=_VERDICT_CACHE)
def _city_errors(city: str) -> tuple[str, ...]:
    if not city:
        return (CITY_REQUIRED,)
    errors: list[str] = []
    if not 2 <= len(city) <= 100:
        errors.append(CITY_LENGTH)
    if has_invalid_characters(city):
        errors.append(CITY_ENCODING)
    return tuple(errors)


@lru_cache(maxsize=_VERDICT_CACHE)
def _postcode_errors(postcode: str) -> tuple[str, ...]:
    if not postcode:
        return (POSTCODE_REQUIRED,)
    if not 3 <= len(postcode) <= 20:
        return (POSTCODE_LENGTH,)
    return ()


@lru_cache(maxsize=_VERDICT_CACHE)
def _address_errors(address: str) -> tuple[str, ...]:
    if not address:
        return (ADDRESS_REQUIRED,)
    errors: list[str] = []
    if not 5 <= len(address) <= 200:
        errors.append(ADDRESS_LENGTH)
    if has_invalid_characters(address):
        errors.append(ADDRESS_ENCODING)
    return tuple(errors)


@lru_cache(maxsize=_VERDICT_CACHE)
def _street_errors(
    street: str, street_number: str, floor: str, door: str, apartment: str
) -> tuple[str, ...]:
    return _address_errors(street_line(street, street_number, floor, door, apartment))


def validate_debtor(
    fields: Mapping[str, object],
    *,
    blacklisted: bool,
    iban_valid: bool | None = None,
    raw: Mapping[str, object] | None = None,
) -> ValidationOutcome:
    """Apply the debtor validation rules and collect every failing message in table order.

    ``fields`` holds debtor fields (``derive_debtor_fields`` output or raw normalised columns):
    ``iban``, ``first_name``, ``last_name``, ``amount`` (Decimal, number or text), ``city``,
    ``postcode`` and either ``address`` or ``street`` (+ ``street_number``, ``floor``,
    ``door``, ``apartment``). An amount that cannot be parsed gives "Amount is required".
    ``blacklisted`` comes from the caller's blacklist lookup of the IBAN. ``iban_valid`` is a
    verdict already taken on this IBAN (stored with the row when it was derived); None has the
    IBAN checked here. ``raw`` is the row's columns (``raw_data``): a cell over MAX_CELL_CHARS
    fails the row (PRODUCT.md §12), reported before the table's rules since the stored fields
    were cut from it.
    """
    errors: list[str] = cell_length_errors(raw)

    iban = normalize_iban(_text(fields, "iban"))
    if not iban:
        errors.append(IBAN_REQUIRED)
    elif not (is_valid_iban(iban) if iban_valid is None else iban_valid):
        errors.append(IBAN_INVALID)

    if not _text(fields, "first_name") and not _text(fields, "last_name"):
        errors.append(NAME_REQUIRED)

    if fields.get("amount_invalid") is True:
        errors.append(AMOUNT_REQUIRED)
    else:
        errors.extend(_amount_errors(fields.get("amount")))

    errors.extend(_city_errors(_text(fields, "city")))
    errors.extend(_postcode_errors(_text(fields, "postcode")))
    address = _text(fields, "address")
    if address:
        errors.extend(_address_errors(address))
    else:
        errors.extend(_street_errors(*(_text(fields, key) for key in STREET_KEYS)))

    # Blank is the default (EUR, CORE), as a row without the column is stored.
    if (_text(fields, "currency").upper() or SEPA_CURRENCY) != SEPA_CURRENCY:
        errors.append(CURRENCY_NOT_EUR)
    if (_text(fields, "sepa_type").upper() or SEPA_TYPE) != SEPA_TYPE:
        errors.append(SEPA_TYPE_INVALID)

    if blacklisted:
        errors.append(IBAN_BLACKLISTED)

    return ValidationOutcome(valid=not errors, errors=errors, blacklisted=blacklisted)
