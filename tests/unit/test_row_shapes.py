"""The node types' row shapes (schema.base.RowShape): the one rule that builds a node from a
row of named columns, generated as code. These pin that the generated constructors build what
the dataclass's own constructor builds, by name and by position alike."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData

import debtgraph.schema.build  # noqa: F401 - the lazily named types resolved
from debtgraph.domain.debtors.models import upload_success_rate
from debtgraph.domain.payments import vop
from debtgraph.domain.payments.models import attempt_can_retry, attempt_is_final
from debtgraph.resolvers.loaders import Page
from debtgraph.schema import base
from debtgraph.schema.base import Connection, RowShape, shape_of, to_connection
from debtgraph.schema.billing import BillingAttempt
from debtgraph.schema.debtors import Debtor
from debtgraph.schema.uploads import Upload
from debtgraph.schema.vop_logs import VopLog

NOW = datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC)

COLUMNS: dict[type, dict[str, Any]] = {
    Debtor: {
        "id": 7,
        "upload_id": 3,
        "row_number": 2,
        "iban_masked": "ES91****1332",
        "iban_valid": True,
        "bank_name": "CAIXABANK",
        "bank_code": "2100",
        "bic": "CAIXESBBXXX",
        "first_name": " Maria\t",
        "last_name": "Rodriguez",
        "email": None,
        "phone": "+34600000000",
        "national_id": None,
        "birth_date": date(1980, 1, 2),
        "street": "Calle Mayor",
        "street_number": "7",
        "floor": None,
        "door": "B",
        "apartment": None,
        "postcode": "28001",
        "city": "Madrid",
        "province": None,
        "country": "ES",
        "amount": Decimal("10.50"),
        "currency": "EUR",
        "sepa_type": "CORE",
        "status": "pending",
        "risk_class": None,
        "name_matched": None,
        "external_reference": "ref-1",
        "validation_status": "valid",
        "validation_errors": [],
        "blacklisted": False,
        "validated_at": None,
        "raw_data": {"iban": "ES9121000418450200051332"},
        "created_at": NOW,
        "updated_at": NOW,
    },
    VopLog: {
        "id": 11,
        "debtor_id": 7,
        "upload_id": 3,
        "iban_masked": "ES91****1332",
        "iban_valid": True,
        "bank_identified": True,
        "bank_name": "CAIXABANK",
        "bic": "CAIXESBBXXX",
        "country": "ES",
        "vop_score": 82,
        "score_label": "high",
        "result": "verified",
        "epc_code": "MTCH",
        "provider_name": None,
        "name_ratio": 97,
        "created_at": NOW,
    },
    BillingAttempt: {
        "id": 5,
        "debtor_id": 7,
        "upload_id": 3,
        "transaction_id": "tx-5",
        "unique_id": None,
        "amount": Decimal("10.50"),
        "currency": "EUR",
        "status": "declined",
        "attempt_number": 1,
        "mid_reference": None,
        "error_code": "AM04",
        "error_message": "Insufficient funds",
        "channel": "gateway",
        "next_retry_at": NOW,
        "processed_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    },
    Upload: {
        "id": 3,
        "filename": "u.csv",
        "original_filename": "u.csv",
        "file_size": 120,
        "mime_type": "text/csv",
        "status": "completed",
        "total_records": 3,
        "processed_records": 2,
        "failed_records": 1,
        "error_message": None,
        "processing_started_at": NOW,
        "processing_completed_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    },
}


def _rows(columns: dict[str, Any], order: list[str]) -> list[Any]:
    """Core rows of these columns in this order, as a result hands them out."""
    values = tuple(columns[name] for name in order)
    return IteratorResult(SimpleResultMetaData(order), iter([values])).all()


@pytest.mark.parametrize("node", list(COLUMNS), ids=lambda node: node.__name__)
def test_a_shape_builds_what_the_constructor_builds(node: type) -> None:
    shape = shape_of(node)
    built = shape.from_mapping(COLUMNS[node])
    given = {f.name: getattr(built, f.name) for f in dataclasses.fields(node) if f.init}
    assert vars(built) == vars(node(**given))
    assert type(built) is node
    # A Relay node's ids, from its row id unless the shape says otherwise.
    assert (built.id, built.database_id) == (str(COLUMNS[node]["id"]), COLUMNS[node]["id"])


@pytest.mark.parametrize("node", list(COLUMNS), ids=lambda node: node.__name__)
def test_by_position_is_by_name_whatever_the_column_order(node: type) -> None:
    shape = shape_of(node)
    columns = COLUMNS[node]
    for order in (list(columns), list(reversed(columns))):
        (by_position,) = shape.build_all(_rows(columns, order))
        assert vars(by_position) == vars(shape.from_mapping(columns))


def test_rows_of_another_result_are_read_by_their_own_columns() -> None:
    shape = shape_of(VopLog)
    columns = COLUMNS[VopLog]
    first = shape.build_all(_rows(columns, list(columns)))
    swapped = {**columns, "debtor_id": columns["upload_id"], "upload_id": columns["debtor_id"]}
    # The same names in another order, from another result: not the last result's positions.
    order = list(columns)
    i, j = order.index("debtor_id"), order.index("upload_id")
    order[i], order[j] = order[j], order[i]
    second = shape.build_all(_rows(swapped, order))
    assert (first[0].debtor_id, first[0].upload_id) == (7, 3)
    assert (second[0].debtor_id, second[0].upload_id) == (3, 7)


def test_the_derived_fields_follow_their_rules() -> None:
    debtor = shape_of(Debtor).from_mapping(COLUMNS[Debtor])
    assert debtor.full_name == "Maria Rodriguez"
    assert debtor.full_address == "Calle Mayor 7 B\n28001, Madrid, ES"
    assert debtor.primary_phone == "+34600000000"
    assert debtor.validation_errors is None  # an empty list shows as null
    assert debtor.risk_class is None
    assert debtor.id == "7"
    assert debtor.database_id == 7
    attempt = shape_of(BillingAttempt).from_mapping(COLUMNS[BillingAttempt])
    assert (attempt.is_approved, attempt.status.value) == (False, "declined")
    assert attempt.is_final is attempt_is_final("declined", "AM04", 1)
    assert attempt.can_retry is attempt_can_retry("declined", "AM04", 1, NOW)
    assert attempt.is_final is not attempt.can_retry  # a retryable first decline
    log = shape_of(VopLog).from_mapping(COLUMNS[VopLog])
    assert (log.is_positive, log.is_negative) == (vop.is_positive(82), vop.is_negative(82))
    assert (log.score_label.value, log.result.value) == ("high", "verified")
    upload = shape_of(Upload).from_mapping(COLUMNS[Upload])
    assert upload.success_rate == float(upload_success_rate(2, 3))
    assert upload.progress == 100.0
    assert upload.is_complete is True


def test_an_unknown_enumeration_value_fails_as_the_enumeration_does() -> None:
    columns = {**COLUMNS[VopLog], "result": "no-such-result"}
    with pytest.raises(ValueError, match="no-such-result"):
        shape_of(VopLog).from_mapping(columns)


def test_a_row_lacking_a_column_is_refused() -> None:
    columns = dict(COLUMNS[Upload])
    del columns["mime_type"]
    with pytest.raises(KeyError, match="mime_type"):
        shape_of(Upload).build_all(_rows(columns, list(columns)))


def test_a_shape_names_fields_of_its_type_only_the_others_their_own_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "_SHAPES", dict(base._SHAPES))  # Thing's shape is the test's

    @strawberry.type
    class Thing:
        a: int
        b: str

    with pytest.raises(TypeError, match="'c'"):
        RowShape(Thing, {"a": "a", "c": "c"})
    shape = RowShape(Thing, {"a": (len, "text")})
    assert shape.columns == ("text", "b")
    assert vars(shape.from_mapping({"text": "four", "b": "bee"})) == {"a": 4, "b": "bee"}


def test_a_connection_is_what_its_constructor_builds() -> None:
    page = Page(items=[1, 2], has_next=True, total=5)
    built = to_connection(page, str)
    given = {f.name: getattr(built, f.name) for f in dataclasses.fields(Connection)}
    assert vars(built) == vars(Connection(**given))
    assert type(built) is Connection
    assert (built.nodes, built.total_count, built.page_info.has_next_page) == (["1", "2"], 5, True)


def test_rows_of_several_results_are_each_read_by_their_own_columns() -> None:
    shape = shape_of(VopLog)
    columns = COLUMNS[VopLog]
    order = list(columns)
    i, j = order.index("debtor_id"), order.index("upload_id")
    swapped_order = list(order)
    swapped_order[i], swapped_order[j] = order[j], order[i]
    mixed = _rows(columns, order) + _rows(columns, swapped_order) + _rows(columns, order)
    assert [(n.debtor_id, n.upload_id) for n in shape.build_each(mixed)] == [(7, 3)] * 3


def test_an_unnamed_column_does_not_shift_the_others() -> None:
    shape = shape_of(Upload)
    columns = COLUMNS[Upload]
    names = list(columns)
    values = tuple(columns[name] for name in names)
    rows = IteratorResult(SimpleResultMetaData([None, *names]), iter([("?", *values)])).all()
    (built,) = shape.build_all(rows)
    assert vars(built) == vars(shape.from_mapping(columns))


def test_many_layouts_keep_being_read() -> None:
    shape = shape_of(Upload)
    columns = COLUMNS[Upload]
    names = list(columns)
    for shift in range(len(names)):
        order = names[shift:] + names[:shift]
        (built,) = shape.build_all(_rows(columns, order))
        assert built.mime_type == "text/csv"
    assert len(shape._by_position) <= 16
