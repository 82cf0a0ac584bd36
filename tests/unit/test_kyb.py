"""KYB identifier checks, with real valid numbers (and Cleavr's sample values, which fail)."""

from __future__ import annotations

import pytest

from debtgraph.domain.core.errors import FieldError, PayloadReader
from debtgraph.domain.creditors.kyb import (
    AddressDraft,
    check_company,
    is_valid_fr_vat,
    is_valid_siren,
    is_valid_siret,
    normalize_siret,
    normalize_vat,
    read_address,
    vat_for_siren,
    vat_key,
    vat_matches_siren,
)
from debtgraph.domain.oauth.platforms import acceptable_redirect_uri

# Danone SA: SIREN 552 032 534, head office SIRET 552 032 534 00646, VAT FR27 552 032 534.
DANONE_SIREN = "552032534"
DANONE_SIRET = "55203253400646"
DANONE_VAT = "FR27552032534"
# ENGIE: SIREN 542 107 651.
ENGIE_SIRET = "54210765113030"
ENGIE_VAT = "FR13542107651"
# The example values in Cleavr's public documentation.
CLEAVR_SAMPLE_SIRET = "12345678901234"
CLEAVR_SAMPLE_VAT = "FR12345678901"


def test_normalize_siret_strips_spaces_dots_and_dashes() -> None:
    assert normalize_siret(" 552 032.534-00646 ") == DANONE_SIRET


def test_normalize_vat_uppercases_and_adds_prefix() -> None:
    assert normalize_vat("fr 27 552 032 534") == DANONE_VAT
    assert normalize_vat("27552032534") == DANONE_VAT


@pytest.mark.parametrize("siren", [DANONE_SIREN, "542107651", "732829320", "552 032 534"])
def test_valid_sirens(siren: str) -> None:
    assert is_valid_siren(siren) is True


@pytest.mark.parametrize("siren", ["552032535", "55203253", "5520325340", "55203253a", "", "٥٥٢"])
def test_invalid_sirens(siren: str) -> None:
    assert is_valid_siren(siren) is False


@pytest.mark.parametrize(
    "siret", [DANONE_SIRET, ENGIE_SIRET, "73282932000074", "552 032 534 00646"]
)
def test_valid_sirets(siret: str) -> None:
    assert is_valid_siret(siret) is True


@pytest.mark.parametrize(
    "siret", ["55203253400647", "5520325340064", "552032534006460", "5520325340064X", ""]
)
def test_invalid_sirets(siret: str) -> None:
    assert is_valid_siret(siret) is False


def test_la_poste_exception() -> None:
    # La Poste's establishments only need a digit sum divisible by 5 (3+5+6+1 = 15) ...
    assert is_valid_siret("35600000000001") is True
    # ... which would fail Luhn; the head office itself follows Luhn.
    assert is_valid_siret("35600000000048") is True
    assert is_valid_siret("35600000000002") is False


def test_cleavr_sample_values_fail() -> None:
    assert is_valid_siret(CLEAVR_SAMPLE_SIRET) is False
    assert is_valid_fr_vat(CLEAVR_SAMPLE_VAT) is False


@pytest.mark.parametrize(
    "vat", [DANONE_VAT, ENGIE_VAT, "FR44732829320", "27552032534", "fr27552032534"]
)
def test_valid_vat_numbers(vat: str) -> None:
    assert is_valid_fr_vat(vat) is True


@pytest.mark.parametrize("vat", ["FR28552032534", "FR2755203253", "DE27552032534", "FR", ""])
def test_invalid_vat_numbers(vat: str) -> None:
    assert is_valid_fr_vat(vat) is False


def test_vat_key_formula() -> None:
    # (12 + 3 * (552032534 mod 97)) mod 97
    assert vat_key(DANONE_SIREN) == f"{(12 + 3 * (552032534 % 97)) % 97:02d}" == "27"
    assert vat_for_siren(DANONE_SIRET) == DANONE_VAT


def test_vat_matches_siren() -> None:
    assert vat_matches_siren(DANONE_VAT, DANONE_SIRET) is True
    assert vat_matches_siren(DANONE_VAT, DANONE_SIREN) is True
    assert vat_matches_siren("fr 27 552 032 534", "552 032 534 00646") is True
    assert vat_matches_siren(ENGIE_VAT, DANONE_SIRET) is False
    assert vat_matches_siren(DANONE_VAT, "5520325") is False
    assert vat_matches_siren(DANONE_VAT, "abcdefghi") is False


