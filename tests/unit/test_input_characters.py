"""The one input reader both faces use refuses U+0000 (PostgreSQL cannot store it), whichever face
built the payload: a field error ``invalid_character`` at the field's path."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from debtgraph.domain.core.errors import (
    INVALID_CHARACTER,
    NUL_MESSAGE,
    DomainValidationError,
    FieldError,
    PayloadReader,
)
from debtgraph.domain.receivables.parsing import validate_receivable


def _payload(**invoice: Any) -> dict[str, Any]:
    return {
        "user_id": "usr_1",
        "invoice": {
            "numbers": ["INV-1"],
            "issue_date": "2026-09-01",
            "due_date": "2026-10-01",
            "service_description": "Consulting",
            "amount": "1200.00",
            "amount_before_tax": "1000",
            "tax_amount": "200",
            **invoice,
        },
        "debtor": {"company_name": "Engie", "contacts": [{"email": "a@engie.test"}]},
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"invoice": {"service_description": "Consulting\x00"}}, "invoice.service_description"),
        ({"invoice": {"numbers": ["INV\x001"]}}, "invoice.numbers[0]"),
        ({"debtor": {"company_name": "\x00", "contacts": []}}, "debtor.company_name"),
        ({"metadata": {"order": "4\x002"}}, "metadata.order"),
        ({"metadata": {"a": {"b": ["ok", "\x00"]}}}, "metadata.a.b[1]"),
        ({"metadata": {"k\x00": "v"}}, "metadata"),
    ],
)
def test_nul_is_refused_where_it_is(change: dict[str, Any], field: str) -> None:
    payload = _payload()
    for key, value in change.items():
        if key == "invoice":
            payload["invoice"].update(value)
        else:
            payload[key] = value
    with pytest.raises(DomainValidationError) as caught:
        validate_receivable(payload, date(2026, 11, 1))
    assert FieldError(field, INVALID_CHARACTER, NUL_MESSAGE) in caught.value.errors


def test_the_reader_refuses_nul_in_any_string() -> None:
    reader = PayloadReader()
    assert reader.string("a\x00", "name") is None
    assert reader.string("fine", "other") == "fine"
    assert reader.errors == [FieldError("name", INVALID_CHARACTER, NUL_MESSAGE)]
