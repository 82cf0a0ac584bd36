"""Ranges cut at inspect time: each range read from its byte offset gives exactly the rows the
whole-file reader gives there, whatever the line endings, BOM, blank lines or quoting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors.csv_reader import open_csv
from debtgraph.domain.debtors.ranges import LineIndex

HEADER = "first_name;last_name;iban;amount;city;note"


def _rows(count: int, *, quoted_every: int = 0, blank_every: int = 0) -> list[str]:
    lines = []
    for i in range(count):
        note = f'"said ""hi"" {i}; ok"' if quoted_every and i % quoted_every == 0 else f"n{i}"
        lines.append(f"Ana{i};Ruiz;ES9121000418450200051332;{i},50;Madrid;{note}")
        if blank_every and i % blank_every == 0:
            lines.append(" ; ;")  # blank: skipped, but counted in the row numbers
    return lines


def _inspect(path: Path, content: bytes, range_rows: int) -> ingestion.FileSummary:
    return ingestion.store_and_inspect(
        io.BytesIO(content),
        path,
        max_bytes=10**8,
        max_mb=100,
        sync_limit=5,
        range_rows=range_rows,
    )


def _whole(path: Path) -> list[tuple[int, dict[str, str]]]:
    with path.open("rb") as handle:
        return [(row.row_number, row.data) for row in open_csv(handle)]


def _by_ranges(path: Path, summary: ingestion.FileSummary) -> list[tuple[int, dict[str, str]]]:
    rows: list[tuple[int, dict[str, str]]] = []
    for span in summary.ranges:
        handle, read = ingestion.read_range(
            str(path), span.byte_offset, span.first_row, span.first_row - 1, span.last_row
        )
        try:
            rows.extend((row.row_number, row.data) for row in read)
        finally:
            handle.close()
    return rows


# Unquoted, the file is counted from its bytes (``count_rows``); quoted, by the reader.
@pytest.mark.parametrize("quoted_every", [7, 0])
@pytest.mark.parametrize(
    ("newline", "bom", "final_newline", "encoding"),
    [
        ("\n", False, True, "utf-8"),
        ("\r\n", True, True, "utf-8"),
        ("\r\n", False, False, "utf-8"),
        ("\n", False, False, "cp1252"),
    ],
)
def test_ranges_read_from_their_offsets_give_the_whole_files_rows(
    tmp_path: Path, newline: str, bom: bool, final_newline: bool, encoding: str, quoted_every: int
) -> None:
    lines = [HEADER, *_rows(203, quoted_every=quoted_every, blank_every=11)]
    lines[5] = lines[5].replace("Ana", "Añá")  # non-ASCII before a cut, in either encoding
    text = newline.join(lines) + (newline if final_newline else "")
    content = (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)
    path = tmp_path / "f.csv"
    summary = _inspect(path, content, range_rows=40)
    assert summary.total_rows == 203
    whole = _whole(path)
    # Row numbers as in the file: each blank line after row 2 + 12 k is counted.
    numbers = [n for n, _ in whole]
    assert numbers == [n for n in range(2, len(lines) + 1) if lines[n - 1] != " ; ;"]
    assert len(numbers) == 203
    # Ranges of 40 data rows, each to just before the next; the last to the last record.
    starts = numbers[40::40]
    assert [(s.first_row, s.last_row) for s in summary.ranges] == list(
        zip([2, *starts], [n - 1 for n in starts] + [len(lines)], strict=True)
    )
    assert summary.ranges[0].byte_offset is None
    assert all(s.byte_offset for s in summary.ranges[1:])
    assert _by_ranges(path, summary) == whole


def test_a_quoted_line_break_makes_the_file_one_range(tmp_path: Path) -> None:
    lines = [HEADER, *_rows(120)]
    lines[60] = lines[60].replace("n59", '"two\nlines"')
    path = tmp_path / "f.csv"
    summary = _inspect(path, ("\n".join(lines) + "\n").encode(), range_rows=40)
    assert summary.total_rows == 120
    assert [(s.first_row, s.last_row, s.byte_offset) for s in summary.ranges] == [(2, 121, None)]
    assert _by_ranges(path, summary) == _whole(path)


def test_lone_carriage_returns_make_the_file_one_range(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    summary = _inspect(path, "\r".join([HEADER, *_rows(90)]).encode(), range_rows=40)
    assert summary.total_rows == 90
    assert len(summary.ranges) == 1
    assert _by_ranges(path, summary) == _whole(path)


def test_resuming_inside_a_range_starts_after_the_stored_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    summary = _inspect(path, ("\n".join([HEADER, *_rows(100)])).encode(), range_rows=30)
    span = summary.ranges[1]
    handle, rows = ingestion.read_range(str(path), span.byte_offset, span.first_row, 40, 61)
    with handle:
        assert [row.row_number for row in rows] == list(range(41, 62))


def test_line_index_counts_a_crlf_cut_by_a_block_boundary() -> None:
    index = LineIndex()
    for block in (b"a,b\r", b"\nc,d\r", b"\ne,f"):
        index.feed(block)
    assert index.lines() == 3
    assert index.one_record_per_line(3)
    assert not index.one_record_per_line(2)
    lone = LineIndex()
    lone.feed(b"a,b\rc,d\n")
    assert not lone.one_record_per_line(2)


def test_a_crlf_cut_by_the_readers_buffer_is_one_line_break(tmp_path: Path) -> None:
    # Rows of one length L and a header padded 0..L-1 characters: for one of the paddings the
    # reader's first 64 KiB read ends between a CR and its LF.
    row = "Ana;Ruiz;ES9121000418450200051332;10,50;Madrid;n{:05d}\r\n"
    width = len(row.format(0))
    for pad in range(width):
        header = "first_name;last_name;iban;amount;city;note" + " " * pad
        text = header + "\r\n" + "".join(row.format(i) for i in range(1200))
        path = tmp_path / f"f{pad}.csv"
        summary = _inspect(path, text.encode(), range_rows=400)
        assert [(s.first_row, s.last_row) for s in summary.ranges] == [
            (2, 401),
            (402, 801),
            (802, 1201),
        ]
        assert len([s for s in summary.ranges if s.byte_offset]) == 2
        assert _by_ranges(path, summary) == _whole(path)
