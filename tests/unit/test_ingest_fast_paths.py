"""The fast paths of ingestion give the same answers as the straightforward rules they replace.

Each test compares a fast path with a reference: the per-row derivation and character checks
as they were written before (copied here as oracles), ``strptime`` for dates, and schwifty
lookups without the bank cache.
"""

from __future__ import annotations

import itertools
import random
import time
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import aclosing
from datetime import UTC, date, datetime
from typing import Any

import pytest
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from debtgraph.domain.banking import iban as iban_module
from debtgraph.domain.core.clock import FrozenClock
from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors.csv_reader import CsvFormatError, ParsedRow
from debtgraph.domain.debtors.fields import (
    _ALIASES,
    _DATE_FORMATS,
    _FOLDABLE,
    _FULL_NAME_ALIASES,
    DebtorFields,
    FieldMap,
    _split_full_name,
    _strip_accents,
    derive_debtor_fields,
    field_map,
    fold_whitespace,
    parse_birth_date,
)
from debtgraph.domain.debtors.rules import (
    _INVALID_CATEGORIES,
    _as_cp1252_byte,
    _mojibake_sequence,
    has_invalid_characters,
    has_mojibake,
    validate_debtor,
)


def _reference_fold(value: str | None) -> str:
    return "" if value is None else _FOLDABLE.sub(" ", value).strip()


def _reference_mojibake(text: str) -> bool:
    for index, char in enumerate(text):
        lead = _as_cp1252_byte(char)
        if lead is None or not 0xC2 <= lead <= 0xF4:
            continue
        if lead == 0xE2 and text[index + 1 : index + 2] == "€":
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


def _reference_invalid(text: str) -> bool:
    if "\ufffd" in text:
        return True
    if any(unicodedata.category(char) in _INVALID_CATEGORIES for char in text):
        return True
    return _reference_mojibake(text)


def _reference_birth_date(raw: str | None) -> date | None:
    text = _reference_fold(raw)
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _reference_derive(raw: Mapping[str, str]) -> DebtorFields:
    """The per-row derivation: aliases looked up in every row."""
    from debtgraph.domain.banking.iban import is_valid_iban, normalize_iban
    from debtgraph.domain.debtors.amounts import parse_amount

    columns = {_strip_accents(key): value for key, value in raw.items()}

    def lookup(names: tuple[str, ...]) -> str | None:
        for name in names:
            value = _reference_fold(columns.get(name))
            if value:
                return value
        return None

    def pick(name: str) -> str | None:
        return lookup(_ALIASES[name])

    first_name, last_name = pick("first_name"), pick("last_name")
    if first_name is None and last_name is None:
        full = lookup(_FULL_NAME_ALIASES)
        if full:
            first_name, last_name = _split_full_name(full)
    try:
        amount, amount_invalid = parse_amount(pick("amount")), False
    except ValueError:
        amount, amount_invalid = None, True
    iban = normalize_iban(pick("iban")) or None
    country = (pick("country") or "").upper()
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        country = iban[:2] if iban and is_valid_iban(iban) else ""
    national_id = pick("national_id")
    currency = (pick("currency") or "EUR").upper()
    sepa_type = (pick("sepa_type") or "CORE").upper()
    return DebtorFields(
        iban=iban,
        first_name=first_name,
        last_name=last_name,
        email=pick("email"),
        phone=pick("phone"),
        national_id=national_id.replace(" ", "").upper() if national_id else None,
        birth_date=_reference_birth_date(pick("birth_date")),
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
        # No three-letter code is no currency (XXX); a scheme past its column is UNKNOWN.
        currency=currency if len(currency) == 3 else "XXX",
        sepa_type=sepa_type if len(sepa_type) <= 10 else "UNKNOWN",
        external_reference=pick("external_reference"),
    )


