"""A corpus of invoices drawn with fpdf2, each with the fields the extractor must find.

Layouts vary on purpose: two-column headers, label-over-value tables, French and English
wordings, several number and date formats, several invoice numbers, a credit note, a
multi-page invoice, and two scanned (image-only) pages rendered from text ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fpdf import FPDF
from stdnum import luhn

from debtgraph.domain.creditors.kyb import vat_for_siren


def siret_from(seed: str) -> str:
    """A valid SIRET (and so SIREN) built from 8 + 4 digits."""
    siren = seed[:8] + luhn.calc_check_digit(seed[:8])
    body = siren + seed[8:12]
    return body + luhn.calc_check_digit(body)


def fr_amount(value: Decimal) -> str:
    """1 234,56 €"""
    whole, cents = f"{value:.2f}".split(".")
    groups = f"{int(whole):,}".replace(",", " ")
    return f"{groups},{cents} €"


def fr_dot_amount(value: Decimal) -> str:
    """1.234,56 EUR"""
    whole, cents = f"{value:.2f}".split(".")
    return f"{int(whole):,}".replace(",", ".") + f",{cents} EUR"


def en_amount(value: Decimal, sign: str = "€") -> str:
    """€1,234.56"""
    return f"{sign}{value:,.2f}"


def gbp_amount(value: Decimal) -> str:
    """£1,234.56"""
    return en_amount(value, "£")


@dataclass
class Party:
    name: str
    line1: str
    postal_code: str
    city: str
    siret: str | None = None
    vat: str | None = None
    email: str | None = None
    phone: str | None = None
    person: tuple[str, str] | None = None
    line2: str | None = None
    siren_only: bool = False

    def lines(self, english: bool) -> list[str]:
        out = [self.name]
        if self.person:
            out.append(f"{'Attn' if english else 'Contact'} : {self.person[0]} {self.person[1]}")
        out.append(self.line1)
        if self.line2:
            out.append(self.line2)
        out.append(f"{self.postal_code} {self.city}")
        if self.siret:
            if self.siren_only:
                siren = self.siret[:9]
                out.append(f"SIREN : {siren[:3]} {siren[3:6]} {siren[6:]}")
            else:
                s = self.siret
                out.append(f"SIRET : {s[:3]} {s[3:6]} {s[6:9]} {s[9:]}")
        if self.vat:
            out.append(f"{'VAT No' if english else 'TVA intracom.'} : {self.vat}")
        if self.email:
            out.append(f"{'Email' if english else 'E-mail'} : {self.email}")
        if self.phone:
            out.append(f"{'Phone' if english else 'Tél.'} : {self.phone}")
        return out


@dataclass
class Labels:
    number: str = "Facture n°"
    issue: str = "Date de facture"
    due: str = "Date d'échéance"
    billed_to: str = "Facturé à"
    ht: str = "Total HT"
    tva: str = "TVA 20 %"
    ttc: str = "Total TTC"
    table: tuple[str, str, str, str] = ("Désignation", "Qté", "PU HT", "Total HT")


EN = Labels(
    number="Invoice #",
    issue="Invoice date",
    due="Due date",
    billed_to="Bill to",
    ht="Subtotal",
    tva="VAT (20%)",
    ttc="Amount due",
    table=("Description", "Qty", "Unit price", "Amount"),
)


@dataclass
class Spec:
    """One invoice to draw, and what the extractor must read from it."""

    name: str
    seller: Party
    debtor: Party
    numbers: list[str]
    issue: str
    due: str | None
    items: list[tuple[str, int, Decimal]]
    labels: Labels = field(default_factory=Labels)
    english: bool = False
    issue_text: str | None = None
    due_text: str | None = None
    terms: str | None = None
    amount_fmt: Callable[[Decimal], str] = fr_amount
    currency: str = "EUR"
    header: str = "two_column"  # or "stacked", "meta_table"
    tax_rate: Decimal = Decimal("0.20")
    ttc_override: Decimal | None = None
    number_text: str | None = None
    title: str = "FACTURE"
    expected_warnings: set[str] = field(default_factory=set)
    expected_due: str | None = None
    scanned: bool = False

    @property
    def ht(self) -> Decimal:
        return sum((q * p for _, q, p in self.items), Decimal("0.00")).quantize(Decimal("0.01"))

    @property
    def tva(self) -> Decimal:
        return (self.ht * self.tax_rate).quantize(Decimal("0.01"))

    @property
    def ttc(self) -> Decimal:
        return self.ttc_override if self.ttc_override is not None else self.ht + self.tva

    def expected(self) -> dict[str, Any]:
        """The fields (dotted paths) the extractor must return."""
        d = self.debtor
        out: dict[str, Any] = {
            "invoice.numbers": self.numbers,
            "invoice.issue_date": self.issue,
            "invoice.due_date": self.expected_due or self.due,
            "invoice.amount": float(self.ttc),
            "invoice.amount_before_tax": float(self.ht),
            "invoice.tax_amount": float(self.tva),
            "invoice.currency": self.currency,
            "invoice.service_description": self.items[0][0],
            "debtor.company_name": d.name,
            "debtor.address.line1": d.line1,
            "debtor.address.postal_code": d.postal_code,
            "debtor.address.city": d.city,
            "debtor.contacts[0].email": d.email,
            "debtor.contacts[0].phone": d.phone,
            "debtor.siret": None if d.siren_only else d.siret,
            "debtor.vat_number": d.vat,
            "metadata.seller.name": self.seller.name,
        }
        return out


def _pdf() -> FPDF:
    pdf = FPDF(format="A4", unit="pt")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(40, 40, 40)
    return pdf


def _text(pdf: FPDF, x: float, y: float, text: str, size: float = 10, bold: bool = False) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", size)
    pdf.text(x, y, text)


def _meta(spec: Spec) -> list[tuple[str, str]]:
    lab = spec.labels
    rows = [(lab.number, spec.number_text or ", ".join(spec.numbers))]
    rows.append((lab.issue, spec.issue_text or spec.issue))
    if spec.due is not None:
        rows.append((lab.due, spec.due_text or spec.due))
    return rows


def _header(pdf: FPDF, spec: Spec) -> float:
    """Draw seller, meta and billed-to; return the y where the item table starts."""
    seller_lines = spec.seller.lines(spec.english)
    _text(pdf, 40, 50, seller_lines[0], 14, bold=True)
    y = 66
    for line in seller_lines[1:]:
        _text(pdf, 40, y, line, 9)
        y += 12
    if spec.header == "two_column":
        _text(pdf, 330, 50, spec.title, 16, bold=True)
        my = 70
        for label, value in _meta(spec):
            _text(pdf, 330, my, f"{label} : {value}")
            my += 14
        by = max(y, my) + 20
        _text(pdf, 330, by, f"{spec.labels.billed_to} :", bold=True)
        by += 14
        for line in spec.debtor.lines(spec.english):
            _text(pdf, 330, by, line)
            by += 13
        return by + 20
    if spec.header == "meta_table":
        y += 16
        _text(pdf, 40, y, spec.title, 16, bold=True)
        y += 24
        cols = [40, 200, 360]
        for (label, value), x in zip(_meta(spec), cols, strict=False):
            _text(pdf, x, y, label, bold=True)
            _text(pdf, x, y + 14, value)
        y += 44
        _text(pdf, 40, y, f"{spec.labels.billed_to} : {spec.debtor.name}", bold=True)
        y += 14
        for line in spec.debtor.lines(spec.english)[1:]:
            _text(pdf, 40, y, line)
            y += 13
        return y + 20
    # stacked: title, meta lines one under another, then the billed-to block at the left
    y += 16
    _text(pdf, 40, y, spec.title, 16, bold=True)
    y += 22
    for label, value in _meta(spec):
        _text(pdf, 40, y, f"{label}: {value}")
        y += 14
    y += 14
    _text(pdf, 40, y, spec.labels.billed_to, bold=True)
    y += 14
    for line in spec.debtor.lines(spec.english):
        _text(pdf, 40, y, line)
        y += 13
    return y + 20


def _table_header(pdf: FPDF, spec: Spec, y: float) -> float:
    for text, x in zip(spec.labels.table, (40, 330, 390, 480), strict=True):
        _text(pdf, x, y, text, bold=True)
    return y + 16


def render(spec: Spec) -> bytes:
    """The invoice as a PDF with a text layer."""
    pdf = _pdf()
    pdf.add_page()
    y = _table_header(pdf, spec, _header(pdf, spec))
    for description, qty, price in spec.items:
        if y > 760:
            _text(pdf, 40, 800, "Suite page suivante" if not spec.english else "Continued", 8)
            pdf.add_page()
            _text(pdf, 40, 50, f"{spec.labels.number} {spec.numbers[0]} (suite)", 9)
            y = _table_header(pdf, spec, 80)
        _text(pdf, 40, y, description)
        _text(pdf, 330, y, str(qty))
        _text(pdf, 390, y, spec.amount_fmt(price))
        _text(pdf, 480, y, spec.amount_fmt((qty * price).quantize(Decimal("0.01"))))
        y += 14
    if y > 700:
        pdf.add_page()
        y = 80
    y += 16
    for label, value in (
        (spec.labels.ht, spec.ht),
        (spec.labels.tva, spec.tva),
        (spec.labels.ttc, spec.ttc),
    ):
        _text(pdf, 330, y, label, bold=label == spec.labels.ttc)
        _text(pdf, 480, y, spec.amount_fmt(value), bold=label == spec.labels.ttc)
        y += 16
    if spec.terms:
        _text(pdf, 40, y + 20, spec.terms, 9)
    footer = spec.seller
    parts = [footer.name]
    if footer.siret:
        parts.append(f"SIRET {footer.siret}")
    if footer.vat:
        parts.append(f"{'VAT' if spec.english else 'TVA'} : {footer.vat}")
    if footer.email:
        parts.append(footer.email)
    _text(pdf, 40, 815, "  -  ".join(parts), 7)
    return bytes(pdf.output())


def scanned(pdf_bytes: bytes, dpi: int = 200) -> bytes:
    """The same pages as images only (no text layer), as a scanner would produce them."""
    import pypdfium2

    source = pypdfium2.PdfDocument(pdf_bytes)
    out = _pdf()
    try:
        for page in source:
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            out.add_page()
            out.image(buffer, x=0, y=0, w=out.w, h=out.h)
    finally:
        source.close()
    return bytes(out.output())


DANONE = siret_from("552032530064")
ENGIE = "54210765113030"

SELLER_FR = Party(
    "Atelier Numérique SARL",
    "12 rue des Lilas",
    "69003",
    "Lyon",
    siret=siret_from("81234567000"[:8] + "0019"),
    vat=None,
    email="compta@atelier-numerique.fr",
)
SELLER_FR.vat = vat_for_siren(SELLER_FR.siret or "")
SELLER_EN = Party(
    "Brightline Consulting Ltd",
    "221 Baker Street",
    "NW1 6XE",
    "London",
    email="accounts@brightline.co.uk",
)


def _debtor(name: str, seed: str, city: str, postal: str, line1: str, **kw: Any) -> Party:
    siret = siret_from(seed)
    return Party(name, line1, postal, city, siret=siret, vat=vat_for_siren(siret), **kw)


ITEMS = [
    ("Développement du site vitrine", 1, Decimal("2400.00")),
    ("Maintenance mensuelle", 3, Decimal("150.00")),
]
EN_ITEMS = [
    ("Strategy workshop", 2, Decimal("1250.00")),
    ("Follow-up report", 1, Decimal("480.50")),
]


def corpus() -> list[Spec]:
    """Every invoice of the corpus (scanned ones flagged)."""
    specs = [
        Spec(
            "fr_two_column",
            SELLER_FR,
            _debtor(
                "Boulangerie Martin SAS",
                "41234567" + "0012",
                "Paris",
                "75011",
                "8 avenue Parmentier",
                email="factures@boulangerie-martin.fr",
                phone="01 43 55 66 77",
            ),
            ["F-2026-0042"],
            "2026-09-15",
            "2026-10-15",
            ITEMS,
            issue_text="15/09/2026",
            due_text="15/10/2026",
        ),
        Spec(
            "fr_terms_fin_de_mois",
            SELLER_FR,
            _debtor(
                "Garage Dupuis SARL",
                "52345678" + "0021",
                "Nantes",
                "44000",
                "3 quai de la Fosse",
                email="contact@garage-dupuis.fr",
                person=("Paul", "Dupuis"),
            ),
            ["2026-118"],
            "2026-08-03",
            None,
            [("Audit de sécurité informatique", 1, Decimal("1800.00"))],
            labels=Labels(number="N° de facture", issue="Date"),
            issue_text="3 août 2026",
            terms="Conditions de paiement : 30 jours fin de mois",
            expected_due="2026-09-30",
        ),
        Spec(
            "en_bill_to",
            SELLER_EN,
            _debtor(
                "Hexa Logistique SA",
                "63456789" + "0034",
                "Lille",
                "59000",
                "45 rue Nationale",
                email="ap@hexa-logistique.fr",
                phone="+33 3 20 11 22 33",
            ),
            ["INV-1042"],
            "2026-09-01",
            "2026-10-01",
            EN_ITEMS,
            labels=EN,
            english=True,
            issue_text="September 1, 2026",
            due_text="October 1, 2026",
            amount_fmt=en_amount,
            title="INVOICE",
            header="stacked",
        ),
        Spec(
            "fr_meta_table_net_a_payer",
            SELLER_FR,
            _debtor(
                "Cabinet Rousseau",
                "74567890" + "0045",
                "Bordeaux",
                "33000",
                "19 cours de l'Intendance",
                email="secretariat@cabinet-rousseau.fr",
            ),
            ["FA/2026/0917"],
            "2026-06-30",
            "2026-07-30",
            [("Formation gestion de projet", 2, Decimal("950.00"))],
            labels=Labels(
                number="N° facture",
                issue="Date",
                due="Échéance",
                billed_to="Client",
                ttc="Net à payer",
                ht="Montant HT",
                tva="TVA (20%)",
            ),
            amount_fmt=fr_dot_amount,
            header="meta_table",
            issue_text="30.06.2026",
            due_text="30.07.2026",
        ),
        Spec(
            "fr_several_numbers",
            SELLER_FR,
            _debtor(
                "Imprimerie Lefèvre",
                "85678901" + "0056",
                "Rennes",
                "35000",
                "2 place des Lices",
                email="compta@imprimerie-lefevre.fr",
                phone="02.99.12.34.56",
            ),
            ["F-101", "F-102", "F-103"],
            "2026-05-02",
            "2026-06-01",
            [("Impression de catalogues", 3, Decimal("620.00"))],
            labels=Labels(number="Factures n°"),
            number_text="F-101, F-102 et F-103",
            issue_text="02/05/2026",
            due_text="01/06/2026",
        ),
        Spec(
            "fr_credit_note",
            SELLER_FR,
            _debtor(
                "Boulangerie Martin SAS",
                "41234567" + "0012",
                "Paris",
                "75011",
                "8 avenue Parmentier",
                email="factures@boulangerie-martin.fr",
            ),
            ["AV-2026-007"],
            "2026-10-02",
            "2026-10-02",
            [("Remise commerciale sur maintenance", 1, Decimal("150.00"))],
            labels=Labels(number="Avoir n°", issue="Date de l'avoir", due="Échéance"),
            title="AVOIR",
            issue_text="02/10/2026",
            due_text="02/10/2026",
            expected_warnings={"credit_note"},
        ),
        Spec(
            "fr_multi_page",
            SELLER_FR,
            _debtor(
                "Mairie de Villeneuve",
                "21345678" + "0010",
                "Villeneuve",
                "47300",
                "Place de la République",
                email="finances@villeneuve.fr",
                phone="05 53 40 00 00",
            ),
            ["F-2026-0300"],
            "2026-04-10",
            "2026-05-10",
            [(f"Lot {i:02d} - fournitures de bureau", 2, Decimal("37.50")) for i in range(1, 60)],
            issue_text="10 avril 2026",
            due_text="10 mai 2026",
        ),
        Spec(
            "en_net_30_gbp",
            SELLER_EN,
            _debtor(
                "Vignobles Garnier SCEA",
                "96789012" + "0067",
                "Beaune",
                "21200",
                "7 rue de Lorraine",
                email="office@vignobles-garnier.fr",
            ),
            ["BC-5531"],
            "2026-08-14",
            None,
            [("Export compliance review", 1, Decimal("2200.00"))],
            labels=Labels(
                number="Invoice No.",
                issue="Issue date",
                billed_to="Customer",
                ht="Total (excl. VAT)",
                tva="VAT 20%",
                ttc="Total (incl. VAT)",
                table=("Description", "Qty", "Rate", "Amount"),
            ),
            english=True,
            terms="Payment terms: Net 30",
            amount_fmt=gbp_amount,
            currency="GBP",
            title="INVOICE",
            header="stacked",
            expected_due="2026-09-13",
        ),
        Spec(
            "fr_siren_only",
            SELLER_FR,
            _debtor(
                "Transports Moreau",
                "47890123" + "0078",
                "Marseille",
                "13002",
                "90 boulevard de Paris",
                email="admin@transports-moreau.fr",
                siren_only=True,
            ),
            ["2026/0455"],
            "2026-07-01",
            "2026-07-31",
            [("Location de véhicule utilitaire", 4, Decimal("210.00"))],
            labels=Labels(billed_to="Adressé à"),
            issue_text="01/07/2026",
            due_text="31/07/2026",
        ),
        Spec(
            "fr_totals_mismatch",
            SELLER_FR,
            _debtor(
                "Pharmacie du Centre",
                "58901234" + "0089",
                "Toulouse",
                "31000",
                "1 rue d'Alsace",
                email="pharmacie.centre@example.fr",
            ),
            ["F-2026-0077"],
            "2026-03-05",
            "2026-04-04",
            [("Agencement du comptoir", 1, Decimal("3000.00"))],
            issue_text="05/03/2026",
            due_text="04/04/2026",
            ttc_override=Decimal("3650.00"),
            expected_warnings={"totals_mismatch"},
        ),
        Spec(
            "fr_invalid_siret",
            SELLER_FR,
            Party(
                "Fromagerie Blanc",
                "4 rue du Marché",
                "74000",
                "Annecy",
                siret="12345678901234",
                email="contact@fromagerie-blanc.fr",
            ),
            ["F-2026-0088"],
            "2026-02-01",
            "2026-03-03",
            [("Vitrine réfrigérée", 1, Decimal("4200.00"))],
            issue_text="01/02/2026",
            due_text="03/03/2026",
            expected_warnings={"invalid_siret"},
        ),
        Spec(
            "fr_dates_out_of_order",
            SELLER_FR,
            _debtor(
                "Librairie Vauban",
                "69012345" + "0090",
                "Strasbourg",
                "67000",
                "11 rue des Juifs",
                email="librairie.vauban@example.fr",
            ),
            ["F-2026-0099"],
            "2026-06-20",
            "2026-05-20",
            [("Catalogue de rentrée", 1, Decimal("800.00"))],
            labels=Labels(due="À payer avant le"),
            issue_text="20/06/2026",
            due_text="20/05/2026",
            expected_warnings={"dates_out_of_order"},
        ),
        Spec(
            "fr_montant_ttc_contact",
            SELLER_FR,
            _debtor(
                "Clinique Saint-Roch",
                "31234567" + "0101",
                "Montpellier",
                "34000",
                "560 avenue du Colonel Pavelet",
                email="m.curie@clinique-saint-roch.fr",
                phone="04 67 00 11 22",
                person=("Marie", "Curie"),
            ),
            ["CSR-2026-12"],
            "2026-01-15",
            "2026-02-14",
            [("Contrat de maintenance biomédicale", 1, Decimal("12500.00"))],
            labels=Labels(
                number="Facture N°",
                issue="Date d'émission",
                ht="Montant HT",
                tva="Montant TVA",
                ttc="Montant TTC",
                billed_to="Destinataire",
            ),
            issue_text="15 janvier 2026",
            due_text="14 février 2026",
        ),
        Spec(
            # A name that starts with a label's word ("Client", "Customer") is the name, not a
            # new label: the block under "Facturé à" stopped at it and lost the debtor.
            "fr_debtor_named_like_a_label",
            SELLER_FR,
            _debtor(
                "Client Corp SARL",
                "55203253" + "4006",
                "Paris",
                "75002",
                "12 rue de la Paix",
                email="compta@client-corp.fr",
            ),
            ["F-2026-0077"],
            "2026-09-01",
            "2026-10-01",
            ITEMS,
            issue_text="01/09/2026",
            due_text="01/10/2026",
        ),
    ]
    scans = [
        Spec(**{**spec.__dict__, "name": f"{spec.name}_scanned", "scanned": True})
        for spec in specs
        if spec.name in ("fr_two_column", "en_bill_to")
    ]
    return [*specs, *scans]


def pdf_of(spec: Spec) -> bytes:
    """The PDF bytes of a corpus entry (image-only when scanned)."""
    text = render(spec)
    return scanned(text) if spec.scanned else text
