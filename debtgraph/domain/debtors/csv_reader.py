"""Streaming CSV reading for debtor uploads.

The file is read in bounded chunks, so a 50 MB upload never sits in memory as one string:

* Encoding: UTF-8 (a leading BOM is stripped) when the first 64 KiB decode as UTF-8, or hold
  fewer bytes that are not UTF-8 than UTF-8 characters beyond ASCII (a stray byte of another
  program's edit); else Windows-1252. In a UTF-8 file, a byte sequence that is not UTF-8 is
  decoded as Windows-1252 rather than failing the whole upload, in the sample and past it alike;
  bytes Windows-1252 leaves undefined become U+FFFD, which debtor validation then reports as
  invalid characters.
* Binary content (a NUL byte, or more than 10 % control characters in the sample) is refused.
* Delimiter: `,` `;` or tab, sniffed from the first records with the ``csv`` parser itself, so
  quoted delimiters do not count; the candidate whose records consistently have the header's
  column count (> 1) wins, ties go to more columns and then to the order `,` `;` tab.
* Row 1 is the header. Header names are normalised (`" First Name "` → `first_name`); a blank
  one is named by its position (`_column_3`), a repeated one gets a suffix (`iban_2`).
* Limits (PRODUCT.md §12): a record may hold at most ``MAX_COLUMNS`` fields (empty cells
  trailing past the limit are dropped, as a trailing delimiter's are) and ``MAX_RECORD_CHARS``
  characters. The text is cut into records by ``_RecordSplitter`` before the ``csv`` parser
  splits them, so a record over the limits is refused having read at most a little more than
  the limit: a line of six million cells is never turned into six million strings.
* Row numbers are the record's position in the file (header = row 1, PRODUCT.md §6). They count
  CSV records, not physical lines: a quoted field holding a line break does not advance the
  number, so the first data record is row 2 even when the header spans two lines. Blank records
  (nothing but whitespace and delimiters) are skipped (they are not data rows: no row is given
  for them) but they are counted: the row after a blank line 3 is row 4, as a spreadsheet
  shows it. So data rows need not be numbered consecutively; "the n-th data row" (``skim``,
  ``count_rows``) counts data rows only.
* Counting: ``count_rows`` counts the rows of a file whose every record is plainly one line
  (no quote, no lone CR, nothing near a limit) from its bytes, block by block, with the
  numbers the reader would give; any other file is counted by the reader (``skim``).
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from debtgraph.domain.core.errors import ExpectedError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

SAMPLE_SIZE: Final = 64 * 1024
READ_CHUNK_SIZE: Final = 64 * 1024
DELIMITERS: Final = (",", ";", "\t")
_SNIFF_RECORDS: Final = 20
_CONTROL_RATIO_LIMIT: Final = 0.10
# Tab, LF, CR and form feed occur in real text files; every other C0 byte suggests binary data.
_TEXT_CONTROLS: Final = frozenset(b"\t\n\r\x0c")
_UTF8_BOM: Final = codecs.BOM_UTF8
_FALLBACK_ERRORS: Final = "debtgraph.cp1252_fallback"
_HEADER_SEPARATORS: Final = re.compile(r"[\s\-]+")
MAX_COLUMNS: Final = 200
MAX_RECORD_CHARS: Final = 1_000_000

EMPTY_FILE: Final = "The file is empty."
NO_HEADER: Final = "The file has no header row."
NO_DATA_ROWS: Final = "The file contains no data rows."
BINARY_CONTENT: Final = "The file is not a CSV file (binary content)."
TOO_MANY_COLUMNS: Final = (
    f"Row {{row}} has more than {MAX_COLUMNS} columns: a file may have at most {MAX_COLUMNS}."
)
RECORD_TOO_LONG: Final = (
    f"Row {{row}} is longer than {MAX_RECORD_CHARS} characters, the most a row may hold"
    " (is a quote left open?)."
)


class ByteStream(Protocol):
    """A binary file-like object: BytesIO, SpooledTemporaryFile, an upload's file."""

    def read(self, size: int, /) -> bytes:
        """Read at most ``size`` bytes; an empty result means the end of the stream."""
        ...