TRICKY = [
    "",
    " ",
    "plain",
    "  padded  ",
    "Calle\r\n  Mayor\t\t1 ",
    "tab\there",
    "line\nbreak",
    "\u2028sep\u2029",
    "next\x85line",
    "vertical\x0btab\x0cfeed",
    "no\u00a0break",
    "thin\u2009space",
    "José",
    "Muñoz",
    "Straße",
    "Ørsted",
    "Łódź",
    "María Núñez",
    "Jürgen Schäfer",
    "Françoise Lefèvre",
    "JosÃ©",
    "MuÃ±oz",
    "StraÃŸe",
    "\u00c3\u02dcrsted",
    "â€œquoted",
    "â€",
    "Â\xa0",
    "Ã",
    "Ã ",
    "Ãa",
    "í",
    "ía",
    "\u00e2\u0080\u0099",
    "\u00f0\u009f\u0098\u0080",
    "\u00f4\u0090\u0080\u0080",
    "\u00e0\u0080\u0080",
    "\u00ed\u00a0\u0080",
    "MÃ¡laga",
    "Par\ufffdis",
    "a\x1fb",
    "a\x00b",
    "a\x7fb",
    "a\u200bb",
    "a\ue000b",
    "a\u0378b",
    "X",
    "Calle Mayor 12",
    "€ 12",
    "\u201cquoted\u201d \u2013 dash\u2026",
    "日本語",
    "emoji \U0001f600",
]
# Lead and continuation candidates for mojibake, next to plain and control characters.
_ALPHABET = "aZ \t\n\x1f\x80\x9f\xa0\xa9\xbf\xc2\xc3\xdf\xe0\xe2\xed\xef\xf0\xf4\xf5€™Ÿœ\ufffdé"


def _combinations() -> list[str]:
    pairs = ["".join(combo) for combo in itertools.product(_ALPHABET, repeat=2)]
    rng = random.Random(3)
    longer = ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(3, 6))) for _ in range(3000)]
    return TRICKY + pairs + longer


@pytest.mark.parametrize("text", TRICKY)
def test_fold_whitespace_matches_the_regex(text: str) -> None:
    assert fold_whitespace(text) == _reference_fold(text)


def test_fast_character_checks_match_the_reference() -> None:
    for text in _combinations():
        assert fold_whitespace(text) == _reference_fold(text), repr(text)
        assert has_mojibake(text) is _reference_mojibake(text), repr(text)
        assert has_invalid_characters(text) is _reference_invalid(text), repr(text)


def test_mojibake_leads_are_the_latin1_block_c2_to_f4() -> None:
    # has_mojibake only looks at U+00C2-U+00F4; no other character has such a cp1252 byte.
    leads = {
        code
        for code in range(0x10000)
        if not 0xD800 <= code <= 0xDFFF
        and (byte := _as_cp1252_byte(chr(code))) is not None
        and 0xC2 <= byte <= 0xF4
    }
    assert leads == set(range(0xC2, 0xF5))


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "1964-01-12",
        "1964-1-2",
        "12/01/1964",
        "2/1/1964",
        "12.01.1964",
        "12-01-1964",
        " 12/01/1964 ",
        "12/01/1964\n",
        "31/02/1964",
        "29/02/2024",
        "29/02/2023",
        "00/01/1964",
        "01/00/1964",
        "01/13/1964",
        "32/01/1964",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
        "12/01/64",
        "12/01-1964",
        "12.01/1964",
        "123/01/1964",
        "1964-001-01",
        "1964/01/12",
        " 1/01/1964",
        "1/ 1/1964",
        "\u0661\u0669\u0666\u0664-\u0660\u0661-\u0661\u0662",  # Arabic-Indic digits
        "12/01/1964x",
        "yesterday",
    ],
)
def test_parse_birth_date_matches_strptime(raw: str | None) -> None:
    assert parse_birth_date(raw) == _reference_birth_date(raw)


