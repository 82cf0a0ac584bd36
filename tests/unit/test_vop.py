"""Verification of payee: names, scores, risk and the sandbox provider."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from debtgraph.domain.banking.iban import enrich_iban, is_valid_iban
from debtgraph.domain.payments.vop import (
    EPC_CODES,
    SANDBOX_TEST_IBANS,
    NameMatch,
    SandboxVopProvider,
    VopAnswer,
    VopProvider,
    close_variant,
    country_consistent,
    epc_code,
    evaluate,
    is_negative,
    is_positive,
    label_and_result,
    name_match,
    normalize_name,
    risk_class,
    score,
)

NAME = "Maria Rodriguez"


def _check(iban: str, name: str = NAME) -> VopAnswer:
    provider: VopProvider = SandboxVopProvider()
    return asyncio.run(provider.check(iban, name))


def test_normalize_name() -> None:
    assert normalize_name("  Rodríguez-López, MARÍA  ") == "lopez maria rodriguez"
    assert normalize_name("O'Brien, Seán") == "obrien sean"
    assert normalize_name("Jürgen Groß") == "gross jurgen"


@pytest.mark.parametrize(
    ("expected", "actual", "outcome"),
    [
        ("Maria Rodriguez", "RODRIGUEZ MARIA", "match"),
        ("María Rodríguez", "Maria Rodriguez", "match"),
        ("Johann Mueller", "J. Mueller", "close_match"),
        ("J. Mueller", "Johann Mueller", "close_match"),
        ("Maria Rodriguez", "Maria Rodriguez Garcia", "close_match"),
        ("Maria Rodriguez", "Peter Schmidt", "no_match"),
        ("J. Mueller", "Peter Mueller", "no_match"),
        ("Maria Rodriguez", None, "not_possible"),
        ("Maria Rodriguez", "  ", "not_possible"),
    ],
)
def test_name_match_outcomes(expected: str, actual: str | None, outcome: str) -> None:
    assert name_match(expected, actual).outcome == outcome


def test_name_match_ratios() -> None:
    assert name_match("Maria Rodriguez", "Rodriguez Maria") == NameMatch(100.0, "match")
    assert name_match("Johann Mueller", "J. Mueller") == NameMatch(85.0, "close_match")
    assert name_match("Maria", None) == NameMatch(0.0, "not_possible")


def test_sandbox_test_ibans_are_valid_and_distinct_banks() -> None:
    assert len(SANDBOX_TEST_IBANS) == 5
    assert all(is_valid_iban(iban) for iban in SANDBOX_TEST_IBANS)
    assert len({enrich_iban(iban).bank_code for iban in SANDBOX_TEST_IBANS}) == 5
    assert sorted(SANDBOX_TEST_IBANS.values()) == sorted(
        ["close_match", "no_match", "not_possible", "closed", "unknown_bank"]
    )


def test_sandbox_default_is_a_match() -> None:
    answer = _check("de89 3704 0044 0532 0130 00")
    assert answer == VopAnswer("open", NAME)
    assert name_match(NAME, answer.holder_name).outcome == "match"


def test_sandbox_close_match() -> None:
    answer = _check("ES80 0182 2370 4402 0123 4567")
    assert answer == VopAnswer("open", "M. Rodriguez")
    assert name_match(NAME, answer.holder_name).outcome == "close_match"


@pytest.mark.parametrize("name", ["Rodriguez", "Li", "J. Mueller", "Ana María López García"])
def test_close_variant_is_always_a_close_match(name: str) -> None:
    assert name_match(name, close_variant(name)).outcome == "close_match"


def test_sandbox_no_match() -> None:
    answer = _check("ES1600491500040511111111")
    assert answer == VopAnswer("open", "Zacarias Quintanilla Ybarra")
    assert name_match(NAME, answer.holder_name).outcome == "no_match"
    other = _check("ES1600491500040511111111", "Zacarias Quintanilla Ybarra")
    assert name_match("Zacarias Quintanilla Ybarra", other.holder_name).outcome == "no_match"


def test_sandbox_not_possible_closed_and_unknown_bank() -> None:
    assert _check("ES1600810200220000000123") == VopAnswer("open", None)
    assert _check("FR7630004000000000000000151") == VopAnswer("closed", None)
    assert _check("ES8099990001450000000001") == VopAnswer("unknown_bank", None)
    assert _check("DE89370400440532013001") == VopAnswer("unknown_bank", None)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((True, True, "match", True, "open"), 90),
        ((True, False, "match", True, "open"), 80),
        ((True, False, "match", False, "open"), 70),
        ((True, True, "close_match", True, "open"), 70),
        ((True, True, "close_match", False, "open"), 60),
        ((True, True, "not_possible", True, "open"), 55),
        ((True, False, "not_possible", True, "open"), 45),
        ((True, True, "no_match", True, "open"), 35),
        ((True, True, "no_match", False, "open"), 25),
        ((False, True, "match", True, "open"), 0),
        ((True, True, "match", True, "unknown_bank"), 5),
        ((True, True, "match", True, "closed"), 10),
    ],
)
def test_score(args: tuple, expected: int) -> None:
    assert score(*args) == expected


@pytest.mark.parametrize(
    ("value", "label", "result"),
    [
        (100, "high", "verified"),
        (80, "high", "verified"),
        (79, "medium", "likely_verified"),
        (60, "medium", "likely_verified"),
        (59, "low", "inconclusive"),
        (40, "low", "inconclusive"),
        (39, "low", "mismatch"),
        (20, "low", "mismatch"),
        (19, "low", "rejected"),
        (0, "low", "rejected"),
    ],
)
def test_label_and_result(value: int, label: str, result: str) -> None:
    assert label_and_result(value) == (label, result)


def test_epc_codes_and_polarity() -> None:
    assert dict(EPC_CODES) == {
        "verified": "MTCH",
        "likely_verified": "CMTC",
        "mismatch": "NMTC",
        "inconclusive": "NOAP",
    }
    assert epc_code("rejected") is None
    assert (is_positive(60), is_positive(59)) == (True, False)
    assert (is_negative(39), is_negative(40)) == (True, False)


@pytest.mark.parametrize(
    ("value", "amount", "declined", "expected"),
    [
        (90, Decimal("150.00"), False, "low"),
        (80, Decimal("1000.00"), False, "low"),
        (90, Decimal("1000.01"), False, "medium"),
        (79, Decimal("10"), False, "medium"),
        (40, None, False, "medium"),
        (39, Decimal("10"), False, "high"),
        (95, Decimal("10"), True, "high"),
        (90, None, False, "low"),
    ],
)
def test_risk_class(value: int, amount: Decimal | None, declined: bool, expected: str) -> None:
    assert risk_class(value, amount, declined) == expected


def test_country_consistent() -> None:
    assert country_consistent("es", "ES") is True
    assert country_consistent("DE", "ES") is False
    assert country_consistent(None, "ES") is True


@pytest.mark.parametrize(
    ("iban", "result", "code", "matched"),
    [
        ("ES0500190050054010130723", "verified", "MTCH", True),
        ("ES8001822370440201234567", "likely_verified", "CMTC", True),
        ("ES1600810200220000000123", "inconclusive", "NOAP", False),
        ("ES1600491500040511111111", "mismatch", "NMTC", False),
        ("FR7630004000000000000000151", "rejected", None, False),
        ("ES8099990001450000000001", "rejected", None, False),
        ("ES0500190050054010130724", "rejected", None, False),
    ],
)
def test_evaluate_each_sandbox_outcome(
    iban: str, result: str, code: str | None, matched: bool
) -> None:
    info = enrich_iban(iban)
    answer = _check(iban) if info.valid else None
    verdict = evaluate(
        NAME,
        iban_valid=info.valid,
        bank_identified=info.bank_identified,
        country_is_consistent=country_consistent("ES", info.country),
        answer=answer,
    )
    assert verdict.result == result
    assert verdict.epc_code == code
    assert verdict.name_matched is matched
    assert verdict.is_positive is (verdict.score >= 60)
    assert verdict.is_negative is (verdict.score < 40)
