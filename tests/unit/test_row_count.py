"""``count_rows`` counts a file's rows from its bytes: wherever it answers, it answers what the
reader reading every row answers (row count, records, the record and the line offset of each
range's first row), and it never answers for a file the reader would refuse."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debtgraph.domain.debtors import csv_reader, ingestion
from debtgraph.domain.debtors.csv_reader import (
    MAX_COLUMNS,
    CsvFormatError,
    RowCount,
    count_rows,
    open_csv,
)
from debtgraph.domain.debtors.ranges import LineIndex

HEADER = "first_name;last_name;iban;amount;city;note"
ROW = "Ana{0};Ruiz;ES9121000418450200051332;{0},50;Madrid;n{0}"


@contextmanager
def _field_limit(limit: int | None) -> Iterator[None]:
    previous = csv.field_size_limit()
    if limit is not None:
        csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _reference(content: bytes, first: int, every: int) -> tuple[int, int, list[int]] | None:
    """(rows, records, record of each marked row: the ``first``-th, ``first + every``-th, …
    data row) as the reader finds them reading every row; None when it refuses the file."""
    try:
        reader = open_csv(io.BytesIO(content))
        marked = []
        total = 0
        for row in reader:
            total += 1
            if total >= first and (total - first) % every == 0:
                marked.append(reader.record_index)
                # A row's number is its record's: blank records are counted.
                assert row.row_number == reader.record_index + 1
    except CsvFormatError:
        return None
    return total, reader.records_read, marked


def _offsets(content: bytes, records: int, marked: list[int]) -> tuple[bool, list[int]]:
    """Whether the ``records`` records are the lines, and where the marked ones start, as
    ``LineIndex`` finds them."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.csv"
        path.write_bytes(content)
        index = LineIndex.of_file(path, block=7)
        return index.one_record_per_line(records), index.offsets(path, marked)


def _count(content: bytes, first: int, every: int, block_size: int) -> RowCount | None:
    layout = open_csv(io.BytesIO(content)).layout
    return count_rows(io.BytesIO(content), layout, first=first, every=every, block_size=block_size)


def _check_against_reader(content: bytes, first: int, every: int, block_size: int) -> bool:
    """Assert ``count_rows`` agrees with the reader; True when it answered."""
    expected = _reference(content, first, every)
    if expected is None:
        try:
            counted = _count(content, first, every, block_size)
        except CsvFormatError:
            return False  # refused while opening, before any counting
        assert counted is None, "counted a file the reader refuses"
        return False
    counted = _count(content, first, every, block_size)
    if counted is None:
        return False
    rows, records, marked = expected
    skimmed = open_csv(io.BytesIO(content))
    assert skimmed.skim(first, every) == (rows, marked)
    assert skimmed.records_read == records
    assert counted.rows == rows
    assert counted.records == records
    assert [record for record, _ in counted.marks] == marked
    per_line, offsets = _offsets(content, records, marked)
    assert per_line
    assert [offset for _, offset in counted.marks] == offsets
    return True


# Cells of every kind that matters: plain, spaces of all sorts, non-ASCII letters; in some
# files a quote, a lone CR or a NUL byte too.
_PLAIN_CELL = st.one_of(
    st.sampled_from(["Ana", "12,50", "", " ", "\t", "\xa0", "ñ", "Ç", "  x "]),
    st.sampled_from(["\u3000", "\u2028", "\x85", "\x1c", "\x0b", "\x0c", "\x1b"]),
    st.text(alphabet="ab ;,\t\xa0é", max_size=4),
)
_ODD_CELL = st.one_of(_PLAIN_CELL, st.sampled_from(['"', 'a"b', "\r", "\x00"]))


