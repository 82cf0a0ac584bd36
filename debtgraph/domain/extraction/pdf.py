"""Reading a PDF: sniffing and limits, the text layer through pdfplumber, OCR for scanned pages."""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import dataclass

from debtgraph.domain.core.errors import ExpectedError
from debtgraph.domain.extraction.fields import Extraction, ReviewWarning, extract_fields
from debtgraph.domain.extraction.layout import Line, Word, lines_of

MAX_BYTES = 10 * 1024 * 1024
MAX_PAGES = 20
OCR_DPI = 300
OCR_LANGUAGES = "fra+eng"
# The PDF spec puts the header in the first 1024 bytes and %%EOF in the last 1024.
_HEADER_WINDOW = 1024
_TRAILER_WINDOW = 2048


class PdfRefused(ExpectedError):
    """A file this extractor will not read; ``code`` and ``message`` go back to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


NOT_A_PDF = PdfRefused("invalid_file_type", "The file is not a PDF (no %PDF- header).")
TOO_LARGE = PdfRefused("file_too_large", "The PDF must be at most 10 MB.")
TRUNCATED = PdfRefused("truncated_pdf", "The PDF is truncated (no %%EOF marker at its end).")
ENCRYPTED = PdfRefused("encrypted_pdf", "The PDF needs a password to open; send it unencrypted.")
EMPTY = PdfRefused("empty_pdf", "The PDF has no pages.")
TOO_MANY_PAGES = PdfRefused("too_many_pages", f"The PDF must have at most {MAX_PAGES} pages.")
UNREADABLE = PdfRefused("invalid_pdf", "The PDF is damaged and cannot be read.")
TOO_SLOW = PdfRefused("pdf_too_complex", "The PDF took too long to read.")


def sniff(data: bytes) -> None:
    """Refuse what is not a whole PDF of at most 10 MB, judged by content and never by name."""
    if len(data) > MAX_BYTES:
        raise TOO_LARGE
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise NOT_A_PDF
    if b"%%EOF" not in data[-_TRAILER_WINDOW:]:
        raise TRUNCATED


@dataclass(frozen=True, slots=True)
class OcrEngine:
    """How to run Tesseract: the command, its languages and a time budget per page."""

    command: str = "tesseract"
    languages: str = OCR_LANGUAGES
    page_timeout: float = 60.0


class OcrUnavailable(Exception):
    """Tesseract is not installed (or lacks the languages) on this machine."""


def ocr_words(png: bytes, engine: OcrEngine) -> list[Word]:
    """Words Tesseract reads on a page image, in PDF points."""
    try:
        done = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [engine.command, "stdin", "stdout", "-l", engine.languages, "--psm", "3", "tsv"],
            input=png,
            capture_output=True,
            timeout=engine.page_timeout,
            check=False,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise OcrUnavailable(str(exc)) from None
    if done.returncode != 0:
        raise OcrUnavailable(done.stderr.decode(errors="replace")[-300:])
    scale = 72 / OCR_DPI
    words: list[Word] = []
    rows = csv.DictReader(io.StringIO(done.stdout.decode(errors="replace")), delimiter="\t")
    for row in rows:
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text or float(row.get("conf") or -1) < 0:
            continue
        left, top = int(row["left"]), int(row["top"])
        width, height = int(row["width"]), int(row["height"])
        words.append(
            Word(
                text=text,
                x0=left * scale,
                x1=(left + width) * scale,
                top=top * scale,
                bottom=(top + height) * scale,
            )
        )
    return words


def _open(data: bytes):  # type: ignore[no-untyped-def]
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except MemoryError:
        raise  # the memory cap's (runner.py: pdf_too_complex), no damage
    except Exception as exc:
        # pdfplumber wraps pdfminer's exception, passing it as its first argument.
        causes = [exc, exc.__cause__, *exc.args]
        if any(isinstance(c, PDFPasswordIncorrect | PDFEncryptionError) for c in causes):
            raise ENCRYPTED from None
        raise UNREADABLE from None
    return pdf


def _page_count(pdf) -> int:  # type: ignore[no-untyped-def]
    from pdfminer.pdfpage import PDFPage

    count = 0
    # Walk the page tree lazily and stop past the limit: /Count may lie, and a huge tree is
    # not worth walking to refuse it.
    for _ in PDFPage.create_pages(pdf.doc):
        count += 1
        if count > MAX_PAGES:
            break
    return count


def _render(data: bytes, index: int) -> bytes:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        image = document[index].render(scale=OCR_DPI / 72, grayscale=True).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def read_invoice(
    data: bytes, *, engine: OcrEngine | None, user_id: str | None = None
) -> Extraction:
    """Sniff, open and read a PDF invoice into an Extraction (OCR where a page has no text)."""
    sniff(data)
    pdf = _open(data)
    try:
        count = _page_count(pdf)
        if count == 0:
            raise EMPTY
        if count > MAX_PAGES:
            raise TOO_MANY_PAGES
        lines: list[Line] = []
        warnings: list[ReviewWarning] = []
        ocr_pages: list[int] = []
        ocr_missing = False
        for index, page in enumerate(pdf.pages):
            number = index + 1
            if page.chars:
                words = [
                    Word(w["text"], w["x0"], w["x1"], w["top"], w["bottom"])
                    for w in page.extract_words(x_tolerance=1.5, y_tolerance=2)
                ]
                lines.extend(lines_of(number, words))
                continue
            if engine is None or ocr_missing:
                ocr_missing = True
            else:
                try:
                    lines.extend(lines_of(number, ocr_words(_render(data, index), engine)))
                    ocr_pages.append(number)
                except OcrUnavailable:
                    ocr_missing = True
            how = (
                "its text was read by OCR"
                if number in ocr_pages
                else ("install Tesseract (tesseract-ocr, -fra, -eng) to read it")
            )
            warnings.append(
                ReviewWarning("no_text_layer", f"Page {number} has no text layer; {how}.", None)
            )
    except (PdfRefused, MemoryError):
        raise  # a MemoryError is the memory cap's (runner.py: pdf_too_complex), no damage
    except Exception:
        # pdfminer raises many kinds of errors on damaged files; all mean the same to a client.
        raise UNREADABLE from None
    finally:
        pdf.close()
    extraction = extract_fields(lines, user_id=user_id, ocr_pages=ocr_pages, warnings=warnings)
    extraction.page_count = count
    return extraction