def test_parse_birth_date_matches_strptime_on_generated_dates() -> None:
    rng = random.Random(5)
    parts = ["0", "00", "1", "01", "9", "12", "13", "28", "29", "30", "31", "32", "2024", "1900"]
    for _ in range(3000):
        a, b, c = (rng.choice(parts) for _ in range(3))
        sep = rng.choice("-/.")
        sep2 = sep if rng.random() < 0.8 else rng.choice("-/.")
        text = f"{a}{sep}{b}{sep2}{c}"
        assert parse_birth_date(text) == _reference_birth_date(text), text


ROWS: list[dict[str, str]] = [
    {
        "nombre": "María",
        "apellidos": "Núñez",
        "iban": "es91 2100 0418 4502 0005 1332",
        "importe": "1.234,56",
        "ciudad": "Madrid",
        "cp": "28001",
        "dirección": "Calle\nMayor 1",
        "pais": "es",
        "email": "m@example.com",
        "referencia": "ORDER-1",
    },
    # Twins after accents are stripped: the later column wins, even when blank.
    {"direccion": "Calle A 1", "dirección": "", "calle": "Calle B 2", "name": "Ana López"},
    {"dirección": "Calle A 1", "direccion": "Calle C 3"},
    # The first alias blank: the next one counts.
    {"first_name": " ", "firstname": "Jo", "last_name": "", "surname": "Doe", "amount": "x"},
    {"full_name": "Rossi, Giulia", "iban": "IT60X0542811101000000123456", "birth_date": "1/2/1990"},
    {"name": "", "full_name": "Madonna", "dob": "1990-02-30", "fecha_nacimiento": "01.02.1990"},
    {"iban": "DE89370400440532013000", "country": "Germany", "dni": "52 268 154x"},
    {"IBAN": "DE89370400440532013000", "Country": "de"},
    {"custom": "x", "_extra_1": "y"},
    {},
]


@pytest.mark.parametrize("raw", ROWS)
def test_field_map_derivation_equals_the_per_row_derivation(raw: dict[str, str]) -> None:
    assert derive_debtor_fields(raw) == _reference_derive(raw)
    assert FieldMap.from_columns(raw).derive(raw) == _reference_derive(raw)


def test_one_field_map_serves_rows_with_the_same_columns() -> None:
    header = list(ROWS[0])
    mapping = field_map(header)
    assert field_map(tuple(header)) is mapping
    rng = random.Random(11)
    values = ["", " ", "x", "Calle\tMayor", "1964-01-12", "12,50", "ES9121000418450200051332"]
    for _ in range(200):
        raw = {column: rng.choice(values) for column in header}
        assert mapping.derive(raw) == _reference_derive(raw)


def test_a_field_map_tolerates_rows_missing_its_columns() -> None:
    mapping = field_map(["iban", "city", "nombre"])
    assert mapping.derive({"city": "Roma"}) == _reference_derive({"city": "Roma"})


def test_debtor_records_equal_one_record_per_row() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    rows = [ParsedRow(number, dict(raw)) for number, raw in enumerate(ROWS, start=2)]
    rows.append(ParsedRow(99, {**ROWS[0], "_extra_1": "more"}))
    rows.append(ParsedRow(100, dict(ROWS[0])))
    records = ingestion.debtor_records(7, rows, now)
    assert records == [ingestion.debtor_record(7, row, now) for row in rows]
    for record, row in zip(records, rows, strict=True):
        assert record["raw_data"] == row.data
        derived = ingestion.debtor_fields_from_raw(row.data)
        assert {key: record[key] for key in derived} == derived


def test_stored_fields_are_cut_to_their_columns() -> None:
    stored = ingestion.debtor_fields_from_raw(
        {"city": "C" * 500, "iban": "DE89" + "1" * 40, "currency": "euros", "amount": "1e99"}
    )
    assert len(stored["city"]) == 200
    assert stored["iban"] == ("DE89" + "1" * 40)[:34]
    assert stored["iban_valid"] is False
    assert stored["currency"] == "XXX"  # no three-letter code: no currency, refused
    assert stored["amount"] is None


