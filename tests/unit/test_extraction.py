"""The extractor on its corpus, its value readers, and every bad input at the domain level."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from fpdf import FPDF

from debtgraph.domain.extraction.pdf import OcrEngine, PdfRefused, read_invoice, sniff
from debtgraph.domain.extraction.runner import Limits, extract_pdf
from debtgraph.domain.extraction.values import amounts_in, dates_in, due_from_terms, parse_amount
from tests.extraction import bad_pdfs
from tests.extraction.corpus import corpus, pdf_of
from tests.extraction.support import at, require_tesseract

SPECS = corpus()
TEXT = [s for s in SPECS if not s.scanned]
SCANNED = [s for s in SPECS if s.scanned]


def test_the_corpus_is_as_large_and_varied_as_promised() -> None:
    assert len(TEXT) >= 12
    assert len(SCANNED) >= 2
    assert any(len(s.numbers) > 1 for s in TEXT)
    assert any(s.labels.number.startswith("Avoir") for s in TEXT)
    multi_page = next(s for s in TEXT if s.name == "fr_multi_page")
    assert read_invoice(pdf_of(multi_page), engine=None).page_count >= 2


def _check(spec, extraction) -> None:  # type: ignore[no-untyped-def]
    wrong = {
        path: (expected, at(extraction.data, path))
        for path, expected in spec.expected().items()
        if at(extraction.data, path) != expected
    }
    assert wrong == {}
    codes = {w.code for w in extraction.warnings} - {"no_text_layer"}
    assert codes == spec.expected_warnings
    assert extraction.missing_fields == []


@pytest.mark.parametrize("spec", TEXT, ids=lambda s: s.name)
def test_every_field_of_every_text_invoice_is_read(spec) -> None:  # type: ignore[no-untyped-def]
    extraction = read_invoice(pdf_of(spec), engine=None)
    _check(spec, extraction)
    assert extraction.ocr_pages == []
    assert 0.8 <= extraction.confidence <= 1


@pytest.mark.parametrize("spec", SCANNED, ids=lambda s: s.name)
def test_scanned_pages_are_read_by_tesseract(spec) -> None:  # type: ignore[no-untyped-def]
    require_tesseract()
    extraction = read_invoice(pdf_of(spec), engine=OcrEngine())
    _check(spec, extraction)
    assert extraction.ocr_pages == [1]
    assert [w.code for w in extraction.warnings] == ["no_text_layer"]
    # OCR'd values are trusted a little less than a text layer's.
    assert extraction.confidence < read_invoice(pdf_of(TEXT[0]), engine=None).confidence


def test_a_scanned_page_without_tesseract_gives_no_text_layer_and_missing_fields() -> None:
    extraction = read_invoice(pdf_of(SCANNED[0]), engine=OcrEngine(command="/nonexistent/tess"))
    assert [w.code for w in extraction.warnings] == ["no_text_layer"]
    assert "install Tesseract" in extraction.warnings[0].message
    assert "invoice.numbers" in extraction.missing_fields
    assert extraction.confidence == 0


def test_the_seller_is_told_apart_from_the_billed_to_party() -> None:
    spec = TEXT[0]
    extraction = read_invoice(pdf_of(spec), engine=None)
    assert extraction.data["debtor"]["siret"] == spec.debtor.siret
    assert extraction.data["metadata"]["seller"]["siret"] == spec.seller.siret
    assert extraction.data["metadata"]["seller"]["siret"] != extraction.data["debtor"]["siret"]


def test_a_siren_alone_goes_to_metadata_not_to_siret() -> None:
    spec = next(s for s in TEXT if s.name == "fr_siren_only")
    extraction = read_invoice(pdf_of(spec), engine=None)
    assert "siret" not in extraction.data["debtor"]
    assert extraction.data["metadata"]["debtor_siren"] == (spec.debtor.siret or "")[:9]


def test_per_field_confidence_and_paths() -> None:
    extraction = read_invoice(pdf_of(TEXT[1]), engine=None)
    # The due date was computed from "30 jours fin de mois", so it is less certain.
    assert (
        extraction.field_confidence["invoice.due_date"]
        < extraction.field_confidence["invoice.issue_date"]
    )
    assert all(0 <= v <= 1 for v in extraction.field_confidence.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234,56 €", "1234.56"),
        ("1\u202f234,56 €", "1234.56"),
        ("1.234,56 EUR", "1234.56"),
        ("€1,234.56", "1234.56"),
        ("£12,000.00", "12000.00"),
        ("1234.5", "1234.50"),
        ("-1 234,56 €", "-1234.56"),
        ("CHF 1'234.56", "1234.56"),
    ],
)
def test_amounts_in_french_and_english_formats(text: str, expected: str) -> None:
    assert amounts_in(text)[-1] == Decimal(expected)


def test_bare_integers_and_percentages_are_not_amounts() -> None:
    assert amounts_in("TVA 20 % Qté 3 année 2026") == []
    assert parse_amount("12,5") == Decimal("12.50")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15/09/2026", date(2026, 9, 15)),
        ("15.09.2026", date(2026, 9, 15)),
        ("2026-09-15", date(2026, 9, 15)),
        ("1er mars 2026", date(2026, 3, 1)),
        ("3 août 2026", date(2026, 8, 3)),
        ("September 1, 2026", date(2026, 9, 1)),
        ("12 Feb 2026", date(2026, 2, 12)),
        ("15/09/26", date(2026, 9, 15)),
    ],
)
def test_dates_in_french_and_english_formats(text: str, expected: date) -> None:
    assert dates_in(text)[0].value == expected


def test_a_swappable_numeric_date_is_flagged_ambiguous() -> None:
    assert dates_in("03/04/2026")[0].ambiguous
    assert not dates_in("13/04/2026")[0].ambiguous
    assert dates_in("03/04/2026", month_first=True)[0].value == date(2026, 3, 4)


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ("30 jours fin de mois", date(2026, 9, 30)),
        ("45 jours fin de mois", date(2026, 9, 30)),
        ("fin de mois + 30 jours", date(2026, 9, 30)),
        ("Paiement à 30 jours", date(2026, 9, 2)),
        ("Net 30", date(2026, 9, 2)),
        ("payable within 60 days", date(2026, 10, 2)),
        ("30 days end of month", date(2026, 9, 30)),
        ("Paiement à réception", date(2026, 8, 3)),
    ],
)
def test_payment_terms_give_the_due_date(terms: str, expected: date) -> None:
    assert due_from_terms(terms, date(2026, 8, 3)) == expected


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        # Issue + 30 days is 2 March, then the end of that month; not 31 January + 30 days.
        ("30 jours fin de mois", date(2026, 3, 31)),
        ("fin de mois + 30 jours", date(2026, 3, 2)),
        ("30 jours fin de mois le 10", date(2026, 4, 10)),
        ("45 jours fin de mois, le 15", date(2026, 4, 15)),
        ("30 jours FDM le 5", date(2026, 4, 5)),
        ("Paiement fin de mois le 10", date(2026, 2, 10)),
        ("fin de mois le 31", date(2026, 2, 28)),
    ],
)
def test_month_end_terms_from_the_last_day_of_january(terms: str, expected: date) -> None:
    assert due_from_terms(terms, date(2026, 1, 31)) == expected


@pytest.mark.parametrize(
    ("terms", "due"),
    [
        ("Conditions de paiement : 30 jours fin de mois", "2026-03-31"),
        ("Conditions de paiement : 30 jours fin de mois le 10", "2026-04-10"),
        ("Conditions de paiement : fin de mois le 10", "2026-02-10"),
    ],
)
def test_a_due_date_computed_from_month_end_terms_on_the_invoice(terms: str, due: str) -> None:
    base = next(s for s in TEXT if s.name == "fr_terms_fin_de_mois")
    spec = dataclasses.replace(
        base, issue="2026-01-31", issue_text="31/01/2026", terms=terms, expected_due=due
    )
    extraction = read_invoice(pdf_of(spec), engine=None)
    _check(spec, extraction)
    assert extraction.field_confidence["invoice.due_date"] < 0.95


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (bad_pdfs.not_a_pdf, "invalid_file_type"),
        (bad_pdfs.over_ten_mb, "file_too_large"),
        (bad_pdfs.truncated, "truncated_pdf"),
        (bad_pdfs.damaged, "invalid_pdf"),
        (bad_pdfs.zero_pages, "empty_pdf"),
        (lambda: bad_pdfs.pages(21), "too_many_pages"),
        (bad_pdfs.encrypted, "encrypted_pdf"),
    ],
)
def test_bad_files_are_refused_with_a_code(make, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PdfRefused) as refused:
        read_invoice(make(), engine=None)
    assert refused.value.code == code


def test_the_limits_are_inclusive() -> None:
    assert read_invoice(bad_pdfs.pages(20), engine=None).page_count == 20
    # Only a password-protected file is refused; permissions-only encryption is read.
    assert read_invoice(bad_pdfs.encrypted(user_password=""), engine=None).page_count == 1
    sniff(b"%PDF-1.4\n" + b" " * 100 + b"%%EOF")


async def test_a_pathological_pdf_is_stopped_at_the_time_limit() -> None:
    with pytest.raises(PdfRefused) as refused:
        await extract_pdf(bad_pdfs.slow_to_parse(), Limits(timeout=1.5, engine=None))
    assert refused.value.code == "pdf_too_complex"


async def test_the_child_process_answers_a_good_file() -> None:
    result = await extract_pdf(pdf_of(TEXT[0]), Limits(timeout=30, engine=None), user_id="usr_x")
    assert result["data"]["user_id"] == "usr_x"
    assert result["missing_fields"] == []


async def test_a_page_tree_that_contains_itself_is_refused_not_looped_on() -> None:
    looping = bad_pdfs.self_referencing_pages()
    with pytest.raises(PdfRefused) as refused:
        await extract_pdf(looping, Limits(timeout=20, engine=None))
    assert refused.value.code in {"invalid_pdf", "empty_pdf"}


def _variant(name: str, **changes):  # type: ignore[no-untyped-def]
    import dataclasses

    return dataclasses.replace(next(s for s in TEXT if s.name == name), **changes)


def test_a_swappable_date_on_an_english_invoice_is_a_warning() -> None:
    spec = _variant("en_bill_to", issue_text="09/01/2026", due_text="10/01/2026")
    extraction = read_invoice(pdf_of(spec), engine=None)
    codes = {(w.code, w.field) for w in extraction.warnings}
    assert ("date_ambiguous", "invoice.issue_date") in codes
    assert extraction.data["invoice"]["issue_date"] == "2026-01-09"  # day first
    assert extraction.field_confidence["invoice.issue_date"] == 0.5


def test_vat_numbers_are_checked_with_stdnum_and_against_the_siren() -> None:
    import dataclasses

    base = next(s for s in TEXT if s.name == "fr_two_column")
    other_vat = dataclasses.replace(base.debtor, vat="FR27552032534")
    mismatch = read_invoice(pdf_of(_variant("fr_two_column", debtor=other_vat)), engine=None)
    assert [w.code for w in mismatch.warnings] == ["vat_siren_mismatch"]
    bad_key = dataclasses.replace(base.debtor, vat="FR00412345670")
    invalid = read_invoice(pdf_of(_variant("fr_two_column", debtor=bad_key)), engine=None)
    assert [(w.code, w.field) for w in invalid.warnings] == [
        ("invalid_vat_number", "debtor.vat_number")
    ]


def _plain_invoice(*lines: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for n, text in enumerate(lines):
        pdf.text(20, 20 + 7 * n, text)
    return bytes(pdf.output())


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # A label names the description after it; a line that only starts with the same word
        # is the description itself, first word included.
        ("Prestation de conseil", "Prestation de conseil"),
        ("Prestations d'audit comptable", "Prestations d'audit comptable"),
        ("Prestation : Audit annuel", "Audit annuel"),
        ("Objet : Mission de conseil", "Mission de conseil"),
        ("Subject: Consulting services", "Consulting services"),
        ("Subjects of the audit", None),
    ],
)
def test_a_description_label_needs_its_separator(line: str, expected: str | None) -> None:
    pdf = _plain_invoice(
        "ACME SAS - SIRET 55203253400646",
        "FACTURE N F-2026-100",
        "Date: 05/01/2026",
        line,
        "Total TTC 120,00 EUR",
    )
    found = read_invoice(pdf, engine=None).data["invoice"].get("service_description")
    assert found == expected


def test_a_service_line_in_a_table_row_keeps_its_own_column() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.text(20, 20, "ACME SAS - SIRET 55203253400646")
    pdf.text(20, 27, "FACTURE N F-2026-100")
    pdf.text(20, 34, "Prestation de conseil")
    pdf.text(150, 34, "100,00 EUR")
    pdf.text(20, 41, "Total TTC 120,00 EUR")
    found = read_invoice(bytes(pdf.output()), engine=None).data["invoice"]
    assert found.get("service_description") == "Prestation de conseil"


def test_nul_characters_of_a_text_layer_are_dropped() -> None:
    # A ToUnicode map giving U+0000 for a glyph (outside review): the draft carried it into
    # PostgreSQL, which refused the row (a 500).
    extraction = read_invoice(bad_pdfs.nul_in_text(), engine=None).as_dict()
    assert "\x00" not in repr(extraction)
    assert extraction["data"]["debtor"]["company_name"] == "Client SARL"
    assert extraction["data"]["invoice"]["numbers"] == ["F-2026-042"]


def test_running_out_of_memory_is_not_called_damage(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memory cap of the extraction process answers pdf_too_complex (runner.py); read as
    # damage here first, a decompression bomb was "The PDF is damaged and cannot be read."
    import pdfplumber.page

    def exhausted(*_args: object, **_kwargs: object) -> None:
        raise MemoryError("Unable to allocate output buffer.")

    monkeypatch.setattr(pdfplumber.page.Page, "extract_words", exhausted)
    with pytest.raises(MemoryError):
        read_invoice(bad_pdfs.text_invoice(), engine=None)


def _billed_to_with(contact: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in [
        "FACTURE",
        "Facture n° : F-2026-7",
        "Date de facture : 15/01/2026",
        "Date d'échéance : 14/02/2026",
        "Facturé à :",
        "Engie SA",
        "1 rue de Paris",
        "75001 Paris",
        contact,
        "Total TTC : 120,00 EUR",
    ]:
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@pytest.mark.parametrize(
    ("line", "person"),
    [
        ("Contact : Jean Dupont, compta@engie.test, +33 1 23 45 67 89", ("Jean", "Dupont")),
        ("Contact : Jean Dupont +33 1 23 45 67 89 compta@engie.test", ("Jean", "Dupont")),
        ("Contact : compta@engie.test +33 1 23 45 67 89", None),
    ],
)
def test_a_contact_line_names_its_person_without_its_phone(
    line: str, person: tuple[str, str] | None
) -> None:
    # Outside review: the phone was kept in the name ("Dupont, , +33 1 23 45 67 89"), or was
    # the name ("+33" "1 23 45 67 89"), at 0.95 confidence.
    data = read_invoice(_billed_to_with(line), engine=None).as_dict()["data"]
    [contact] = data["debtor"]["contacts"]
    assert (contact["email"], contact["phone"]) == ("compta@engie.test", "+33 1 23 45 67 89")
    named = (contact.get("first_name"), contact.get("last_name"))
    assert named == (person or (None, None))


def test_running_out_of_memory_while_opening_is_not_called_damage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The xref or object streams are read as the file is opened: a bomb there too.
    import pdfplumber

    def exhausted(*_args: object, **_kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(pdfplumber, "open", exhausted)
    with pytest.raises(MemoryError):
        read_invoice(bad_pdfs.text_invoice(), engine=None)