class CsvFormatError(ExpectedError, ValueError):
    """The upload cannot be read as a CSV file; the message says why, the code what kind."""

    def __init__(self, message: str, code: str = "invalid_csv") -> None:
        super().__init__(message)
        self.code = code


class _TooManyColumns(Exception):
    """The record being read has more than MAX_COLUMNS fields."""


class _RecordTooLong(Exception):
    """The record being read has more than MAX_RECORD_CHARS characters."""


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """How a file was read: what a reader started mid-file must read it with."""

    encoding: str
    delimiter: str
    headers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One data record: its record number in the file (header = 1) and every column's value."""

    row_number: int
    data: dict[str, str]


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode the bytes a UTF-8 decoder rejected as Windows-1252 instead."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("cp1252", errors="replace"), error.end


codecs.register_error(_FALLBACK_ERRORS, _cp1252_fallback)


def _decode_errors(encoding: str) -> str:
    """The error handler text of ``encoding`` is decoded with (see the module's docstring)."""
    return _FALLBACK_ERRORS if encoding == "utf-8" else "replace"


class _PrefixedRaw(io.RawIOBase):
    """A raw stream that replays the already-read sample and then reads on from the source."""

    def __init__(self, prefix: bytes, source: ByteStream) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._source = source

    def readable(self) -> bool:
        """Report that the stream can be read."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` from the sample first, then with at most READ_CHUNK_SIZE new bytes."""
        view = memoryview(buffer).cast("B")
        # The text layer asks for more than a chunk when it reads many characters at once.
        size = min(len(view), READ_CHUNK_SIZE)
        if self._prefix:
            taken = self._prefix[:size]
            self._prefix = self._prefix[len(taken) :]
            view[: len(taken)] = taken
            return len(taken)
        data = self._source.read(size)
        if not data:
            return 0
        if b"\x00" in data:
            # No text encoding accepted here has NUL bytes: this part of the file is binary.
            raise CsvFormatError(BINARY_CONTENT)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close this wrapper only; the caller owns (and closes) the source stream."""
        self._prefix = memoryview(b"")
        super().close()


def normalize_header(name: str) -> str:
    """Normalise a header name: trimmed, lower case, spaces and hyphens as one underscore."""
    return _HEADER_SEPARATORS.sub("_", name.strip().lower()).strip("_")


_ASCII_BYTES: Final = bytes(range(0x80))


def _read_sample(stream: ByteStream) -> tuple[bytes, bool]:
    """Read up to SAMPLE_SIZE bytes in bounded reads; also say whether the stream ended."""
    parts: list[bytes] = []
    size = 0
    while size < SAMPLE_SIZE:
        chunk = stream.read(min(READ_CHUNK_SIZE, SAMPLE_SIZE - size))
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), False


def _looks_binary(sample: bytes) -> bool:
    """Tell whether the sample is binary data rather than text."""
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in _TEXT_CONTROLS)
    controls += sample.count(0x7F)
    return controls > len(sample) * _CONTROL_RATIO_LIMIT


def _detect_encoding(sample: bytes, at_eof: bool) -> str:
    """Choose UTF-8 when the sample is UTF-8 but for fewer stray bytes than it has UTF-8
    characters beyond ASCII, else Windows-1252.

    A UTF-8 file with a stray Windows-1252 byte (a line edited in another program) is read as
    UTF-8, that byte as Windows-1252, as such a byte past the sample always was: read whole as
    Windows-1252, every other accented letter of the file became mojibake ("JosÃ©"). Text in
    Windows-1252 hardly ever holds a UTF-8 sequence (an accented capital followed by a symbol
    such as "Ã©"), while each of its accented letters is a byte that is not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # final=False keeps a multibyte character cut by the sample boundary from failing.
        decoder.decode(sample, final=at_eof)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    if not at_eof:
        # A character cut by the sample's end is neither: count whole lines only.
        sample = sample[: max(sample.rfind(b"\n"), sample.rfind(b"\r")) + 1]
    text = sample.decode("utf-8", errors="ignore")
    beyond_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    utf8_bytes = len(text.encode()) - (len(text) - beyond_ascii)
    stray = len(sample.translate(None, _ASCII_BYTES)) - utf8_bytes
    return "utf-8" if stray < beyond_ascii else "cp1252"