def test_copy_rows_follow_the_copy_columns() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    record: dict[str, Any] = ingestion.debtor_record(3, ParsedRow(2, dict(ROWS[0])), now)
    record["validation_errors"] = ["IBAN is invalid"]
    row = ingestion._copy_row(record)
    by_column = dict(zip(ingestion.COPY_COLUMNS, row, strict=True))
    # JSON columns go as they are: ``database.insert_rows`` renders them for each backend.
    assert by_column["raw_data"] == dict(ROWS[0])
    assert by_column["validation_errors"] == ["IBAN is invalid"]
    assert by_column["street"] == "Calle Mayor 1"
    assert by_column["upload_id"] == 3
    # Columns a record leaves out go as NULL.
    assert ingestion._copy_row({"upload_id": 1})[1:] == [None] * (len(row) - 1)


IBANS = [
    "DE89370400440532013000",
    "DE02100100100006820101",
    "ES9121000418450200051332",
    "ES0500190050054010130723",
    "ES8099990001450000000001",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "IT60X0542811101000000123456",
    "GB29NWBK60161331926819",
    "AT611904300234573201",
    "DE89370400440532013001",
    "not an iban",
    "",
    None,
]


def test_cached_bank_lookups_equal_fresh_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    iban_module._BANKS.clear()
    warm = [iban_module.enrich_iban(iban) for iban in IBANS * 2]
    assert iban_module._BANKS
    for iban, cached in zip(IBANS * 2, warm, strict=True):
        iban_module._BANKS.clear()
        assert iban_module.enrich_iban(iban) == cached
    parsed = iban_module._parse("DE89370400440532013000")
    assert parsed is not None
    assert iban_module._cached_bank_details(parsed) == iban_module._bank_details(parsed)


def test_bank_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iban_module, "_BANK_CACHE_SIZE", 2)
    iban_module._BANKS.clear()
    for iban in IBANS:
        iban_module.enrich_iban(iban)
    assert len(iban_module._BANKS) <= 2


@pytest.mark.parametrize("iban", IBANS)
def test_a_stored_iban_verdict_gives_the_same_outcome(iban: str | None) -> None:
    fields = {
        "iban": iban,
        "first_name": "Ana",
        "amount": "10",
        "city": "Roma",
        "postcode": "00118",
        "street": "Via Roma 1",
    }
    fresh = validate_debtor(fields, blacklisted=False)
    verdict = iban_module.enrich_iban(iban).valid
    assert validate_debtor(fields, blacklisted=False, iban_valid=verdict) == fresh


def _rows(count: int) -> list[ParsedRow]:
    return [ParsedRow(number, {**ROWS[0], "referencia": f"R-{number}"}) for number in range(count)]


async def test_record_chunks_yield_the_records_in_chunks() -> None:
    clock = FrozenClock(datetime(2026, 11, 22, tzinfo=UTC))
    rows = _rows(7)
    chunks = [chunk async for chunk in ingestion.record_chunks(iter(rows), 5, clock, size=3)]
    assert [len(chunk) for chunk in chunks] == [3, 3, 1]
    assert [record for chunk in chunks for record in chunk] == ingestion.debtor_records(
        5, rows, clock.now()
    )


async def test_record_chunks_raise_reading_errors_where_the_chunk_would_be() -> None:
    clock = FrozenClock(datetime(2026, 11, 22, tzinfo=UTC))

    def rows() -> Iterator[ParsedRow]:
        yield from _rows(3)
        raise CsvFormatError("broken")

    chunks = ingestion.record_chunks(rows(), 5, clock, size=3)
    assert len(await anext(chunks)) == 3
    with pytest.raises(CsvFormatError):
        await anext(chunks)


async def test_closing_record_chunks_waits_for_the_worker() -> None:
    clock = FrozenClock(datetime(2026, 11, 22, tzinfo=UTC))
    read: list[int] = []

    def rows() -> Iterator[ParsedRow]:
        for row in _rows(6):
            time.sleep(0.01)
            read.append(row.row_number)
            yield row

    async with aclosing(ingestion.record_chunks(rows(), 5, clock, size=3)) as chunks:
        assert len(await anext(chunks)) == 3
    # The second chunk was being read ahead; closing waited until the worker was done with it.
    assert read == list(range(6))


