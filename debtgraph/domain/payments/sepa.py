"""SEPA files: pain.008 collections out (sepaxml, XSD-validated), pain.002 status reports in.

pain.008 is written in ``pain.008.001.10``, the newest version sepaxml ships a schema for, with
structured debtor addresses (street, building number, postcode, town, country subdivision,
country) and each attempt's ``transaction_id`` as its EndToEndId, so the bank's pain.002 names
the attempts it settles. sepaxml validates its output against that XSD.

pain.002 is read with defusedxml (no DTDs, entities or external references, hence no network),
after a size check, and only ``pain.002.001.*`` customer payment status reports are accepted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from sepaxml import SepaDD
from sepaxml.validation import ValidationError as SepaValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.errors import DomainValidationError, FieldError
from debtgraph.domain.debtors.csv_reader import normalize_header
from debtgraph.domain.debtors.fields import MANDATE_DATE_COLUMNS, MANDATE_ID_COLUMNS, full_name
from debtgraph.domain.debtors.models import Debtor
from debtgraph.domain.payments import billing
from debtgraph.domain.payments.billing import GatewayAnswer
from debtgraph.domain.payments.models import BillingAttempt, BillingChannel, BillingStatus

PAIN_008_SCHEMA: Final = "pain.008.001.10"
PAIN_002_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:pain.002.001."
ISO_NAMESPACE: Final = re.compile(
    r"^\{urn:iso:std:iso:20022:tech:xsd:([a-z]{4}\.\d{3}\.\d{3}\.\d{2})\}"
)
SEQUENCE_TYPE: Final = "OOFF"
# Characters SEPA allows in references (EPC guidelines' restricted Latin set).
_SEPA_REFERENCE: Final = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]{1,35}")
# pain.002 transaction statuses: rejected, and those meaning the bank took the debit.
REJECTED: Final = "RJCT"
ACCEPTED: Final = frozenset({"ACCP", "ACSC", "ACSP", "ACWC", "ACCC"})


@dataclass(frozen=True, slots=True)
class Creditor:
    """Who a collection is for: name, account, and SEPA creditor identifier."""

    name: str
    iban: str
    bic: str | None
    creditor_id: str


@dataclass(frozen=True, slots=True)
class Mandate:
    """A debtor's direct-debit mandate: its reference and the date it was signed."""

    reference: str
    signed_on: dt.date


def _raw(debtor: Debtor, names: Sequence[str]) -> str | None:
    raw = {normalize_header(str(k)): v for k, v in (debtor.raw_data or {}).items()}
    for name in names:
        value = raw.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return None


def mandate_of(debtor: Debtor) -> Mandate:
    """The mandate the CSV gives (``mandate_reference``, ``mandate_date`` columns), or ours.

    Without those columns the upload is the operator's record of the mandate: reference
    ``DG-{upload}-{debtor}``, signed on the day the row was uploaded. Refused when the columns
    hold a reference SEPA does not allow or a date that is no ISO date.
    """
    reference = _raw(debtor, MANDATE_ID_COLUMNS) or f"DG-{debtor.upload_id}-{debtor.id}"
    if not _SEPA_REFERENCE.fullmatch(reference) or "//" in reference or reference[0] == "/":
        raise _export_error(
            "invalid_mandate",
            f"Debtor {debtor.id} has a mandate reference SEPA does not allow: {reference[:40]!r}.",
        )
    raw_date = _raw(debtor, MANDATE_DATE_COLUMNS)
    if raw_date is None:
        return Mandate(reference, debtor.created_at.date())
    try:
        signed = dt.date.fromisoformat(raw_date)
    except ValueError:
        raise _export_error(
            "invalid_mandate",
            f"Debtor {debtor.id} has a mandate date that is not a date (YYYY-MM-DD).",
        ) from None
    return Mandate(reference, signed)


def _export_error(code: str, message: str) -> DomainValidationError:
    return DomainValidationError([FieldError("upload_id", code, message)])