def _is_blank(record: list[str]) -> bool:
    """Tell whether a record holds nothing but whitespace."""
    # Its fields joined are whitespace only exactly when each one is; one C call per record.
    return not "".join(record).strip()


def _cause(error: Exception) -> Exception | None:
    """What a CsvFormatError raised for ``error`` is chained to: the parser's own error, not
    the splitter's signals."""
    return error if isinstance(error, csv.Error) else None


def _sniff_delimiter(sample_text: str, at_eof: bool) -> str:
    """Pick the delimiter whose first records consistently have the header's column count."""
    if not at_eof:
        # The last line of a truncated sample is probably cut short; do not let it vote.
        cut = max(sample_text.rfind("\n"), sample_text.rfind("\r"))
        sample_text = sample_text[: cut + 1] if cut >= 0 else sample_text
    best: tuple[float, int, int] | None = None
    chosen = ","
    for preference, delimiter in enumerate(DELIMITERS):
        records: list[list[str]] = []
        try:
            for record in csv.reader(io.StringIO(sample_text, newline=""), delimiter=delimiter):
                if not _is_blank(record):
                    records.append(record)
                if len(records) >= _SNIFF_RECORDS:
                    break
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistency = sum(1 for record in records if len(record) == width) / len(records)
        rank = (consistency, width, -preference)
        if best is None or rank > best:
            best, chosen = rank, delimiter
    return chosen


def _header_keys(record: list[str]) -> list[str]:
    """Normalise header names, naming blank ones by position and suffixing duplicates.

    Linear in the number of names: each base name remembers the next suffix to try, so the
    n-th repeat of a name does not probe the n - 1 suffixes before it again.
    """
    keys: list[str] = []
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    for position, name in enumerate(record, start=1):
        key = normalize_header(name) or f"_column_{position}"
        candidate = key
        if candidate in taken:
            suffix = next_suffix.get(key, 2)
            candidate = f"{key}_{suffix}"
            while candidate in taken:
                # Only a name that was itself written with a suffix (`iban_2`) is skipped here.
                suffix += 1
                candidate = f"{key}_{suffix}"
            next_suffix[key] = suffix + 1
        taken.add(candidate)
        keys.append(candidate)
    return keys


def _record_pattern(delimiter: str) -> str:
    """A record of at most MAX_COLUMNS fields, as the ``csv`` module's default dialect reads it.

    A field is quoted (``"…"`` with ``""`` for a quote, then any text up to the next delimiter
    after the closing quote; or open to the end of the text), plain (not starting with a quote,
    up to a delimiter or line break) or empty. Every group is atomic or possessive, so a match
    never backtracks: it costs time linear in the characters it covers.
    """
    d = re.escape(delimiter)
    quoted = f'"(?:[^"]++|"")*+(?:"[^{d}\\r\\n]*+)?'
    plain = f'[^{d}"\\r\\n][^{d}\\r\\n]*+'
    field = f"(?>{plain}|{quoted}|)"
    return f"{field}(?:{d}{field}){{0,{MAX_COLUMNS - 1}}}+"


