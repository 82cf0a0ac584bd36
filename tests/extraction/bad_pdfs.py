"""Hostile and broken files for the extraction's bad-input tests."""

from __future__ import annotations

import zlib

from fpdf import FPDF

from tests.extraction.corpus import corpus, render


def _objects(*bodies: bytes) -> bytes:
    """A PDF from numbered object bodies, with a correct xref table and trailer."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(bodies) + 1,
        xref,
    )
    return bytes(out)


def text_invoice() -> bytes:
    """A good invoice of the corpus."""
    return render(corpus()[0])


def zero_pages() -> bytes:
    """A well-formed PDF whose page tree is empty."""
    return _objects(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>")


def pages(count: int) -> bytes:
    """A PDF with ``count`` short pages."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for i in range(count):
        pdf.add_page()
        pdf.cell(text=f"Page {i + 1}")
    return bytes(pdf.output())


def encrypted(user_password: str = "secret") -> bytes:
    """The good invoice, encrypted (with an empty user password it opens without one)."""
    spec = corpus()[0]
    from tests.extraction import corpus as module

    pdf = module._pdf()
    pdf.set_encryption(owner_password="owner", user_password=user_password)
    pdf.add_page()
    module._text(pdf, 40, 50, spec.seller.name)
    return bytes(pdf.output())


def truncated() -> bytes:
    """The good invoice cut in the middle, as an interrupted download leaves it."""
    data = text_invoice()
    return data[: len(data) // 2]


def damaged() -> bytes:
    """A PDF header and trailer around garbage."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def not_a_pdf() -> bytes:
    """A PNG named invoice.pdf."""
    return b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000


def over_ten_mb() -> bytes:
    """A good invoice padded past 10 MB with a comment before its trailer."""
    data = text_invoice()
    return data[:-6] + b"%" + b"x" * (10 * 1024 * 1024) + b"\n%%EOF\n"


def slow_to_parse(repeat: int = 5_000_000) -> bytes:
    """One page whose content stream inflates (from ~50 kB) to ~35 MB of text operators."""
    content = zlib.compress(b"BT /F1 1 Tf " + b"(a) Tj " * repeat + b"ET", 9)
    return _objects(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    )


def self_referencing_pages() -> bytes:
    """A page tree whose only kid is the tree itself."""
    return _objects(
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"
    )