def _address(debtor: Debtor) -> dict[str, str]:
    fields = {
        "street_name": debtor.street,
        "building_number": debtor.street_number,
        "postcode": debtor.postcode,
        "town": debtor.city,
        "country_subdivision": debtor.province,
        "country": debtor.country,
    }
    limits = {"street_name": 70, "building_number": 16, "postcode": 16, "town": 35}
    limits |= {"country_subdivision": 35, "country": 2}
    return {key: value[: limits[key]] for key, value in fields.items() if value}


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


@dataclass(frozen=True, slots=True)
class Pain008:
    """An exported collection file."""

    message_id: str
    xml: bytes
    transactions: int
    control_sum: Decimal


def build_pain008(
    creditor: Creditor,
    entries: Sequence[tuple[BillingAttempt, Debtor]],
    collection_date: dt.date,
    created_on: dt.date,
) -> Pain008:
    """The pain.008.001.10 file collecting ``entries``, validated against its XSD; made on
    ``created_on`` (no mandate may be signed after the file that presents it)."""
    config: dict[str, Any] = {
        "name": creditor.name,
        "IBAN": creditor.iban,
        "batch": True,
        "creditor_id": creditor.creditor_id,
        "currency": "EUR",
    }
    if creditor.bic:
        config["BIC"] = creditor.bic
    document = SepaDD(config, schema=PAIN_008_SCHEMA, clean=True)
    total = Decimal("0")
    # Whose mandate each reference is, in this file (case aside: banks compare references so):
    # a one-off (OOFF) mandate collects once.
    holders: dict[str, int] = {}
    for attempt, debtor in entries:
        mandate = mandate_of(debtor)
        # What a bank refuses in the file, refused here naming the debtor (outside review):
        # a mandate signed after the file that presents it, one reference for two debtors.
        if mandate.signed_on > created_on:
            raise _export_error(
                "invalid_mandate",
                f"Debtor {debtor.id} has a mandate signed after the file is made "
                f"({mandate.signed_on.isoformat()} > {created_on.isoformat()}).",
            )
        other = holders.setdefault(mandate.reference.upper(), debtor.id)
        if other != debtor.id:
            raise _export_error(
                "invalid_mandate",
                f"Debtors {other} and {debtor.id} have the same mandate reference "
                f"{mandate.reference[:40]!r}: a one-off mandate collects once.",
            )
        payment: dict[str, Any] = {
            "name": full_name(debtor.first_name, debtor.last_name) or "Debtor",
            "IBAN": debtor.iban,
            "amount": _cents(attempt.amount),
            "currency": attempt.currency,
            "type": SEQUENCE_TYPE,
            "collection_date": collection_date,
            "mandate_id": mandate.reference,
            "mandate_date": mandate.signed_on,
            "description": f"Debt {debtor.external_reference or debtor.id}"[:140],
            "endtoend_id": attempt.transaction_id,
            "address": _address(debtor),
        }
        if debtor.bic:
            payment["BIC"] = debtor.bic
        document.add_payment(payment)
        total += attempt.amount
    try:
        xml = document.export(validate=True)
    except SepaValidationError as exc:
        cause = exc.__cause__
        reason = getattr(cause, "reason", None) or str(cause or exc)
        raise _export_error(
            "invalid_file", f"The pain.008 file does not validate: {reason}"
        ) from None
    return Pain008(document.msg_id, xml, len(entries), total)


