"""IBAN normalising, masking, validation and enrichment."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from schwifty import IBAN, registry

from debtgraph.domain.banking import iban as iban_module
from debtgraph.domain.banking.iban import (
    IbanInfo,
    enrich_iban,
    is_valid_iban,
    mask_iban,
    normalize_iban,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" es05 0019 0050 0540 1013 0723 ", "ES0500190050054010130723"),
        ("DE89-3704-0044-0532-0130-00", "DE89370400440532013000"),
        ("IBAN: de89\u00a03704 0044 0532 0130 00", "DE89370400440532013000"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_iban(raw: str | None, expected: str) -> None:
    assert normalize_iban(raw) == expected


def test_mask_iban() -> None:
    assert mask_iban("ES0500190050054010130723") == "ES05****0723"
    assert mask_iban("es05 0019 0050 0540 1013 0723") == "ES05****0723"
    assert mask_iban("ES05123") == "ES****"
    assert mask_iban("  ") is None
    assert mask_iban(None) is None


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89370400440532013000", True),
        ("de89 3704 0044 0532 0130 00", True),
        ("ES0500190050054010130723", True),
        ("DE89370400440532013001", False),  # checksum
        ("DE8937040044053201300", False),  # length
        ("XX89370400440532013000", False),  # country
        ("", False),
        (None, False),
    ],
)
def test_is_valid_iban(iban: str | None, valid: bool) -> None:
    assert is_valid_iban(iban) is valid


def test_enrich_german_iban() -> None:
    assert enrich_iban("de89 3704 0044 0532 0130 00") == IbanInfo(
        valid=True,
        masked="DE89****3000",
        country="DE",
        bank_code="37040044",
        bank_name="Commerzbank",
        bic="COBADEFFXXX",
    )
    assert enrich_iban("DE89370400440532013000").bank_identified is True


def test_enrich_spanish_iban_pads_the_bic() -> None:
    info = enrich_iban("ES0500190050054010130723")
    assert info.country == "ES"
    assert info.bank_code == "0019"
    assert info.bank_name == "DEUTSCHE BANK, S.A.E."
    assert info.bic == "DEUTESBBXXX"


def test_enrich_iban_without_registry_data() -> None:
    info = enrich_iban("ES8099990001450000000001")
    assert info == IbanInfo(True, "ES80****0001", "ES", "9999", None, None)
    assert info.bank_identified is False


def test_enrich_invalid_iban_never_raises() -> None:
    assert enrich_iban("DE89370400440532013001") == IbanInfo(
        False, "DE89****3001", None, None, None, None
    )
    assert enrich_iban(None) == IbanInfo(False, None, None, None, None, None)


def _fresh(iban: str) -> IbanInfo:
    """Enrichment straight from schwifty, with no cache or fast path of ours."""
    parsed = IBAN(iban)
    return IbanInfo(
        valid=True,
        masked=f"{iban[:4]}****{iban[-4:]}",
        country=parsed.country_code,
        bank_code=parsed.bank_code or None,
        bank_name=iban_module._bank_details(parsed)[0],
        bic=iban_module._bank_details(parsed)[1],
    )


@pytest.mark.parametrize("country", sorted(registry.get_countries()))
def test_enrichment_cut_from_the_iban_equals_schwifty(country: str) -> None:
    rng = random.Random(country)
    ibans = [str(IBAN.random(country, random=rng)) for _ in range(3)]
    for iban in ibans:
        iban_module._BANKS.clear()
        assert enrich_iban(iban) == _fresh(iban)
        assert enrich_iban(iban) == _fresh(iban)  # from the caches


@given(
    st.one_of(
        st.text(max_size=40),
        st.from_regex(r"(IBAN|IB)?[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", fullmatch=True),
    )
)
def test_normalize_fast_path_equals_the_full_rules(raw: str) -> None:
    full = iban_module._PREFIX.sub("", iban_module._GROUPING.sub("", raw).upper())
    assert normalize_iban(raw) == full
