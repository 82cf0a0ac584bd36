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


def nul_in_text() -> bytes:
    """An invoice whose second font maps the glyph "A" to U+0000 through its ToUnicode CMap:
    the text layer pdfplumber reads then holds NUL characters (outside review)."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Nul def\n"
        b"1 begincodespacerange <00> <FF> endcodespacerange\n"
        b"1 beginbfchar <41> <0000> endbfchar\n"
        b"endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    lines = [
        (800, [("F1", "FACTURE")]),
        (780, [("F1", "Facture n\xb0 : F-2026-0"), ("F2", "A"), ("F1", "42")]),
        (765, [("F1", "Date de facture : 15/01/2026")]),
        (750, [("F1", "Date d'\xe9ch\xe9ance : 14/02/2026")]),
        (720, [("F1", "Factur\xe9 \xe0 :")]),
        (705, [("F1", "Client"), ("F2", "A"), ("F1", " SARL")]),
        (690, [("F1", "12 rue de la Paix"), ("F2", "A")]),
        (675, [("F1", "75002 Paris")]),
        (630, [("F1", "Objet : Prestation de conseil"), ("F2", "A")]),
        (600, [("F1", "Total HT : 100,00 \x80")]),
        (585, [("F1", "TVA 20 % : 20,00 \x80")]),
        (570, [("F1", "Total TTC : 120,00 \x80")]),
    ]
    operations = []
    for y, parts in lines:
        shown = " ".join(f"/{font} 10 Tf ({text}) Tj" for font, text in parts)
        operations.append(f"BT 50 {y} Td {shown} ET")
    content = "\n".join(operations).encode("latin-1")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding"
    return _objects(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>",
        font + b" >>",
        font + b" /ToUnicode 7 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",
    )
