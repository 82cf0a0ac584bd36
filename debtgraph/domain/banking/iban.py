"""IBAN rules: normalising, masking, validating and enriching with bank data (schwifty)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from schwifty import IBAN
from schwifty.domain import Component
from schwifty.exceptions import SchwiftyException

# Spaces of any kind, hyphens and dots are how people group IBANs on paper and in spreadsheets.
_GROUPING: Final = re.compile(r"[\s\-.\u00a0\u2007\u2009\u202f]+")
_PREFIX: Final = re.compile(r"^IBAN:?")
_BANK_CACHE_SIZE: Final = 4096
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
    compact = _GROUPING.sub("", raw).upper()
    # No country has the code "IB", so a leading "IBAN" is always a label someone typed along.
    return _PREFIX.sub("", compact)


def mask_iban(iban: str | None) -> str | None:
    """Mask an IBAN as its first 4 and last 4 characters around ``****``; None when blank."""
    compact = normalize_iban(iban)
    if not compact:
        return None
    if len(compact) <= 8:
        # Showing 4 + 4 characters of a short string would reveal all of it.
        return f"{compact[:2]}****"
    return f"{compact[:4]}****{compact[-4:]}"


def _parse(iban: str | None) -> IBAN | None:
    """Parse a normalised IBAN with schwifty, or None when it is invalid."""
    compact = normalize_iban(iban)
    if not compact:
        return None
    try:
        return IBAN(compact)
    except (SchwiftyException, ValueError):
        return None


def is_valid_iban(iban: str | None) -> bool:
    """Tell whether an IBAN has a valid country format, length and checksum."""
    return _parse(iban) is not None


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


def _cached_bank_details(parsed: IBAN) -> tuple[str | None, str | None]:
    """The bank name and BIC, looked up once per bank: the debtors of a file share few banks."""
    try:
        # schwifty finds the bank by the BBAN components its country's spec names (the bank
        # code, in some countries with the branch code); the same components, the same bank.
        bban = parsed.bban
        components = bban.spec.bic_lookup_components or [Component.BANK_CODE]
        key = (parsed.country_code, *(str(getattr(bban, c.value)) for c in components))
    except (SchwiftyException, ValueError, KeyError, AttributeError):
        return _bank_details(parsed)
    details = _BANKS.get(key)
    if details is None:
        if len(_BANKS) >= _BANK_CACHE_SIZE:
            _BANKS.clear()  # bounded memory; a refill costs one lookup per bank
        details = _BANKS[key] = _bank_details(parsed)
    return details


def enrich_iban(iban: str | None) -> IbanInfo:
    """Describe an IBAN: validity, mask, country, bank code, bank name and BIC; never raises."""
    parsed = _parse(iban)
    masked = mask_iban(iban)
    if parsed is None:
        return IbanInfo(False, masked, None, None, None, None)
    bank_name, bic = _cached_bank_details(parsed)
    return IbanInfo(
        valid=True,
        masked=masked,
        country=parsed.country_code,
        bank_code=_optional("bank_code", parsed),
        bank_name=bank_name,
        bic=bic,
    )