@st.composite
def _files(draw: st.DrawFn) -> bytes:
    delimiter = draw(st.sampled_from([";", ",", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = delimiter.join(["first_name", "last_name", "iban", "amount"])
    lines = [header]
    cell = _ODD_CELL if draw(st.integers(0, 3)) == 0 else _PLAIN_CELL
    for _ in range(draw(st.integers(1, 40))):
        if draw(st.integers(0, 5)) == 0:
            # A blank or nearly blank line: spaces and delimiters, maybe one letter.
            lines.append(draw(st.text(alphabet=f" \t\xa0\u3000{delimiter}ñx", max_size=6)))
        else:
            cells = draw(st.lists(cell, min_size=1, max_size=6))
            lines.append(delimiter.join(cells))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    encoding = draw(st.sampled_from(["utf-8", "cp1252"]))
    content = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        content = b"\xef\xbb\xbf" + content
    return content


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=_files(),
    first=st.integers(1, 6),
    every=st.integers(1, 4),
    block_size=st.sampled_from([1, 2, 3, 5, 8, 64, 65536]),
    limit=st.sampled_from([None, 5, 12]),
)
def test_counting_from_bytes_agrees_with_the_reader(
    content: bytes, first: int, every: int, block_size: int, limit: int | None
) -> None:
    with _field_limit(limit):
        _check_against_reader(content, first, every, block_size)


def _lines(*extra: str, rows: int = 50) -> list[str]:
    return [HEADER, *(ROW.format(i) for i in range(rows)), *extra]


@pytest.mark.parametrize("block_size", [1, 4, 100, 65536])
@pytest.mark.parametrize(
    ("newline", "bom", "final", "encoding"),
    [
        ("\n", False, True, "utf-8"),
        ("\r\n", True, True, "utf-8"),
        ("\r\n", False, False, "utf-8"),
        ("\n", True, False, "cp1252"),
    ],
)
def test_a_plain_file_is_counted_from_its_bytes(
    newline: str, bom: bool, final: bool, encoding: str, block_size: int
) -> None:
    lines = _lines()
    # Blank records of every kind between the rows, and lines that only look blank.
    lines[3:3] = ["", " ; ;", "\xa0;\t", ";;;;;"]
    lines[20:20] = ["ñ;Ç", "\xa0x;", " ;é"]
    if encoding == "utf-8":
        lines[30:30] = ["\u3000;\u2028", "\u00e9\u3000"]
    text = newline.join(lines) + (newline if final else "")
    content = (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)
    assert _check_against_reader(content, first=7, every=6, block_size=block_size)


@pytest.mark.parametrize(
    "odd",
    [
        'Ana;"quoted";x;1',  # a quote
        "Ana;Ruiz\r;x;1",  # a lone CR
        "Ana;Ru\x00iz;x;1",  # a NUL byte
        "Ana" + ";" * MAX_COLUMNS,  # too many columns (trailing blank cells: still not plain)
        "Ana;" + "x" * 200_000,  # a field over the size limit
    ],
)
def test_a_file_not_plain_to_its_end_is_left_to_the_reader(odd: str) -> None:
    # The odd line comes late, past the first blocks.
    content = ("\n".join([*_lines(rows=2000), odd, ROW.format(1)]) + "\n").encode()
    assert _count(content, first=2, every=100, block_size=4096) is None
    _check_against_reader(content, first=2, every=100, block_size=4096)


def test_a_file_of_many_blank_looking_lines_is_left_to_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judged one at a time, such lines cost more than the reader's records: past a budget
    the file is the reader's, which then counts it alone (a hostile file's lines are not
    judged twice, in full, by both)."""
    monkeypatch.setattr(csv_reader, "MAX_JUDGED_LINES", 20)
    few = _lines(*(["", " ;", "\xa0"] * 6), ROW.format(7))
    many = _lines(*(["", " ;", "\xa0"] * 7), ROW.format(7))
    assert _count(("\n".join(few) + "\n").encode(), first=2, every=10, block_size=64)
    content = ("\n".join(many) + "\n").encode()
    assert _count(content, first=2, every=10, block_size=64) is None
    fast = _inspect(content, tmp_path / "fast.csv", range_rows=10)
    with _reader_only(monkeypatch):
        slow = _inspect(content, tmp_path / "slow.csv", range_rows=10)
    assert fast == slow


def test_a_file_ending_in_a_lone_cr_is_left_to_the_reader() -> None:
    content = ("\r\n".join(_lines()) + "\r").encode()
    assert _count(content, first=2, every=10, block_size=64) is None


@contextmanager
def _reader_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setattr(ingestion, "count_rows", lambda *_, **__: None)
        yield


def _inspect(content: bytes, path: Path, range_rows: int) -> ingestion.FileSummary:
    return ingestion.store_and_inspect(
        io.BytesIO(content),
        path,
        max_bytes=10**8,
        max_mb=100,
        sync_limit=5,
        range_rows=range_rows,
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: "\n".join(_lines(rows=300)),
        lambda: "\r\n".join(_lines(" ; ;", "", rows=301)) + "\r\n",
        lambda: "\ufeff" + "\n".join(_lines(rows=10)),
        lambda: "\n".join(_lines(rows=8)),  # one range only
    ],
)
def test_inspecting_gives_the_same_summary_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[], str]
) -> None:
    content = make().encode()
    fast = _inspect(content, tmp_path / "fast.csv", range_rows=40)
    with _reader_only(monkeypatch):
        slow = _inspect(content, tmp_path / "slow.csv", range_rows=40)
    assert fast == slow
    assert fast.total_rows > 5


def test_a_late_row_over_the_limits_still_refuses_the_upload(tmp_path: Path) -> None:
    content = ("\n".join(_lines("Ana" + ";x" * MAX_COLUMNS, rows=3000)) + "\n").encode()
    path = tmp_path / "f.csv"
    with pytest.raises(CsvFormatError) as refused:
        _inspect(content, path, range_rows=40)
    assert refused.value.code == "too_many_columns"
    assert "Row 3002 " in refused.value.message
    assert not path.exists()


@pytest.mark.parametrize(
    "odd",
    [
        "Ana;" + "x" * 200_000,  # a field over the parser's size limit
        'Ana;"open quote;x;1',  # a quote left open: the record runs past the limit
        'Ana;"a ""quoted"" cell";x;1',  # quoted, not wrong
    ],
)
def test_the_reader_counting_the_rest_refuses_as_reading_every_row_does(
    tmp_path: Path, odd: str
) -> None:
    rows = [ROW.format(i) for i in range(3000)]
    rows[2500] = odd
    content = ("\n".join([HEADER, *rows]) + "\n" + "x;y\n" * 300_000).encode()
    try:
        whole = sum(1 for _ in open_csv(io.BytesIO(content)))
    except CsvFormatError as error:
        expected: CsvFormatError | None = error
    else:
        expected = None
    path = tmp_path / "f.csv"
    if expected is None:
        assert _inspect(content, path, range_rows=40).total_rows == whole
        return
    with pytest.raises(CsvFormatError) as refused:
        _inspect(content, path, range_rows=40)
    assert (refused.value.code, refused.value.message) == (expected.code, expected.message)
    assert not path.exists()