def _schwifty_valid(compact: str) -> bool:
    try:
        IBAN(compact)
    except (SchwiftyException, ValueError):
        return False
    return True


def test_the_iban_shortcut_says_yes_only_where_schwifty_does() -> None:
    rng = random.Random(5)
    countries = ["DE", "ES", "FR", "NL", "IT", "GB", "AT", "BE", "PT", "SE", "NO", "MT", "LC"]
    valid = [str(IBAN.random(country, random=rng)) for country in countries for _ in range(30)]
    candidates = list(valid)
    for iban in valid:
        at = rng.randrange(4, len(iban))
        candidates += [
            iban[:at] + rng.choice("0123456789AZ") + iban[at + 1 :],
            iban[:2] + "00" + iban[4:],
            iban[:2] + "01" + iban[4:],
            iban[:2] + "99" + iban[4:],
            iban + "0",
            iban[:-1],
            "XX" + iban[2:],
            iban[:4] + "-" + iban[4:],
        ]
    for compact in candidates:
        schwifty = _schwifty_valid(compact)
        assert iban_module._accepted(compact) <= schwifty, compact
        normalised = _schwifty_valid(iban_module.normalize_iban(compact))
        assert iban_module.is_valid_iban(compact) == normalised, compact
    # Every valid IBAN takes the shortcut: no schwifty object is built for it.
    assert all(iban_module._accepted(iban) for iban in valid)


@pytest.mark.parametrize(
    "raw", ["0", "0,00", "000,00", "7", "150,5", "150,50", "150.50", "007,50", "1,234", "1.234",
            "1234,567", "12,3456", "999999999999999", "1234567890123456", "\u0663,\u0665\u0660"],
)  # fmt: skip
def test_plain_amounts_parse_as_the_general_rules_read_them(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from debtgraph.domain.debtors import amounts

    def parse(value: str) -> str:
        try:
            return repr(amounts.parse_amount(value))
        except ValueError:
            return "refused"

    fast = parse(raw)
    monkeypatch.setattr(amounts, "_PLAIN", __import__("re").compile("(?!)"))
    assert fast == parse(raw)


def test_the_check_digits_equal_schwiftys_including_their_97_aliases() -> None:
    """The remainder test alone also takes check digits 97 away from the right ones (00 for
    97, 01 for 98, 99 for 02): each must be refused as schwifty refuses it."""
    rng = random.Random(11)
    aliases = {97: "00", 98: "01", 2: "99"}
    found: dict[int, list[str]] = {key: [] for key in aliases}
    checked = 0
    while any(len(ibans) < 3 for ibans in found.values()):
        iban = str(IBAN.random(rng.choice(["DE", "ES", "FR", "NL", "IT", "GB"]), random=rng))
        checked += 1
        assert iban_module.check_digits_ok(iban), iban
        check = int(iban[2:4])
        if check in aliases and len(found[check]) < 3:
            found[check].append(iban)
        # Every other pair of digits is wrong, for both.
        wrong = f"{(check + rng.randrange(1, 97)) % 100:02d}"
        assert not iban_module.check_digits_ok(iban[:2] + wrong + iban[4:])
        assert not _schwifty_valid(iban[:2] + wrong + iban[4:])
    for check, ibans in found.items():
        for iban in ibans:
            alias = iban[:2] + aliases[check] + iban[4:]
            assert not _schwifty_valid(alias), alias
            assert not iban_module.check_digits_ok(alias), alias
            assert not iban_module._accepted(alias), alias
    assert checked > 100
    # Letters count as 10 to 35 (GB account numbers start with the bank's four letters), and
    # only ASCII digits are digits.
    assert iban_module.check_digits_ok("GB82WEST12345698765432")
    assert not iban_module.check_digits_ok("GB82WEST1234569876543\u0662")