# --- pain.002 ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """One transaction a status report names."""

    end_to_end_id: str
    status: str
    reason: str | None
    bank_reference: str | None
    # OrgnlTxRef/Amt/InstdAmt, when the report gives it: what the bank says it collected.
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A pain.002 customer payment status report."""

    message_id: str | None
    original_message_id: str | None
    group_status: str | None
    group_reason: str | None
    transactions: list[TransactionStatus]

    def answers(self) -> tuple[list[GatewayAnswer], list[str]]:
        """Answers for the transactions the report settles, and the ids it leaves pending."""
        answers: list[GatewayAnswer] = []
        pending: list[str] = []
        for tx in self.transactions:
            if tx.status == REJECTED:
                answers.append(
                    GatewayAnswer(tx.end_to_end_id, "declined", tx.reason, None, tx.bank_reference)
                )
            elif tx.status in ACCEPTED:
                answers.append(
                    GatewayAnswer(tx.end_to_end_id, "approved", None, None, tx.bank_reference)
                )
            else:
                pending.append(tx.end_to_end_id)
        return answers, pending


def _file_error(code: str, message: str) -> DomainValidationError:
    return DomainValidationError([FieldError("file", code, message)])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _text(element: Element | None, *path: str) -> str | None:
    found = _child(element, *path)
    text = (found.text or "").strip() if found is not None else ""
    return text or None


def parse_pain002(data: bytes, *, max_bytes: int) -> StatusReport:
    """Read a pain.002 status report; anything else is refused with a message saying why."""
    if len(data) > max_bytes:
        raise _file_error("too_large", f"The file is too large: the maximum is {max_bytes} bytes.")
    if not data.strip():
        raise _file_error("not_xml", "The file is empty.")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise _file_error("not_xml", "The file is not XML.") from None
    match = ISO_NAMESPACE.match(root.tag)
    message_type = match.group(1) if match else None
    if _local(root.tag) != "Document" or message_type is None:
        raise _file_error(
            "wrong_message", "The file is not an ISO 20022 document (no Document in its namespace)."
        )
    report = _child(root, "CstmrPmtStsRpt")
    if not message_type.startswith("pain.002.") or report is None:
        raise _file_error(
            "wrong_message",
            f"The file is a {message_type} message, not a pain.002 payment status report.",
        )
    group = _child(report, "OrgnlGrpInfAndSts")
    original_type = _text(group, "OrgnlMsgNmId")
    if original_type is not None and not original_type.startswith("pain.008."):
        raise _file_error(
            "wrong_message",
            f"The status report answers a {original_type} message, not a pain.008 collection.",
        )
    transactions: list[TransactionStatus] = []
    for payment in (c for c in report if _local(c.tag) == "OrgnlPmtInfAndSts"):
        for tx in (c for c in payment if _local(c.tag) == "TxInfAndSts"):
            end_to_end = _text(tx, "OrgnlEndToEndId")
            status = _text(tx, "TxSts") or _text(payment, "PmtInfSts")
            if end_to_end is None or status is None:
                raise _file_error(
                    "invalid_report",
                    "Every TxInfAndSts needs an OrgnlEndToEndId and a TxSts.",
                )
            reason = _reason(tx)
            transactions.append(
                TransactionStatus(
                    end_to_end, status, reason, _text(tx, "AcctSvcrRef"), _report_amount(tx)
                )
            )
    if not transactions:
        raise _file_error("invalid_report", "The status report names no transaction.")
    return StatusReport(
        message_id=_text(report, "GrpHdr", "MsgId"),
        original_message_id=_text(group, "OrgnlMsgId"),
        group_status=_text(group, "GrpSts"),
        group_reason=_reason(group),
        transactions=transactions,
    )


def _report_amount(tx: Element) -> Decimal | None:
    text = _text(tx, "OrgnlTxRef", "Amt", "InstdAmt")
    if text is None:
        return None
    try:
        amount = Decimal(text)
    except ArithmeticError:
        amount = Decimal("NaN")
    digits = text.replace(".", "", 1)
    # ASCII digits only, as ISO 20022's decimal type: Decimal also reads other scripts' digits.
    if not amount.is_finite() or not (digits.isascii() and digits.isdigit()):
        raise _file_error("invalid_report", f"An OrgnlTxRef amount is no amount: {text[:40]!r}.")
    return amount


def _listed(ids: Sequence[str], most: int = 20) -> str:
    """Ids for a message: the first ``most`` of them, and how many more."""
    shown = ", ".join(ids[:most])
    return shown if len(ids) <= most else f"{shown} and {len(ids) - most} more"


def _reason(element: Element | None) -> str | None:
    info = _child(element, "StsRsnInf")
    code = _text(info, "Rsn", "Cd")
    return code[:10] if code else None


def report_summary(answers: Sequence[GatewayAnswer]) -> Mapping[str, int]:
    """How many answers approve and decline."""
    approved = sum(1 for a in answers if a.status == "approved")
    return {"approved": approved, "declined": len(answers) - approved}


# --- The state changes behind the files ---------------------------------------------------------


async def export_collection(
    session: AsyncSession,
    clock: Clock,
    upload_id: int,
    creditor: Creditor,
    collection_date: dt.date,
) -> Pain008:
    """Bill an upload through its bank: new attempts for its billable debtors, plus file
    attempts not yet sent (retries), in one pain.008; they are marked sent with its MsgId.

    Refused, with nothing changed, when there is nothing to collect.
    """
    try:
        await billing.start_billing(session, clock, upload_id, channel=BillingChannel.SEPA_FILE)
    except DomainValidationError as exc:
        if exc.code != "nothing_to_bill":
            raise
    attempts = await billing.lock_attempts(
        session,
        BillingAttempt.upload_id == upload_id,
        BillingAttempt.status == BillingStatus.PENDING.value,
        BillingAttempt.channel == BillingChannel.SEPA_FILE.value,
        BillingAttempt.mid_reference.is_(None),
    )
    if not attempts:
        raise _export_error("nothing_to_bill", billing.NOTHING_TO_BILL)
    debtors = {
        d.id: d
        for d in (
            await session.scalars(
                select(Debtor).where(Debtor.id.in_({a.debtor_id for a in attempts}))
            )
        ).all()
    }
    entries = [(a, debtors[a.debtor_id]) for a in attempts]
    file = build_pain008(creditor, entries, collection_date, clock.today())
    billing.mark_submitted(attempts, file.message_id, clock.now())
    await session.flush()
    return file


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What a pain.002 import settled."""

    report: StatusReport
    settled: list[BillingAttempt]
    pending: list[str]


