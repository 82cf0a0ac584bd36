"""JSON columns decode as the API parsed the request bodies they came from (core.json_loads)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from debtgraph.domain.core.database import _int_or_float, json_loads


def _standard(text: str) -> Any:
    return json.loads(text, parse_int=_int_or_float)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18446744073709551615", 2**64 - 1),
        ("18446744073709551616", float(2**64)),
        ("-9223372036854775808", -(2**63)),
        ("-9223372036854775809", float(-(2**63) - 1)),
        ("9007199254740993", 2**53 + 1),  # an integer, not the float it would round to
        ("100000000000000000000000", 1e23),  # JSONB's rendering of the float 1e+23
        ("123456789012345678901234567890", 1.2345678901234568e29),
        ("-0", 0),
        ("-0.0", -0.0),
        ("4.9e-324", 5e-324),
        ("1e-400", 0.0),
        ('{"a": 1, "a": 2}', {"a": 2}),
        ('["\\ud83d\\ude00", "\\u0000"]', ["\N{GRINNING FACE}", "\x00"]),
    ],
)
def test_the_fast_path_answers_the_big_integer_rule(text: str, expected: Any) -> None:
    value = json_loads(text)
    assert value == expected
    assert type(value) is type(expected)
    assert value == _standard(text)
    assert type(value) is type(_standard(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("1e400", math.inf),
        ('"\\ud800"', "\ud800"),
        ('{"k": "\\udc00x"}', {"k": "\udc00x"}),
    ],
)
def test_what_orjson_refuses_the_standard_parser_answers(text: str, expected: Any) -> None:
    assert json_loads(text) == expected


def test_nan_and_numbers_beyond_a_float_read_as_before() -> None:
    assert math.isnan(json_loads("[NaN]")[0])
    with pytest.raises(OverflowError):
        json_loads("1" + "0" * 400)
    with pytest.raises(json.JSONDecodeError):
        json_loads("{")
