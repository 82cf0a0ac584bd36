"""The batched VOP grading gives exactly what grading check by check gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from debtgraph.domain.payments import vop
from debtgraph.domain.payments.models import VopLog
from debtgraph.domain.payments.verification import LOG_COLUMNS
from debtgraph.domain.payments.vop import (
    VopAnswer,
    close_variant,
    evaluate,
    evaluate_many,
    normalize_name,
    unrelated_name,
)

_NAMES = st.sampled_from(
    [
        "Maria Rodriguez",
        "María Rodríguez",
        "J. Mueller",
        "Johann Mueller",
        "Jürgen Groß",
        "O'Brien, Seán",
        "de Vries Daan",
        "Françoise Lefèvre",
        "",
        "  ",
        "A",
    ]
)
_TEXT_NAMES = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "Zs", "Pd", "Po"]), max_size=24
)
_EXPECTED = st.one_of(_NAMES, _TEXT_NAMES)


@st.composite
def _facts(draw: st.DrawFn) -> tuple[str, bool, bool, bool, VopAnswer | None]:
    expected = draw(_EXPECTED)
    holder = draw(
        st.one_of(
            st.just(expected),
            st.just(close_variant(expected)),
            st.just(unrelated_name(expected)),
            st.none(),
            _EXPECTED,
        )
    )
    status = draw(st.sampled_from(["open", "open", "closed", "unknown_bank"]))
    answer = draw(st.one_of(st.none(), st.just(VopAnswer(status, holder))))
    return expected, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()), answer


@settings(max_examples=300, deadline=None)
@given(st.lists(_facts(), max_size=40).flatmap(lambda f: st.permutations(f + f[:5])))
def test_evaluate_many_equals_evaluate_one_by_one(
    facts: list[tuple[str, bool, bool, bool, VopAnswer | None]],
) -> None:
    # Repeated facts (f + f[:5], shuffled) exercise the memoised pairs and shared verdicts.
    one_by_one = [
        evaluate(
            name,
            iban_valid=valid,
            bank_identified=bank,
            country_is_consistent=consistent,
            answer=answer,
        )
        for name, valid, bank, consistent, answer in facts
    ]
    assert evaluate_many(facts) == one_by_one


@given(_EXPECTED)
def test_memoised_name_words_equal_fresh_ones(name: str) -> None:
    fresh = vop._tokens.__wrapped__(name)
    assert vop._tokens(name) == fresh
    assert vop._tokens(name) == fresh  # the cached answer
    assert normalize_name(name) == " ".join(sorted(fresh))


def test_log_columns_are_the_table_columns_but_the_id() -> None:
    table = [column.key for column in VopLog.__table__.columns if column.key != "id"]
    assert sorted(LOG_COLUMNS) == sorted(table)
    assert len(set(LOG_COLUMNS)) == len(LOG_COLUMNS)
    assert LOG_COLUMNS[0] == "debtor_id"  # RecordChecks swaps the row number there for the id