async def import_status_report(
    session: AsyncSession, clock: Clock, report: StatusReport
) -> ImportResult:
    """Settle the attempts a pain.002 names, all of them sent in the pain.008 it answers
    (``OrgnlMsgId``, their ``mid_reference``); any other, unsettled or settled, named twice or
    with another amount refuses the whole file before anything changes.

    End-to-end ids alone would let a report answering another file, or an attempt never sent
    (a retry not yet exported), settle: the bank answers what it was sent.
    """
    original = report.original_message_id
    if not original:
        raise _file_error(
            "invalid_report",
            "The status report names no original message (OrgnlMsgId): it must answer one of "
            "the pain.008 files exported here.",
        )
    answers, pending = report.answers()
    counted = Counter(tx.end_to_end_id for tx in report.transactions)
    twice = sorted(t for t, n in counted.items() if n > 1)
    if twice:
        raise _file_error(
            "duplicate_transactions",
            f"The status report names transactions more than once: {_listed(twice)}.",
        )
    of_file = (
        BillingAttempt.channel == BillingChannel.SEPA_FILE.value,
        BillingAttempt.mid_reference == original,
    )
    known = {
        a.transaction_id: a
        for a in await billing.lock_named_attempts(session, list(counted), *of_file)
    }
    unknown = sorted(t for t in counted if t not in known)
    if unknown:
        raise _file_error(
            "unknown_transactions",
            # Unknown: none sent in the file the report answers (the message id it names).
            f"The status report names unknown transactions: {_listed(unknown)}.",
        )
    # Transactions the report leaves pending must still be unsettled.
    settled_pending = sorted(t for t in pending if known[t].status != BillingStatus.PENDING)
    if settled_pending:
        raise _file_error(
            "already_settled",
            "The status report leaves pending transactions already settled: "
            f"{_listed(settled_pending)}.",
        )
    mismatched = sorted(
        tx.end_to_end_id
        for tx in report.transactions
        if tx.amount is not None and tx.amount != known[tx.end_to_end_id].amount
    )
    if mismatched:
        raise _file_error(
            "amount_mismatch",
            f"The status report's amounts differ from those collected for: {_listed(mismatched)}.",
        )
    settlement = await billing.settle(
        session, clock, answers, channel=BillingChannel.SEPA_FILE, strict=True, among=of_file[1:]
    )
    return ImportResult(report, settlement.settled, pending)
