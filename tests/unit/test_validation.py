"""Debtor field derivation and the stage-B validation rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from debtgraph.domain.debtors.fields import (
    columns_not_recognised,
    derive_debtor_fields,
    describes_debtors,
    fold_whitespace,
    full_address,
    full_name,
    parse_birth_date,
    unrecognized_columns,
)
from debtgraph.domain.debtors.rules import (
    ValidationOutcome,
    cell_length_errors,
    has_invalid_characters,
    validate_debtor,
)

VALID = {
    "iban": "DE89 3704 0044 0532 0130 00",
    "first_name": "Johann",
    "last_name": "Mueller",
    "amount": "200.00",
    "city": "Berlin",
    "postcode": "10115",
    "address": "Main St 1",
}


def _errors(**changes: object) -> list[str]:
    fields = {**VALID, **changes}
    return validate_debtor(fields, blacklisted=False).errors


def test_valid_debtor() -> None:
    assert validate_debtor(VALID, blacklisted=False) == ValidationOutcome(True, [], False)


def test_every_failing_message_in_table_order() -> None:
    outcome = validate_debtor({}, blacklisted=True)
    assert outcome == ValidationOutcome(
        valid=False,
        errors=[
            "IBAN is required",
            "Name is required",
            "Amount is required",
            "City is required",
            "Postal code is required",
            "Address is required",
            "IBAN is blacklisted",
        ],
        blacklisted=True,
    )
    assert outcome.first_error == "IBAN is required"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"iban": "  "}, ["IBAN is required"]),
        ({"iban": "DE89370400440532013001"}, ["IBAN is invalid"]),
        ({"iban": "de89 3704 0044 0532 0130 00"}, []),
        ({"first_name": "", "last_name": None}, ["Name is required"]),
        ({"first_name": "", "last_name": "Mueller"}, []),
        ({"first_name": "Johann", "last_name": ""}, []),
        ({"amount": ""}, ["Amount is required"]),
        ({"amount": "abc"}, ["Amount is required"]),
        ({"amount": "0"}, ["Amount must be positive"]),
        ({"amount": "-20"}, ["Amount must be positive"]),
        ({"amount": Decimal("-0.01")}, ["Amount must be positive"]),
        ({"amount": "50000,00"}, []),
        ({"amount": "50000.01"}, ["Amount must not exceed 50000"]),
        ({"amount": Decimal("75000")}, ["Amount must not exceed 50000"]),
        ({"amount": "1 234,56"}, []),
        ({"city": ""}, ["City is required"]),
        ({"city": "B"}, ["City must be between 2 and 100 characters"]),
        ({"city": "B" * 101}, ["City must be between 2 and 100 characters"]),
        ({"city": "MÃ¼nchen"}, ["City contains invalid characters"]),
        ({"city": "Ã"}, ["City must be between 2 and 100 characters"]),
        ({"city": "Ber\x00lin"}, ["City contains invalid characters"]),
        ({"city": "Ber\ufffdlin"}, ["City contains invalid characters"]),
        ({"city": "Ber\nlin"}, []),
        ({"postcode": " "}, ["Postal code is required"]),
        ({"postcode": "10"}, ["Postal code must be between 3 and 20 characters"]),
        ({"postcode": "1" * 21}, ["Postal code must be between 3 and 20 characters"]),
        ({"address": ""}, ["Address is required"]),
        ({"address": "St 1"}, ["Address must be between 5 and 200 characters"]),
        ({"address": "S" * 201}, ["Address must be between 5 and 200 characters"]),
        ({"address": "Calle MayorÂ\xa01"}, ["Address contains invalid characters"]),
        ({"address": "â€œMain St 1"}, ["Address contains invalid characters"]),
        ({"address": "Main\tSt\r\n1"}, []),
        # 27 digits or more: past the default decimal context's 28 digits (an error, not 422).
        ({"amount": "1" * 32}, ["Amount must not exceed 50000"]),
        ({"amount": "1" * 400 + ",50"}, ["Amount must not exceed 50000"]),
        ({"amount": 1e308}, ["Amount must not exceed 50000"]),
        # A SEPA direct debit is in euros, under the Core scheme; blank is the default.
        ({"currency": "eur"}, []),
        ({"currency": ""}, []),
        ({"currency": "USD"}, ["Currency must be EUR"]),
        ({"currency": "ABC"}, ["Currency must be EUR"]),
        ({"sepa_type": "core"}, []),
        ({"sepa_type": "B2B"}, ["SEPA type must be CORE"]),
        ({"sepa_type": "GARBAGE"}, ["SEPA type must be CORE"]),
    ],
)
def test_each_rule(changes: dict[str, object], errors: list[str]) -> None:
    assert _errors(**changes) == errors


def test_city_can_fail_length_and_encoding_together() -> None:
    assert _errors(city="\x07") == [
        "City must be between 2 and 100 characters",
        "City contains invalid characters",
    ]


def test_blacklisted_row_is_invalid() -> None:
    outcome = validate_debtor(VALID, blacklisted=True)
    assert outcome == ValidationOutcome(False, ["IBAN is blacklisted"], True)


def test_address_is_composed_from_street_fields() -> None:
    fields = {key: value for key, value in VALID.items() if key != "address"}
    assert _errors(address=None, street="Av", street_number="12") == []
    assert validate_debtor({**fields, "street": "Av"}, blacklisted=False).errors == [
        "Address must be between 5 and 200 characters"
    ]
    assert validate_debtor({**fields, "street_number": "12"}, blacklisted=False).errors == [
        "Address is required"
    ]


def test_derived_fields_with_unparsable_amount_say_amount_is_required() -> None:
    fields = derive_debtor_fields({**VALID, "amount": "twelve"})
    assert fields["amount"] is None
    assert fields["amount_invalid"] is True
    assert validate_debtor(fields, blacklisted=False).errors == ["Amount is required"]


@pytest.mark.parametrize(
    "text",
    [
        "José",
        "Muñoz",
        "Straße",
        "Ørsted",
        "São João",
        "Łódź",
        "L'Hospitalet",
        "Jos\u00e9\u2019s Bar",
    ],
)
def test_real_accents_are_valid(text: str) -> None:
    assert has_invalid_characters(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "JosÃ©",
        "MuÃ±oz",
        "StraÃŸe",
        "\u00c3\u02dcrsted",
        "â€œquoted",
        "Â\xa0",
        "a\x1fb",
        "a\ufffdb",
        "a\u200bb",
    ],
)
def test_mojibake_and_controls_are_invalid(text: str) -> None:
    assert has_invalid_characters(text) is True


def test_fold_whitespace() -> None:
    assert fold_whitespace("  Calle\r\n  Mayor\t\t1 ") == "Calle Mayor 1"
    assert fold_whitespace(None) == ""


def test_derive_debtor_fields_from_seed_row() -> None:
    raw = {
        "first_name": "Maria",
        "last_name": "Rodriguez",
        "iban": "es05 0019 0050 0540 1013 0723",
        "amount": "150,00",
        "phone": "638549256",
        "dni": "52268154x",
        "birth_date": "12/01/1964",
        "address": "JUAN RAMON\nJIMENEZ",
        "number": "7",
        "zip": "21740",
        "city": "HINOJOS",
        "province": "Huelva",
        "reference": "ORDER-12345",
        "custom_field": "extra_value",
    }
    assert derive_debtor_fields(raw) == {
        "iban": "ES0500190050054010130723",
        "first_name": "Maria",
        "last_name": "Rodriguez",
        "email": None,
        "phone": "638549256",
        "national_id": "52268154X",
        "birth_date": date(1964, 1, 12),
        "street": "JUAN RAMON JIMENEZ",
        "street_number": "7",
        "floor": None,
        "door": None,
        "apartment": None,
        "postcode": "21740",
        "city": "HINOJOS",
        "province": "Huelva",
        "country": "ES",
        "amount": Decimal("150.00"),
        "amount_invalid": False,
        "currency": "EUR",
        "sepa_type": "CORE",
        "external_reference": "ORDER-12345",
    }


@pytest.mark.parametrize(
    ("raw", "first", "last"),
    [
        ({"name": "Maria Rodriguez Lopez"}, "Maria", "Rodriguez Lopez"),
        ({"full_name": "Rodriguez Lopez, Maria"}, "Maria", "Rodriguez Lopez"),
        ({"full_name": "Madonna"}, "Madonna", None),
        ({"name": "Maria Rodriguez", "last_name": "Lopez"}, None, "Lopez"),
    ],
)
def test_full_name_aliases(raw: dict[str, str], first: str | None, last: str | None) -> None:
    fields = derive_debtor_fields(raw)
    assert (fields["first_name"], fields["last_name"]) == (first, last)


def test_aliases_and_defaults() -> None:
    fields = derive_debtor_fields(
        {
            "postal_code": "28001",
            "mobile": "600 000 000",
            "nif": "X1234567L",
            "ext_ref": "R-1",
            "country": "de",
            "currency": "eur",
            "sepa_type": "b2b",
            "dirección": "Gran Vía 1",
            "amount": "",
        }
    )
    assert fields["postcode"] == "28001"
    assert fields["phone"] == "600 000 000"
    assert fields["national_id"] == "X1234567L"
    assert fields["external_reference"] == "R-1"
    assert fields["country"] == "DE"
    assert fields["currency"] == "EUR"
    assert fields["sepa_type"] == "B2B"
    assert fields["street"] == "Gran Vía 1"
    assert fields["amount"] is None
    assert fields["amount_invalid"] is False


def test_country_falls_back_to_the_iban_country_only_for_valid_ibans() -> None:
    assert derive_debtor_fields({"iban": "DE89370400440532013000"})["country"] == "DE"
    assert derive_debtor_fields({"iban": "DE89370400440532013001"})["country"] is None
    assert derive_debtor_fields({"country": "Spain"})["country"] is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1964-01-12", date(1964, 1, 12)),
        ("12/01/1964", date(1964, 1, 12)),
        ("12.01.1964", date(1964, 1, 12)),
        ("31/02/1964", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_birth_date(raw: str | None, expected: date | None) -> None:
    assert parse_birth_date(raw) == expected


def test_full_address_like_the_seed() -> None:
    address = full_address(
        street="JUAN RAMON JIMENEZ",
        street_number="7",
        postcode="21740",
        city="HINOJOS",
        province="Huelva",
        country="ES",
    )
    assert address == "JUAN RAMON JIMENEZ 7\n21740, HINOJOS, Huelva, ES"


def test_full_address_skips_missing_parts() -> None:
    assert full_address(street="Calle Mayor", street_number="3", floor="2", door="B") == (
        "Calle Mayor 3 2 B"
    )
    assert full_address(city="Madrid", country="ES") == "Madrid, ES"
    assert full_address() is None


def test_full_name() -> None:
    assert full_name("Maria", "Rodriguez") == "Maria Rodriguez"
    assert full_name(None, "Rodriguez") == "Rodriguez"
    assert full_name(" ", None) is None


def test_a_cell_over_1000_characters_fails_the_row_with_the_exact_message() -> None:
    raw = {"first_name": "Ana", "notes": "n" * 1001, "city": "c" * 1000, "amount": 5}
    assert cell_length_errors(raw) == ["Field notes must not exceed 1000 characters"]
    outcome = validate_debtor(VALID, blacklisted=False, raw=raw)
    assert outcome.valid is False
    assert outcome.errors == ["Field notes must not exceed 1000 characters"]
    long_city = {**VALID, "city": "M" * 1500}
    assert validate_debtor(long_city, blacklisted=False, raw=long_city).errors == [
        "Field city must not exceed 1000 characters",
        "City must be between 2 and 100 characters",
    ]
    assert validate_debtor(VALID, blacklisted=False, raw=VALID).valid is True


def test_recognised_and_unrecognised_columns() -> None:
    columns = ["nombre", "direccion", "iban", "custom_field", "_column_5", "iban_2"]
    assert unrecognized_columns(columns) == ["custom_field", "_column_5", "iban_2"]
    assert unrecognized_columns(["dirección", "e_mail"]) == []
    assert describes_debtors(["name", "foo"]) is True
    assert describes_debtors(["importe", "foo"]) is True


def test_the_german_header_of_issue_7_describes_no_debtor() -> None:
    # IBAN is spelled alike in German, but nothing else in the header is a debtor column.
    german = ["vorname", "nachname", "iban", "betrag", "strasse", "plz", "stadt", "e_mail"]
    assert describes_debtors(german) is False
    assert describes_debtors(["iban", "email", "phone", "country"]) is False
    assert columns_not_recognised([*german, "_column_9"]) == (
        "The file's columns are not recognised: expected first_name, last_name (or name), iban,"
        " amount, city, postcode and address, or an alias of them listed in the README;"
        " found vorname, nachname, iban, betrag, strasse, plz, stadt, e_mail."
    )


def test_the_columns_found_are_listed_briefly() -> None:
    message = columns_not_recognised([f"{'x' * 60}{n}" for n in range(30)])
    assert message.endswith(f"found {', '.join(['x' * 40 + '…'] * 20)} and 10 more.")


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("EUR", "EUR"),
        ("eur", "EUR"),
        ("", "EUR"),
        ("USD", "USD"),
        ("EURO", "XXX"),
        ("EUR/USD", "XXX"),
        ("EURGBP", "XXX"),
        ("E", "XXX"),
    ],
)
def test_a_currency_that_is_no_three_letter_code_is_stored_as_none_and_refused(
    cell: str, stored: str
) -> None:
    # Cut to its three-character column, "EURGBP" was stored "EUR" and passed the euro rule.
    fields = derive_debtor_fields({**VALID, "currency": cell})
    assert fields["currency"] == stored
    errors = validate_debtor(fields, blacklisted=False).errors
    assert errors == ([] if stored == "EUR" else ["Currency must be EUR"])


@pytest.mark.parametrize(
    ("cell", "stored"),
    [
        ("CORE", "CORE"),
        ("core", "CORE"),
        ("", "CORE"),
        ("B2B", "B2B"),
        ("CORE      -B2B", "UNKNOWN"),
        ("CORE  X", "CORE  X"),
    ],
)
def test_a_scheme_longer_than_its_column_is_stored_as_unknown_and_refused(
    cell: str, stored: str
) -> None:
    # Cut to its ten-character column, "CORE      -B2B" was stored "CORE      ", read as CORE.
    fields = derive_debtor_fields({**VALID, "sepa_type": cell})
    assert fields["sepa_type"] == stored
    errors = validate_debtor(fields, blacklisted=False).errors
    assert errors == ([] if stored == "CORE" else ["SEPA type must be CORE"])