class _RecordSplitter:
    """The text of a CSV file as lines for the ``csv`` parser, in records within the limits.

    The parser still does the splitting, so values are exactly what it reads; the splitter only
    makes sure it is never handed a record over the limits. Complete records are checked many
    at a time by one match (``_bulk``) and handed over as their lines; the record at the end of
    what was read is checked alone (``_single``): it may need more text, be too wide, end the
    file without a line break, or have blank cells past the limit (``blank``: delimiters
    separating nothing but spaces and tabs up to the line break), which are dropped. Iterating
    raises _TooManyColumns or _RecordTooLong where the offending record would have been.
    """

    def __init__(self, text: io.TextIOBase, delimiter: str) -> None:
        self._text = text
        self._delimiter = delimiter
        record = _record_pattern(delimiter)
        d = re.escape(delimiter)
        # A CR ending the text read so far may be the first half of a CRLF: the record it
        # ends is left to ``_single``, which reads on, so no CRLF is ever cut in two (which
        # would read as a record and an empty line).
        self._bulk = re.compile(f"(?:{record}(?:\\r\\n|\\n|\\r(?!\\Z)))*+")
        self._single = re.compile(f"{record}(?P<blank>(?:{d}[ \\t]*+)++(?=[\\r\\n]|\\Z))?")
        self._buffer = ""
        self._position = 0
        self._at_eof = False

    def __iter__(self) -> Iterator[str]:
        """The file's lines, record after record; can be iterated only once."""
        return itertools.chain.from_iterable(self._pieces())

    def _pieces(self) -> Iterator[Iterable[str]]:
        """Yield runs of complete records (as their lines) and single records (one string)."""
        while True:
            buffer, start = self._buffer, self._position
            bulk = self._bulk.match(buffer, start)
            assert bulk is not None  # the pattern may match nothing
            if bulk.end() > start:
                self._position = bulk.end()
                yield io.StringIO(buffer[start : bulk.end()], newline="")
                continue
            if start == len(buffer) and self._at_eof:
                return
            match = self._single.match(buffer, start)
            assert match is not None
            end = match.end()
            following = buffer[end : end + 2]
            if following.startswith(self._delimiter):
                raise _TooManyColumns
            if (not following or following == "\r") and not self._at_eof:
                # The record (or its "\r\n") may go on in text not read yet.
                self._read_more()
                continue
            record_end = match.start("blank") if match.group("blank") is not None else end
            self._position = end + (2 if following == "\r\n" else 1 if following else 0)
            yield (buffer[start:record_end],)

    def _read_more(self) -> None:
        """Append the next piece of text to the unread rest; a long record doubles the read."""
        rest = self._buffer[self._position :]
        if len(rest) > MAX_RECORD_CHARS:
            raise _RecordTooLong
        # Reading at least as much as is pending keeps rescanning a long record linear.
        chunk = self._text.read(max(READ_CHUNK_SIZE, len(rest)))
        if not chunk:
            self._at_eof = True
        self._buffer, self._position = rest + chunk, 0


