"""IBAN rules: normalising, masking, validating and enriching with bank data (schwifty)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from schwifty import IBAN, registry
from schwifty.domain import Component
from schwifty.exceptions import SchwiftyException

# Spaces of any kind, hyphens and dots are how people group IBANs on paper and in spreadsheets.
_GROUPING: Final = re.compile(r"[\s\-.\u00a0\u2007\u2009\u202f]+")
_PREFIX: Final = re.compile(r"^IBAN:?")
_BANK_CACHE_SIZE: Final = 4096
# The last IBANs parsed: derivation validates a row's IBAN, then enrichment parses it again.
_PARSE_CACHE_SIZE: Final = 256
_Range = tuple[int, int]
# Country -> where its BBAN holds the bank code, and the components the bank is looked up by.
_RANGES: dict[str, tuple[_Range, tuple[_Range, ...]]] = {}
# (country, bank lookup components...) -> (bank name, BIC) from the registry.
_BANKS: dict[tuple[str, ...], tuple[str | None, str | None]] = {}


@dataclass(frozen=True, slots=True)
class IbanInfo:
    """What an IBAN tells about its account; bank fields are None when the registry has no data."""

    valid: bool
    masked: str | None
    country: str | None
    bank_code: str | None
    bank_name: str | None
    bic: str | None

    @property
    def bank_identified(self) -> bool:
        """Tell whether the bank registry knows the IBAN's bank."""
        return self.valid and (self.bank_name is not None or self.bic is not None)


def normalize_iban(raw: str | None) -> str:
    """Return the IBAN in electronic form: no spaces or hyphens, upper case, no "IBAN" prefix."""
    if raw is None:
        return ""
    if raw.isascii() and raw.isalnum() and raw.isupper() and not raw.startswith("IB"):
        # Already electronic (every stored IBAN, and the second look at a derived one).
        return raw
    compact = _GROUPING.sub("", raw).upper()
    # No country has the code "IB", so a leading "IBAN" is always a label someone typed along.
    return _PREFIX.sub("", compact)


def _mask(compact: str) -> str | None:
    if not compact:
        return None
    if len(compact) <= 8:
        # Showing 4 + 4 characters of a short string would reveal all of it.
        return f"{compact[:2]}****"
    return f"{compact[:4]}****{compact[-4:]}"


def mask_iban(iban: str | None) -> str | None:
    """Mask an IBAN as its first 4 and last 4 characters around ``****``; None when blank."""
    return _mask(normalize_iban(iban))


@lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _parse_compact(compact: str) -> IBAN | None:
    """Parse an electronic-form IBAN; a row's IBAN is looked at by derivation, then enrichment."""
    try:
        return IBAN(compact)
    except (SchwiftyException, ValueError):
        return None


# schwifty's own structure test.
_STRUCTURE: Final = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]+")
# ISO 13616: A=10 … Z=35.
_LETTER_DIGITS: Final = str.maketrans({chr(65 + n): str(10 + n) for n in range(26)})
# Country -> (IBAN length, BBAN format) from schwifty's registry; None: no such country.
_SPECS: dict[str, tuple[int, re.Pattern[str]] | None] = {}


def _spec(country: str) -> tuple[int, re.Pattern[str]] | None:
    if country not in _SPECS:
        try:
            spec = registry.get_iban_spec(country)
        except (SchwiftyException, ValueError, KeyError):
            _SPECS[country] = None
        else:
            _SPECS[country] = (spec.iban_length, spec.regex)
    return _SPECS[country]


def _accepted(compact: str) -> bool:
    """Tell whether schwifty's ``IBAN(compact)`` would accept an electronic-form IBAN.

    The checks its ``validate`` makes, in its order, with its registry and check-digit
    algorithm, without building the IBAN and BBAN objects (most of an upload row's cost): the
    rows' IBANs are all distinct, so none is parsed twice, and the bank is known by its code.
    """
    if not _STRUCTURE.fullmatch(compact):
        return False
    spec = _spec(compact[:2])
    if spec is None or spec[0] != len(compact) or not spec[1].match(compact[4:]):
        return False
    return _check_digits_match(compact)


def _as_digits(text: str) -> str:
    return text.translate(_LETTER_DIGITS)


# Two capital letters: at most 26² entries.
_country_digits: Final = lru_cache(maxsize=26 * 26)(_as_digits)


def check_digits_ok(compact: str) -> bool:
    """Tell whether an electronic-form IBAN's check digits are right (ISO 13616, MOD 97-10).

    The answer of schwifty's ``ISO7064_mod97_10().validate([bban, country], check)``, which
    compares the digits with the ones it computes (02 to 98), as one remainder: the number
    read from BBAN, country and check digits, letters as 10 to 35, leaves 1 modulo 97 exactly
    when the check digits are those, or differ from them by 97 — which only 00, 01 and 99
    could, so they are refused first. schwifty's version builds the number a character at a
    time (a sixth of a row's enrichment); the unit tests hold the two equal.
    """
    return bool(_STRUCTURE.fullmatch(compact)) and _check_digits_match(compact)


