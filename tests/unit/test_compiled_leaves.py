"""The compiled readers' shortcut for DateTime leaves (schema/compiled.py): orjson's text of an
aware UTC datetime is Strawberry's isoformat of it, for every datetime a column can hold."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st
from strawberry.schema.types.base_scalars import isoformat


@given(st.datetimes(timezones=st.just(UTC)))
def test_orjson_writes_an_aware_utc_datetime_as_isoformat(value: datetime) -> None:
    assert value.tzinfo is UTC
    assert orjson.dumps(value)[1:-1].decode() == isoformat(value)


def test_the_edges_of_the_range_and_of_a_second() -> None:
    for value in (
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC),
        datetime(2026, 12, 2, 1, 2, 3, 10, tzinfo=UTC),
    ):
        assert orjson.dumps(value)[1:-1].decode() == isoformat(value)