class CsvReader:
    """An opened CSV upload: its headers, encoding and delimiter; iterate once for its rows.

    ``records_read`` counts the CSV records read so far, header and blank ones included,
    ``rows_read`` the data rows among them (one read ahead included), and ``record_index`` is
    the 0-based index of the record the last row returned came from: where every record is one
    line (no quoted line break), that is the row's line in the file. A row's number is its
    record's number: header and blank records count.
    """

    records_read: int = 0
    rows_read: int = 0
    record_index: int = 0
    _row_index: int = 0

    def __init__(self, stream: ByteStream) -> None:
        sample, at_eof = _read_sample(stream)
        if sample.startswith(_UTF8_BOM):
            sample, has_bom = sample[len(_UTF8_BOM) :], True
        else:
            has_bom = False
        if not sample.strip():
            raise CsvFormatError(EMPTY_FILE)
        if _looks_binary(sample):
            raise CsvFormatError(BINARY_CONTENT)
        self.encoding: str = "utf-8" if has_bom else _detect_encoding(sample, at_eof)
        errors = _decode_errors(self.encoding)
        sample_text = codecs.getincrementaldecoder(self.encoding)(errors=errors).decode(sample)
        self.delimiter: str = _sniff_delimiter(sample_text, at_eof)

        buffered = io.BufferedReader(_PrefixedRaw(sample, stream), buffer_size=READ_CHUNK_SIZE)
        self._text = io.TextIOWrapper(buffered, encoding=self.encoding, errors=errors, newline="")
        self._records = csv.reader(
            _RecordSplitter(self._text, self.delimiter), delimiter=self.delimiter
        )
        self._record_number = 0

        header = self._next_record()
        if header is None or _is_blank(header):
            raise CsvFormatError(NO_HEADER)
        self.headers: list[str] = _header_keys(header)
        self._pending: ParsedRow | None = self._next_row()
        self._pending_index = self._row_index
        if self._pending is None:
            raise CsvFormatError(NO_DATA_ROWS)

    @classmethod
    def resume(cls, stream: ByteStream, layout: CsvLayout, first_row: int) -> CsvReader:
        """A reader of a file's rows from where ``stream`` stands, a record's first byte.

        The layout is the one the file's own reader found (no sniffing from mid-file); the
        first record read is row ``first_row``. Decoding from a line start gives the text
        the whole-file reader saw there: the line break is ASCII in every encoding accepted,
        never inside a multibyte character, and the decoders keep no state across it.
        """
        reader = cls.__new__(cls)
        reader.encoding = layout.encoding
        reader.delimiter = layout.delimiter
        errors = _decode_errors(layout.encoding)
        buffered = io.BufferedReader(_PrefixedRaw(b"", stream), buffer_size=READ_CHUNK_SIZE)
        reader._text = io.TextIOWrapper(
            buffered, encoding=layout.encoding, errors=errors, newline=""
        )
        reader._records = csv.reader(
            _RecordSplitter(reader._text, layout.delimiter), delimiter=layout.delimiter
        )
        reader.headers = list(layout.headers)
        reader._record_number = first_row - 1
        reader.records_read = 0
        reader.rows_read = 0
        reader._pending = reader._next_row()
        reader._pending_index = reader._row_index
        return reader

    @property
    def layout(self) -> CsvLayout:
        """The encoding, delimiter and headers found, for readers started mid-file."""
        return CsvLayout(self.encoding, self.delimiter, tuple(self.headers))

    def _next_record(self) -> list[str] | None:
        """Read the next record, blank or not, and count it; None at the end of the file."""
        try:
            record = next(self._records)
        except StopIteration:
            return None
        except (_TooManyColumns, _RecordTooLong, csv.Error) as error:
            raise self._refusal(error) from _cause(error)
        self.records_read += 1
        self._record_number += 1
        return record

    def _refusal(self, error: Exception) -> CsvFormatError:
        """The CsvFormatError for an error reading the record after the last one counted
        (blank records count: the number is the record's in the file)."""
        if isinstance(error, _TooManyColumns):
            message = TOO_MANY_COLUMNS.format(row=self._record_number + 1)
            return CsvFormatError(message, "too_many_columns")
        if isinstance(error, _RecordTooLong):
            message = RECORD_TOO_LONG.format(row=self._record_number + 1)
            return CsvFormatError(message, "row_too_long")
        if "NUL" in str(error):
            return CsvFormatError(BINARY_CONTENT)
        return CsvFormatError(
            f"The file could not be read after row {self._record_number}: {error}."
        )

    def _next_row(self) -> ParsedRow | None:
        """Read the next non-blank record as a data row, or None at the end of the file.

        A blank record gives no row but keeps its number: the row is numbered as in the file.
        """
        while True:
            record = self._next_record()
            if record is None:
                return None
            if _is_blank(record):
                continue
            self.rows_read += 1
            self._row_index = self.records_read - 1
            return ParsedRow(self._record_number, self._row_data(record))

    def _row_data(self, record: list[str]) -> dict[str, str]:
        """Map a record onto the headers, padding short rows and keeping extra cells."""
        data = dict(zip(self.headers, record, strict=False))
        for key in self.headers[len(record) :]:
            data[key] = ""
        extras = record[len(self.headers) :]
        # Trailing empty cells are what a trailing delimiter produces; they carry no data.
        while extras and not extras[-1].strip():
            extras.pop()
        for index, value in enumerate(extras, start=1):
            data[f"_extra_{index}"] = value
        return data

    def skim(self, first: int, every: int) -> tuple[int, list[int]]:
        """Count the rows not read yet, without their data; also the record index of the
        ``first``-th, ``first + every``-th, … data row (counting data rows only, from 1, those
        already read included) among them. Reading a file to count its rows costs a fraction
        so (one loop, no row built), and refuses it for the same reasons (the limits are on
        records). ``records_read``, ``rows_read`` and the row numbers are kept as when
        iterating."""
        counted, last = 0, -1
        marks: list[int] = []
        pending, self._pending = self._pending, None
        if pending is not None:
            counted, last = 1, self._pending_index
            if self.rows_read == first:
                marks.append(last)
                first += every
        start = rows = self.rows_read
        begun = read = self.records_read
        try:
            for record in self._records:
                read += 1
                if "".join(record).strip():  # not blank (see _is_blank)
                    rows += 1
                    last = read - 1
                    if rows == first:
                        marks.append(last)
                        first += every
        except (_TooManyColumns, _RecordTooLong, csv.Error) as error:
            self._skimmed(rows, read, begun)
            raise self._refusal(error) from _cause(error)
        self._skimmed(rows, read, begun)
        if last >= 0:
            self.record_index = last
        return counted + rows - start, marks

    def _skimmed(self, rows: int, read: int, begun: int) -> None:
        """Keep the counts ``skim`` reached, from ``begun`` records read."""
        self._record_number += read - begun
        self.rows_read, self.records_read = rows, read

    def __iter__(self) -> Iterator[ParsedRow]:
        """Return the reader itself: rows can be read only once."""
        return self

    def __next__(self) -> ParsedRow:
        """Return the next data row."""
        pending, self._pending = self._pending, None
        if pending is not None:
            row: ParsedRow | None = pending
            self.record_index = self._pending_index
        else:
            row = self._next_row()
            self.record_index = self._row_index
        if row is None:
            raise StopIteration
        return row