def _check_digits_match(compact: str) -> bool:
    """``check_digits_ok`` for a string ``_STRUCTURE`` matches."""
    check = compact[2:4]
    # ASCII only: ``\d`` and ``int`` also take other scripts' digits.
    if not (compact.isascii() and 2 <= int(check) <= 98):
        return False
    account = compact[4:]
    # Most account numbers are digits only: then only the country code needs translating.
    if not account.isdigit():
        account = _as_digits(account)
    return int(account + _country_digits(compact[:2]) + check) % 97 == 1


def _valid_compact(compact: str) -> bool:
    # Only a yes is taken from the shortcut: a no is schwifty's to give.
    return _accepted(compact) or _parse_compact(compact) is not None


def _parse(iban: str | None) -> IBAN | None:
    """Parse a normalised IBAN with schwifty, or None when it is invalid."""
    compact = normalize_iban(iban)
    return _parse_compact(compact) if compact else None


def is_valid_iban(iban: str | None) -> bool:
    """Tell whether an IBAN has a valid country format, length and checksum."""
    compact = normalize_iban(iban)
    return bool(compact) and _valid_compact(compact)


def _optional(getter: str, parsed: IBAN) -> str | None:
    """Read a registry-backed attribute, turning missing data or lookup errors into None."""
    try:
        value = getattr(parsed, getter)
    except (SchwiftyException, ValueError, KeyError, AttributeError):
        return None
    text = str(value).strip() if value is not None else ""
    return text or None


def _full_bic(bic: str | None) -> str | None:
    """Return an 8-character BIC with its ``XXX`` branch code, so every BIC has 11 characters."""
    if bic is not None and len(bic) == 8:
        return f"{bic}XXX"
    return bic


def _bank_details(parsed: IBAN) -> tuple[str | None, str | None]:
    """Look up the bank name and full BIC of an IBAN's bank in the registry."""
    return _optional("bank_name", parsed), _full_bic(_optional("bic", parsed))


def _ranges(country: str, compact: str) -> tuple[_Range, tuple[_Range, ...]]:
    """Where a country's BBAN holds the bank code and the bank lookup components (per country)."""
    ranges = _RANGES.get(country)
    if ranges is None:
        parsed = _parse_compact(compact)
        if parsed is None:
            raise ValueError(compact)
        spec = parsed.bban.spec
        components = spec.bic_lookup_components or [Component.BANK_CODE]

        def at(component: Component) -> _Range:
            position = spec.positions.get(component)
            return (position.start, position.end) if position is not None else (0, 0)

        ranges = _RANGES[country] = (at(Component.BANK_CODE), tuple(map(at, components)))
    return ranges


def _slice(bban: str, where: _Range) -> str:
    """A BBAN component as schwifty cuts it (empty when the BBAN is too short for it)."""
    start, end = where
    return bban[start:end] if start < len(bban) and end <= len(bban) else ""


def _cached_bank_details(parsed: IBAN) -> tuple[str | None, str | None]:
    """The bank name and BIC, looked up once per bank: the debtors of a file share few banks."""
    compact = str(parsed)
    try:
        key = _bank_key(compact)[1]
    except (SchwiftyException, ValueError, KeyError, AttributeError):
        return _bank_details(parsed)
    return _details(key, compact)


def _bank_key(compact: str) -> tuple[str, tuple[str, ...]]:
    """The IBAN's bank code and its bank's cache key, cut from the IBAN with its country's ranges.

    schwifty finds the bank by the BBAN components its country's spec names (the bank code, in
    some countries with the branch code); the same components, the same bank.
    """
    country = compact[:2]
    bank_range, lookup = _ranges(country, compact)
    bban = compact[4:]
    return _slice(bban, bank_range), (country, *(_slice(bban, where) for where in lookup))


def _details(key: tuple[str, ...], compact: str) -> tuple[str | None, str | None]:
    details = _BANKS.get(key)
    if details is None:
        parsed = _parse_compact(compact)
        if parsed is None:
            raise ValueError(compact)
        if len(_BANKS) >= _BANK_CACHE_SIZE:
            _BANKS.clear()  # bounded memory; a refill costs one lookup per bank
        details = _BANKS[key] = _bank_details(parsed)
    return details


def enrich_iban(iban: str | None) -> IbanInfo:
    """Describe an IBAN: validity, mask, country, bank code, bank name and BIC; never raises."""
    compact = normalize_iban(iban)
    masked = _mask(compact)
    if not compact or not _valid_compact(compact):
        return IbanInfo(False, masked, None, None, None, None)
    try:
        # The IBAN object is built only for a bank (or a country) not seen yet.
        bank_code, key = _bank_key(compact)
        bank_name, bic = _details(key, compact)
    except (SchwiftyException, ValueError, KeyError, AttributeError):
        parsed = _parse_compact(compact)
        assert parsed is not None  # valid, as schwifty itself says
        bank_name, bic = _bank_details(parsed)
        bank = _optional("bank_code", parsed)
    else:
        bank = bank_code or None
    return IbanInfo(
        valid=True,
        masked=masked,
        country=compact[:2],
        bank_code=bank,
        bank_name=bank_name,
        bic=bic,
    )
