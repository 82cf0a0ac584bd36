"""Know-your-business checks on French company identifiers (SIRET, SIREN, VAT) and addresses.

The checksums come from python-stdnum:

- SIREN (9 digits) carries a Luhn check digit.
- SIRET (14 digits = SIREN + 5-digit NIC) is Luhn-checked over all 14 digits, except La Poste's
  establishments (SIREN 356 000 000, head office 35600000000048 excepted), whose SIRETs are only
  required to have a digit sum divisible by 5; ``stdnum.fr.siret`` implements that exception.
- A French VAT number is ``FR`` + a 2-character key + the SIREN. For a company with a SIREN the key
  is numeric: (12 + 3·(SIREN mod 97)) mod 97. stdnum also accepts the "new style" alphanumeric keys
  and Monaco's ``FRxx000…`` numbers as valid VAT numbers, but those never belong to a SIREN, so
  they fail ``vat_matches_siren``.

Only syntax and checksums are verified (no registry lookup), so a well-formed but unassigned
number passes. The sample SIRET/VAT values in Cleavr's public docs fail these checks.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import pycountry
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret
from stdnum.fr import tva as stdnum_tva

from debtgraph.domain.core.errors import FieldError, PayloadReader

# People paste identifiers as printed on invoices: "732 829 320 00074", "732.829.320", "FR-44-…".
_SEPARATORS = re.compile(r"[\s.\-]")
_COUNTRY = re.compile(r"[A-Z]{2}")


def is_country_code(code: str) -> bool:
    """Whether ``code`` (upper case) is an ISO 3166-1 alpha-2 code of a country: by shape
    alone, ``ZZ`` or ``XX`` passed as one (pycountry holds the standard's list)."""
    return bool(_COUNTRY.fullmatch(code)) and pycountry.countries.get(alpha_2=code) is not None


_FR_POSTAL_CODE = re.compile(r"\d{5}")


def normalize_siret(value: str) -> str:
    """The SIRET (or SIREN) without spaces, dots or dashes; not validated."""
    return _SEPARATORS.sub("", value)


def normalize_vat(value: str) -> str:
    """The VAT number upper-cased, without separators, with the ``FR`` prefix; not validated."""
    compact = _SEPARATORS.sub("", value).upper()
    return compact if compact.startswith("FR") else f"FR{compact}"


def is_valid_siren(value: str) -> bool:
    """Whether the string is a valid 9-digit SIREN (Luhn)."""
    compact = normalize_siret(value)
    return compact.isascii() and stdnum_siren.is_valid(compact)


def is_valid_siret(value: str) -> bool:
    """Whether the string is a valid 14-digit SIRET (Luhn, or La Poste's digit-sum rule)."""
    compact = normalize_siret(value)
    # isascii(): str.isdigit() inside stdnum would otherwise accept non-ASCII digits like "٣".
    return compact.isascii() and stdnum_siret.is_valid(compact)


def is_valid_fr_vat(value: str) -> bool:
    """Whether the string is a valid French VAT number (``FR`` prefix optional)."""
    compact = normalize_vat(value)
    return compact.isascii() and stdnum_tva.is_valid(compact)


def vat_key(siren: str) -> str:
    """The 2-digit French VAT key of a SIREN: (12 + 3·(SIREN mod 97)) mod 97."""
    return f"{(12 + 3 * (int(normalize_siret(siren)) % 97)) % 97:02d}"


def vat_for_siren(siren: str) -> str:
    """The French VAT number (``FR`` + key + SIREN) of a SIREN or SIRET."""
    siren_digits = normalize_siret(siren)[:9]
    return f"FR{vat_key(siren_digits)}{siren_digits}"


def vat_matches_siren(vat: str, siret_or_siren: str) -> bool:
    """Whether the VAT number is the one computed from the SIRET's (or SIREN's) first 9 digits."""
    identifier = normalize_siret(siret_or_siren)
    if len(identifier) not in (9, 14) or not (identifier.isascii() and identifier.isdigit()):
        return False
    return normalize_vat(vat) == vat_for_siren(identifier)


def check_company(
    siret: str | None, vat_number: str | None, *, field_prefix: str = "company"
) -> list[FieldError]:
    """Every KYB problem with a SIRET / VAT pair (either may be absent), as FieldErrors."""
    errors: list[FieldError] = []
    siret_ok = False
    if siret:
        siret_path = f"{field_prefix}.siret"
        compact = normalize_siret(siret)
        if not (compact.isascii() and compact.isdigit() and len(compact) == 14):
            errors.append(
                FieldError(siret_path, "invalid_siret", f"{siret_path} must be 14 digits.")
            )
        elif not is_valid_siret(compact):
            errors.append(
                FieldError(
                    siret_path,
                    "invalid_siret",
                    f"{siret_path} is not a valid SIRET (its check digit is wrong).",
                )
            )
        else:
            siret_ok = True
    if vat_number:
        vat_path = f"{field_prefix}.vat_number"
        if not is_valid_fr_vat(vat_number):
            errors.append(
                FieldError(
                    vat_path,
                    "invalid_vat",
                    f"{vat_path} is not a valid French VAT number (FR + 2-digit key + SIREN).",
                )
            )
        elif siret and siret_ok and not vat_matches_siren(vat_number, siret):
            siren = normalize_siret(siret)[:9]
            errors.append(
                FieldError(
                    vat_path,
                    "vat_siret_mismatch",
                    f"{vat_path} does not belong to the SIREN {siren} of the SIRET "
                    f"(expected {vat_for_siren(siren)}).",
                )
            )
    return errors


@dataclass(frozen=True, slots=True)
class AddressDraft:
    """A validated postal address (the Cleavr ``Address`` schema)."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None

    @property
    def is_complete(self) -> bool:
        """Whether every part needed to send a letter is there (line2 is optional)."""
        return all((self.line1, self.city, self.postal_code, self.country))

    def as_dict(self) -> dict[str, Any]:
        """The address as a JSON-ready mapping."""
        return asdict(self)


def read_address(reader: PayloadReader, value: Any, path: str) -> AddressDraft | None:
    """Read an ``Address`` object: strings, country as ISO 3166-1 alpha-2, French postal codes."""
    raw = reader.mapping(value, path)
    if raw is None:
        return None
    country = reader.string(raw.get("country"), f"{path}.country", max_length=100)
    if country is not None:
        country = country.upper()
        if not is_country_code(country):
            reader.add(
                f"{path}.country",
                "invalid_country",
                f"{path}.country must be an ISO 3166-1 alpha-2 code such as FR.",
            )
            country = None
    postal_code = reader.string(raw.get("postal_code"), f"{path}.postal_code", max_length=20)
    if postal_code and country == "FR" and not _FR_POSTAL_CODE.fullmatch(postal_code):
        reader.add(
            f"{path}.postal_code",
            "invalid_postal_code",
            f"{path}.postal_code must be 5 digits for a French address.",
        )
        postal_code = None
    return AddressDraft(
        line1=reader.string(raw.get("line1"), f"{path}.line1", max_length=200),
        line2=reader.string(raw.get("line2"), f"{path}.line2", max_length=200),
        city=reader.string(raw.get("city"), f"{path}.city", max_length=100),
        postal_code=postal_code,
        country=country,
    )