def open_csv(stream: ByteStream) -> CsvReader:
    """Open a binary CSV stream, raising CsvFormatError if it is empty, binary or has no rows."""
    return CsvReader(stream)


def open_csv_at(stream: ByteStream, layout: CsvLayout, first_row: int) -> CsvReader:
    """Read a file's rows from a record boundary ``stream`` was moved to (see ``resume``)."""
    return CsvReader.resume(stream, layout, first_row)


# Below the field size limit: a block's lines are shorter than it without being measured.
SCAN_BLOCK: Final = 64 * 1024
# The ASCII characters str.isspace() accepts, but the line feed. With the delimiter and the
# non-ASCII bytes (part of a non-ASCII space, maybe), all that a blank record's line may hold.
_ASCII_SPACES: Final = b" \t\x0b\x0c\r\x1c\x1d\x1e\x1f"
_LONE_CR: Final = re.compile(rb"\r(?!\n)")


@dataclass(frozen=True, slots=True)
class RowCount:
    """What ``count_rows`` found: the data rows, the records (header and blank ones included:
    the number of the last record) and, for each row marked, its record index (its row number
    less one) and the byte offset its record starts at."""

    rows: int
    records: int
    marks: list[tuple[int, int]]


@functools.cache
def _line_tests(delimiter: bytes) -> tuple[bytes, re.Pattern[bytes]]:
    """Bytes to delete from a block to keep only line breaks and delimiters; a pattern for a
    line break followed by a line that may be a blank record."""
    others = bytes(b for b in range(256) if b not in (0x0A, delimiter[0]))
    candidates = re.escape(_ASCII_SPACES + delimiter)
    return others, re.compile(b"\\n([" + candidates + b"\\x80-\\xff]*+)(?=\\n)")


# Lines that may be blank ``count_rows`` judges one at a time before it leaves the file to the
# reader: a real export holds a few; a file of them is cheaper to read record by record.
MAX_JUDGED_LINES: Final = 10_000