def test_check_company_accepts_matching_pair_and_absent_values() -> None:
    assert check_company(DANONE_SIRET, DANONE_VAT) == []
    assert check_company(None, None) == []
    assert check_company(DANONE_SIRET, None) == []
    assert check_company(None, ENGIE_VAT) == []


def test_check_company_reports_each_problem_with_its_path() -> None:
    assert check_company("123", None, field_prefix="debtor") == [
        FieldError("debtor.siret", "invalid_siret", "debtor.siret must be 14 digits.")
    ]
    assert check_company(CLEAVR_SAMPLE_SIRET, CLEAVR_SAMPLE_VAT) == [
        FieldError(
            "company.siret",
            "invalid_siret",
            "company.siret is not a valid SIRET (its check digit is wrong).",
        ),
        FieldError(
            "company.vat_number",
            "invalid_vat",
            "company.vat_number is not a valid French VAT number (FR + 2-digit key + SIREN).",
        ),
    ]


def test_check_company_vat_of_another_company() -> None:
    assert check_company(DANONE_SIRET, ENGIE_VAT) == [
        FieldError(
            "company.vat_number",
            "vat_siret_mismatch",
            "company.vat_number does not belong to the SIREN 552032534 of the SIRET "
            "(expected FR27552032534).",
        )
    ]


def test_read_address_normalizes_and_checks() -> None:
    reader = PayloadReader()
    address = read_address(
        reader,
        {"line1": " 17 bd Haussmann ", "city": "Paris", "postal_code": "75009", "country": "fr"},
        "company.address",
    )
    assert reader.errors == []
    assert address == AddressDraft("17 bd Haussmann", None, "Paris", "75009", "FR")
    assert address.is_complete is True


def test_read_address_errors() -> None:
    reader = PayloadReader()
    address = read_address(
        reader, {"line1": 5, "postal_code": "7500", "country": "France"}, "debtor.address"
    )
    assert [(e.field, e.code) for e in reader.errors] == [
        ("debtor.address.country", "invalid_country"),
        ("debtor.address.line1", "invalid_type"),
    ]
    assert address is not None
    assert address.is_complete is False
    reader = PayloadReader()
    read_address(reader, {"postal_code": "7500", "country": "FR"}, "a")
    assert [(e.field, e.code) for e in reader.errors] == [("a.postal_code", "invalid_postal_code")]
    reader = PayloadReader()
    assert read_address(reader, "Paris", "a") is None
    assert [(e.field, e.code) for e in reader.errors] == [("a", "invalid_type")]


@pytest.mark.parametrize(
    ("country", "valid"),
    [
        ("FR", True),
        ("de", True),
        ("GB", True),
        ("ZZ", False),
        ("XX", False),
        ("AA", False),
        ("12", False),
        ("FRA", False),
    ],
)
def test_an_address_country_is_a_country_of_iso_3166(country: str, valid: bool) -> None:
    # Checked by shape alone, ZZ passed for a country; the message itself names ISO 3166-1.
    reader = PayloadReader()
    address = read_address(reader, {"country": country}, "company.address")
    errors = [(e.field, e.code) for e in reader.errors]
    assert errors == ([] if valid else [("company.address.country", "invalid_country")])
    assert address is not None
    assert address.country == (country.upper() if valid else None)


@pytest.mark.parametrize(
    ("uri", "accepted"),
    [
        ("https://acme.test/cb", True),
        ("https://acme.test:8443/oauth/cb?x=1", True),
        ("http://localhost:8080/cb", True),
        ("http://127.0.0.1/cb", True),
        ("http://[::1]:9000/cb", True),
        # Began with http://localhost or http://127.0.0.1: a code sent in clear to evil.example.
        ("http://localhost@evil.example/cb", False),
        ("http://localhost.evil.example/cb", False),
        ("http://127.0.0.1.evil.example/cb", False),
        ("http://evil.example/cb", False),
        ("https://user:pw@acme.test/cb", False),
        ("https://acme.test/cb#frag", False),
        ("https:///cb", False),
        ("https://acme.test:99999/cb", False),
        ("javascript:alert(1)", False),
    ],
)
def test_a_redirect_uri_is_https_or_http_to_a_loopback_host(uri: str, accepted: bool) -> None:
    assert acceptable_redirect_uri(uri) is accepted
