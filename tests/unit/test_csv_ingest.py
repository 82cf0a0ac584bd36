"""Streaming CSV reading of debtor uploads."""

from __future__ import annotations

import csv
import io
import random
import tracemalloc

import pytest

from debtgraph.domain.debtors import csv_reader as csv_ingest
from debtgraph.domain.debtors.csv_reader import (
    BINARY_CONTENT,
    EMPTY_FILE,
    MAX_COLUMNS,
    NO_DATA_ROWS,
    NO_HEADER,
    SAMPLE_SIZE,
    CsvFormatError,
    ParsedRow,
    normalize_header,
    open_csv,
)


def _open(content: str | bytes, encoding: str = "utf-8"):
    raw = content.encode(encoding) if isinstance(content, str) else content
    return open_csv(io.BytesIO(raw))


class BoundedReads(io.RawIOBase):
    """A stream that fails the test if anyone reads too much at once or everything at once."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self.limit = limit
        self.largest = 0
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None
        assert 0 < size <= self.limit, f"read({size}) exceeds the bound"
        self.calls += 1
        self.largest = max(self.largest, size)
        return self._data.read(size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_utf8_with_bom_comma_and_normalised_headers() -> None:
    reader = _open("\ufeff First Name ,Last-Name,IBAN\nMaría,Núñez,ES05\n")
    assert reader.encoding == "utf-8"
    assert reader.delimiter == ","
    assert reader.headers == ["first_name", "last_name", "iban"]
    assert list(reader) == [
        ParsedRow(2, {"first_name": "María", "last_name": "Núñez", "iban": "ES05"})
    ]


def test_cp1252_text_is_decoded() -> None:
    reader = _open("name;city\nMüller;Köln\nPeña;A Coruña\n", encoding="cp1252")
    assert reader.encoding == "cp1252"
    assert reader.delimiter == ";"
    assert [row.data for row in reader] == [
        {"name": "Müller", "city": "Köln"},
        {"name": "Peña", "city": "A Coruña"},
    ]


def test_semicolon_with_decimal_commas_is_sniffed() -> None:
    reader = _open("name;amount;city\nAna;150,00;Madrid\nLuis;1 234,56;Sevilla\n")
    assert reader.delimiter == ";"
    assert [row.data["amount"] for row in reader] == ["150,00", "1 234,56"]


def test_tab_delimiter() -> None:
    reader = _open("name\tiban\tcity\nAna\tES05, x\tMadrid\n")
    assert reader.delimiter == "\t"
    assert next(reader).data == {"name": "Ana", "iban": "ES05, x", "city": "Madrid"}


def test_quoted_delimiters_do_not_fool_the_sniffer() -> None:
    reader = _open('name,address,city\n"Ruiz; Ana","Calle A; 1",Madrid\n')
    assert reader.delimiter == ","
    assert next(reader).data["address"] == "Calle A; 1"


def test_single_column_file_defaults_to_comma() -> None:
    reader = _open("iban\nES05\n")
    assert reader.delimiter == ","
    assert reader.headers == ["iban"]


def test_quoted_newlines_count_records_not_lines() -> None:
    content = 'name,address\r\n"Ana","Calle 1\r\n2º B"\r\n"Luis","Calle\n3"\r\nEva,Plaza 4\r\n'
    rows = list(_open(content))
    assert [row.row_number for row in rows] == [2, 3, 4]
    assert rows[0].data["address"] == "Calle 1\r\n2º B"
    assert rows[1].data["address"] == "Calle\n3"


def test_blank_lines_are_skipped_but_counted() -> None:
    # PRODUCT.md §6: row numbers as in the file. Lines 3-5 are blank: no row, but numbered.
    reader = _open("name,city\nAna,Madrid\n\n,\n  ,  \nLuis,Bilbao\n")
    rows = list(reader)
    assert [(row.row_number, row.data["name"]) for row in rows] == [(2, "Ana"), (6, "Luis")]
    assert (reader.records_read, reader.rows_read) == (6, 2)


def test_a_quoted_line_break_after_a_blank_line_still_counts_records() -> None:
    rows = list(_open('name,address\n\nAna,"Calle 1\n2º B"\n \nLuis,Plaza 4\n'))
    assert [row.row_number for row in rows] == [3, 5]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n\n , \n1,2" + ",x" * MAX_COLUMNS + "\n", "Row 5 has more than 200"),
        ('a,b\n\n1,2\n\n"x' + "y" * csv_ingest.MAX_RECORD_CHARS, "Row 5 is longer than"),
    ],
)
def test_refusals_name_the_row_as_in_the_file_after_blank_lines(content: str, message: str) -> None:
    assert _refusal(content).message.startswith(message)
    skimmed = _open(content)
    with pytest.raises(CsvFormatError) as refused:
        skimmed.skim(2, 1)
    assert refused.value.message.startswith(message)


def test_resuming_after_a_blank_line_keeps_the_files_numbers() -> None:
    content = b"name,city\nAna,Madrid\n\nEva,Toledo\n ,\n\nLuis,Bilbao\n"
    layout = _open(content).layout
    stream = io.BytesIO(content)
    stream.seek(content.index(b"Eva"))
    rows = list(csv_ingest.open_csv_at(stream, layout, 4))
    assert [(row.row_number, row.data["name"]) for row in rows] == [(4, "Eva"), (7, "Luis")]


def test_too_few_and_too_many_columns() -> None:
    rows = list(_open("a,b,c\n1\n1,2,3,4,5\n1,2,3,,\n"))
    assert rows[0].data == {"a": "1", "b": "", "c": ""}
    assert rows[1].data == {"a": "1", "b": "2", "c": "3", "_extra_1": "4", "_extra_2": "5"}
    assert rows[2].data == {"a": "1", "b": "2", "c": "3"}


def test_unknown_columns_are_kept_and_duplicate_headers_suffixed() -> None:
    reader = _open("IBAN,iban,,Custom Field\nA,B,C,D\n")
    assert reader.headers == ["iban", "iban_2", "_column_3", "custom_field"]
    assert next(reader).data == {"iban": "A", "iban_2": "B", "_column_3": "C", "custom_field": "D"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", EMPTY_FILE),
        (b"\xef\xbb\xbf", EMPTY_FILE),
        (b"\n\r\n  \n", EMPTY_FILE),
        (b"\nname,iban\nAna,ES05\n", NO_HEADER),
        (b",,,\nAna,ES05,,\n", NO_HEADER),
        (b"name,iban\n", NO_DATA_ROWS),
        (b"name,iban\n\n,\n", NO_DATA_ROWS),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", BINARY_CONTENT),
        (bytes(range(1, 32)) * 20, BINARY_CONTENT),
    ],
)
def test_format_errors(content: bytes, message: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        _open(content)
    assert caught.value.message == message
    assert str(caught.value) == message


def test_error_messages_are_exact() -> None:
    assert EMPTY_FILE == "The file is empty."
    assert NO_HEADER == "The file has no header row."
    assert NO_DATA_ROWS == "The file contains no data rows."
    assert BINARY_CONTENT == "The file is not a CSV file (binary content)."


def test_nul_byte_after_the_sample_is_binary() -> None:
    content = b"name,city\n" + b"Ana,Madrid\n" * (SAMPLE_SIZE // 10) + b"Luis,\x00\x00\n"
    reader = _open(content)
    with pytest.raises(CsvFormatError, match=r"binary content"):
        list(reader)


def test_multibyte_character_split_at_the_sample_boundary_stays_utf8() -> None:
    header = b"name,city\n"
    filler = b"x" * (SAMPLE_SIZE - len(header) - len(b"Ana,M") - 1)
    content = header + b"Ana,M" + filler + "ñ".encode() + b"\nLuis,Bilbao\n"
    assert content.index("ñ".encode()) == SAMPLE_SIZE - 1  # the sample ends mid-character
    reader = _open(content)
    assert reader.encoding == "utf-8"
    rows = list(reader)
    assert rows[0].data["city"].endswith("ñ")
    assert rows[1].data == {"name": "Luis", "city": "Bilbao"}


def test_cp1252_bytes_after_a_utf8_sample_are_decoded_as_cp1252() -> None:
    content = (
        b"name,city\n" + b"Ana,Madrid\n" * (SAMPLE_SIZE // 10) + "Jürgen,Köln\n".encode("cp1252")
    )
    reader = _open(content)
    assert reader.encoding == "utf-8"
    assert list(reader)[-1].data == {"name": "Jürgen", "city": "Köln"}


def test_large_file_is_read_in_bounded_chunks() -> None:
    header = b"first_name;last_name;iban;amount;city\n"
    line = b'Ana;"Garc\xc3\xada\nL\xc3\xb3pez";ES0500190050054010130723;150,00;Madrid\n'
    count = 1_200_000 // len(line) + 1
    data = header + line * count
    assert len(data) > 1_000_000
    stream = BoundedReads(data, limit=64 * 1024)
    reader = open_csv(stream)
    assert reader.delimiter == ";"
    total = 0
    last = None
    for row in reader:
        total += 1
        last = row
    assert total == count
    assert last is not None
    assert last.row_number == count + 1
    assert last.data["last_name"] == "García\nLópez"
    assert stream.largest <= 64 * 1024
    assert stream.calls > len(data) // (64 * 1024)


def test_reader_is_single_pass() -> None:
    reader = _open("a\n1\n2\n")
    assert [row.data["a"] for row in reader] == ["1", "2"]
    assert list(reader) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("First Name", "first_name"),
        (" IBAN ", "iban"),
        ("Postal-Code", "postal_code"),
        ("  e -  mail ", "e_mail"),
    ],
)
def test_normalize_header(raw: str, expected: str) -> None:
    assert normalize_header(raw) == expected


def _refusal(content: str | bytes) -> CsvFormatError:
    with pytest.raises(CsvFormatError) as caught:
        list(_open(content))
    return caught.value


def test_limit_messages_are_exact() -> None:
    assert MAX_COLUMNS == 200
    assert csv_ingest.TOO_MANY_COLUMNS.format(row=1) == (
        "Row 1 has more than 200 columns: a file may have at most 200."
    )


def test_thirty_thousand_identical_headers_are_refused_before_any_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 7: 30,000 identical headers (120 KB) took 90 s to de-duplicate. The record is
    # refused while it is cut from the text, before the parser splits it into names.
    calls = 0
    real = csv_ingest.normalize_header

    def counting(name: str) -> str:
        nonlocal calls
        calls += 1
        return real(name)

    monkeypatch.setattr(csv_ingest, "normalize_header", counting)
    error = _refusal(",".join(["name"] * 30_000) + "\nAna\n")
    assert error.code == "too_many_columns"
    assert error.message == "Row 1 has more than 200 columns: a file may have at most 200."
    assert calls == 0


class _ProbeCountingSet(set[str]):
    """A set that counts membership tests (the de-duplication's unit of work)."""

    probes = 0

    def __contains__(self, item: object) -> bool:
        _ProbeCountingSet.probes += 1
        return super().__contains__(item)


def test_duplicate_header_names_are_suffixed_in_linear_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csv_ingest, "set", _ProbeCountingSet, raising=False)
    _ProbeCountingSet.probes = 0
    keys = csv_ingest._header_keys(["IBAN"] * MAX_COLUMNS)
    assert keys == ["iban", *(f"iban_{n}" for n in range(2, MAX_COLUMNS + 1))]
    # The old loop probed suffixes 2..n for the n-th repeat: ~20,000 probes for 200 names.
    assert _ProbeCountingSet.probes <= 2 * MAX_COLUMNS
    # A name written with a suffix is skipped, not overwritten.
    assert csv_ingest._header_keys(["a", "a_2", "a", "a"]) == ["a", "a_2", "a_3", "a_4"]