def count_rows(
    stream: ByteStream, layout: CsvLayout, *, first: int, every: int, block_size: int = SCAN_BLOCK
) -> RowCount | None:
    """Count the data rows of a file from its bytes, when each of its records is plainly a line.

    ``stream`` is at the start of the file ``layout`` was found for (by ``open_csv``); the
    ``first``-th, ``first + every``-th, … data row (counting data rows only, from 1, as
    ``CsvReader.skim`` does) are marked; the file is read ``block_size`` bytes at a time.
    The reader's per-record work is what counting a large file costs; here whole blocks are
    looked at by a few byte searches instead. That needs a file with no quote, no NUL
    byte, no CR but in a CRLF, no line of the field size limit's length and none with
    MAX_COLUMNS delimiters: each line is then one record, its fields the line split at the
    delimiter, within every limit, read by the reader without an error. Such a line is a blank
    record only if it holds nothing but spaces, delimiters and non-ASCII bytes; only those
    lines are decoded and judged one by one. Returns None as soon as the file proves not to be
    such a file: the reader must count it.
    """
    delimiter = layout.delimiter.encode("ascii")
    too_wide = delimiter * MAX_COLUMNS
    others, candidate = _line_tests(delimiter)
    errors = _decode_errors(layout.encoding)
    # Shorter lines hold shorter fields and records than the reader accepts.
    longest = min(csv.field_size_limit(), MAX_RECORD_CHARS)
    marks: list[tuple[int, int]] = []
    wanted = first
    judged = 0  # lines that may be blank, judged one by one
    rows = -1  # data rows so far: the non-blank lines but the header
    lines = 0  # lines before the block's first one
    # Every block starts with the line break before its first line: the file is read as if
    # one preceded it, at offset -1.
    base = -1
    carry = b"\n"
    while True:
        data = stream.read(block_size)
        if data:
            block = carry + data
            end = block.rfind(b"\n") + 1
        elif len(carry) > 1:
            if carry.endswith(b"\r"):
                return None  # a lone CR ends the file
            block = carry + b"\n"  # the last line, which has no line break
            end = len(block)
        else:
            return RowCount(rows, lines, marks) if lines else None
        if b'"' in block or b"\x00" in block:
            return None
        # A line of MAX_COLUMNS delimiters is MAX_COLUMNS of them in a row once all else
        # but line breaks is gone.
        kept = block.translate(None, others)
        if too_wide in kept:
            return None
        if end == 1:
            if len(block) > longest:
                return None
            carry = block
            continue
        if block.find(b"\r", 0, end) >= 0 and _LONE_CR.search(block, 0, end):
            return None
        start = 1
        while end - start > longest:
            cut = block.rfind(b"\n", start, start + longest)
            if cut < 0:
                return None
            start = cut + 1
        count = kept.count(b"\n") - 1  # the lines after every line break but the last
        blanks: list[int] = []
        seen, at = 0, 0
        for match in candidate.finditer(block, 0, end):
            judged += 1
            if judged > MAX_JUDGED_LINES:
                # A file of blank (or blank-looking) lines costs more here, a line at a time,
                # than in the reader: it counts them, and only its own work is spent.
                return None
            seen += block.count(b"\n", at, match.start())
            at = match.start()
            text = match[1]
            # Spaces and delimiters alone are a blank record; only non-ASCII text is decoded.
            if text.isascii() or _is_blank(
                text.decode(layout.encoding, errors).split(layout.delimiter)
            ):
                blanks.append(seen)
        while wanted <= rows + count - len(blanks):
            line = wanted - rows - 1
            for blank in blanks:
                if blank > line:
                    break
                line += 1
            position = 0
            for _ in range(line):
                position = block.index(b"\n", position + 1)
            marks.append((lines + line, base + position + 1))
            wanted += every
        rows += count - len(blanks)
        lines += count
        base += end - 1
        carry = block[end - 1 :]