def test_two_hundred_columns_are_read_and_two_hundred_and_one_refused() -> None:
    header = ",".join(f"c{n}" for n in range(MAX_COLUMNS))
    row = ",".join(str(n) for n in range(MAX_COLUMNS))
    (read,) = list(_open(f"{header}\n{row}\n"))
    assert len(read.data) == MAX_COLUMNS
    assert _refusal(f"{header},c200\n{row}\n").message.startswith("Row 1 has more than 200")
    wide_row = _refusal(f"{header}\n{row}\n{row},extra\n")
    assert wide_row.message == "Row 3 has more than 200 columns: a file may have at most 200."


def test_quoted_delimiters_do_not_count_as_columns() -> None:
    note = '"' + ", ".join(["word"] * 500) + '"'
    (read,) = list(_open(f"name,note\nAna,{note}\n"))
    assert read.data["note"].count(",") == 499


def test_blank_cells_trailing_past_the_limit_are_dropped() -> None:
    # Spreadsheets export empty columns after the data as trailing delimiters.
    (read,) = list(_open("a,b\n1,2" + ", " * 5000 + "\n"))
    assert read.data == {"a": "1", "b": "2"}


def test_a_row_of_six_million_cells_is_refused_in_bounded_memory() -> None:
    # Issue 7: one row of 6 million cells (12 MB) took the process to 1.8 GB.
    content = b"first_name,last_name\n" + b"x," * 6_000_000 + b"\n"
    tracemalloc.start()
    try:
        error = _refusal(content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.message == "Row 2 has more than 200 columns: a file may have at most 200."
    assert peak < 4 * 1024 * 1024


def test_an_unclosed_quote_is_refused_at_the_row_length_limit() -> None:
    content = b'name,city\n"Ana' + b"x" * (20 * csv_ingest.MAX_RECORD_CHARS)
    tracemalloc.start()
    try:
        error = _refusal(content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == "row_too_long"
    assert error.message.startswith("Row 2 is longer than 1000000 characters")
    assert peak < 8 * csv_ingest.MAX_RECORD_CHARS


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_records_are_split_exactly_as_the_csv_module_reads_them(delimiter: str) -> None:
    # The splitter only cuts the text into records; whatever the quoting, the parser must see
    # the same rows as when it reads the file itself.
    pieces = ["a", "b c", delimiter, '"', '""', "\n", "\r", "\r\n", " ", "é"]
    chooser = random.Random(7)
    for _ in range(3000):
        text = "".join(chooser.choice(pieces) for _ in range(chooser.randint(0, 50)))
        expected = [
            r
            for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            if any(field.strip() for field in r)
        ]
        splitter = csv_ingest._RecordSplitter(io.StringIO(text, newline=""), delimiter)
        got = [
            r
            for r in csv.reader(iter(splitter), delimiter=delimiter)
            if any(field.strip() for field in r)
        ]
        assert got == expected, repr(text)


@pytest.mark.parametrize("block_size", [1, 5, 64, 65536])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_counting_and_skimming_agree_with_the_reader_on_blank_lines(
    newline: str, block_size: int
) -> None:
    lines = ["name;city"]
    for i in range(40):
        lines.append(f"Ana{i};Madrid")
        lines.extend(["", " ; ", ";;"][: i % 4])  # 0 to 3 blank records after each row
    content = (newline.join(lines) + newline + newline).encode()
    rows = list(_open(content))
    numbers = [row.row_number for row in rows]
    # Every data row keeps its line's number: header = 1, blank lines counted.
    assert numbers == [lines.index(f"Ana{i};Madrid") + 1 for i in range(40)]
    first, every = 3, 7
    wanted = numbers[first - 1 :: every]  # the 3rd, 10th, … data rows

    reader = _open(content)
    rest, marks = reader.skim(first, every)
    assert rest == 40
    assert [index + 1 for index in marks] == wanted
    assert reader.records_read == len(lines) + 1  # the blank record at the end too

    counted = csv_ingest.count_rows(
        io.BytesIO(content), reader.layout, first=first, every=every, block_size=block_size
    )
    assert counted is not None
    assert (counted.rows, counted.records) == (40, reader.records_read)
    assert [record + 1 for record, _ in counted.marks] == wanted
    for (_, offset), row in zip(counted.marks, rows[first - 1 :: every], strict=True):
        assert content[offset:].startswith(row.data["name"].encode() + b";")


def test_a_stray_cp1252_byte_in_a_small_utf8_file_spoils_nothing_else() -> None:
    # One line edited in a Windows-1252 program, in a file otherwise UTF-8 (review: the whole
    # file was read as Windows-1252, and each UTF-8 row came out as "JosÃ©").
    content = (
        b"name,city\n"
        + "Ana,Mérida\n".encode("cp1252")
        + "José,Málaga\n".encode() * 50
        + "Núñez,A Coruña\n".encode()
    )
    reader = _open(content)
    assert reader.encoding == "utf-8"
    rows = [row.data for row in reader]
    assert rows[0] == {"name": "Ana", "city": "Mérida"}
    assert rows[1] == {"name": "José", "city": "Málaga"}
    assert rows[-1] == {"name": "Núñez", "city": "A Coruña"}


def test_cp1252_text_holding_one_utf8_looking_pair_stays_cp1252() -> None:
    # "Ã©" in Windows-1252 is the UTF-8 of "é": one such pair among many accented letters.
    content = "name,city\nPeña,Köln\nMüller,Málaga\nÃ©tienne,Sète\n".encode("cp1252")
    reader = _open(content)
    assert reader.encoding == "cp1252"
    assert [row.data["name"] for row in reader] == ["Peña", "Müller", "Ã©tienne"]


def test_a_character_cut_by_the_sample_end_counts_as_no_stray_byte() -> None:
    # Two UTF-8 letters and one stray byte before the 64 KiB mark, and a letter the mark cuts:
    # counted as a stray byte, that letter would tie them and the file would be Windows-1252.
    header = b"name,city\n"
    lines = "Ana,Mérida\n".encode("cp1252") + "Inés,León\n".encode()
    filler = b"x" * (SAMPLE_SIZE - len(header) - len(lines) - len(b"Luis,M") - 1)
    content = header + lines + b"Luis,M" + filler + "ñ".encode() + b"\n"
    assert content.index("ñ".encode()) == SAMPLE_SIZE - 1
    reader = _open(content)
    assert reader.encoding == "utf-8"
    rows = [row.data for row in reader]
    assert rows[1] == {"name": "Inés", "city": "León"}
    assert rows[2]["city"].endswith("ñ")


def test_a_file_of_cr_line_ends_counts_its_whole_lines_too() -> None:
    # Review: only "\n" ended a line for the count, so a CR-only file past 64 KiB kept no line.
    lines = "Ana,Mérida\r".encode("cp1252") + "Inés,León\r".encode() * 3
    filler = b"x" * SAMPLE_SIZE + b"\r"
    content = b"name,city\r" + lines + b"Luis," + filler
    assert _open(content).encoding == "utf-8"
