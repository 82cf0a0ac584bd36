"""The sandbox's documented answers, the pain.002 reader's refusals (hostile XML included),
mandates, the callback signature and the HTTP gateway's request."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from debtgraph.domain.core.errors import DomainValidationError
from debtgraph.domain.debtors.models import Debtor
from debtgraph.domain.payments.billing import Debit
from debtgraph.domain.payments.gateways import (
    SANDBOX_IBAN_CODES,
    sandbox_answer,
    sign_callback,
    verify_callback,
)
from debtgraph.domain.payments.models import BillingAttempt, BillingStatus, attempt_may_follow
from debtgraph.domain.payments.sepa import mandate_of, parse_pain002

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _debit(iban: str = "ES9121000418450200051332", amount: str = "150.00", n: int = 1) -> Debit:
    return Debit("TXN-1", iban, None, "Ana Garcia", Decimal(amount), "EUR", n)


@pytest.mark.parametrize(
    ("iban", "amount", "attempt", "status", "code"),
    [
        ("ES9121000418450200051332", "150.00", 1, "approved", None),
        ("DE62370400440532013001", "150.00", 1, "declined", "AC04"),
        ("DE35370400440532013002", "150.00", 1, "declined", "AC06"),
        ("DE08370400440532013003", "150.00", 1, "declined", "AG01"),
        ("DE78370400440532013004", "150.00", 1, "declined", "MD01"),
        ("ES9121000418450200051332", "10.91", 3, "declined", "AM04"),
        ("ES9121000418450200051332", "10.92", 1, "declined", "AM04"),
        ("ES9121000418450200051332", "10.92", 2, "approved", None),
        ("ES9121000418450200051332", "10.93", 1, "declined", "MS03"),
        ("ES9121000418450200051332", "10.94", 1, "declined", "MS02"),
        ("ES9121000418450200051332", "10.95", 1, "declined", "MD06"),
        ("ES9121000418450200051332", "10.99", 1, "error", None),
    ],
)
def test_sandbox_answers_as_documented(
    iban: str, amount: str, attempt: int, status: str, code: str | None
) -> None:
    answer = sandbox_answer(_debit(iban, amount, attempt))
    assert (answer.status, answer.error_code) == (status, code)
    # Deterministic: the same debit, the same answer and gateway reference.
    assert sandbox_answer(_debit(iban, amount, attempt)) == answer


def test_every_sepa_code_can_be_produced() -> None:
    produced = set(SANDBOX_IBAN_CODES.values()) | {
        sandbox_answer(_debit(amount=f"1.{c}")).error_code for c in (91, 93, 94, 95)
    }
    assert produced == {"AC04", "AC06", "AG01", "MD01", "AM04", "MS03", "MS02", "MD06"}


def test_the_answers_set_the_attempt_rules() -> None:
    # AM04 is retried, AC04 is not: the model's rule reads the code the sandbox gives.
    retry = BillingAttempt(status=BillingStatus.DECLINED, attempt_number=1, error_code="AM04")
    final = BillingAttempt(status=BillingStatus.DECLINED, attempt_number=1, error_code="AC04")
    assert attempt_may_follow(retry.status, retry.error_code, retry.attempt_number)
    assert not attempt_may_follow(final.status, final.error_code, final.attempt_number)
    assert (final.can_retry, final.is_final) == (False, True)


def _report(body: str, ns: str = "pain.002.001.10") -> bytes:
    return (
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{ns}"><CstmrPmtStsRpt>{body}'
        "</CstmrPmtStsRpt></Document>"
    ).encode()


TX = (
    "<OrgnlGrpInfAndSts><OrgnlMsgId>M1</OrgnlMsgId><OrgnlMsgNmId>pain.008.001.10</OrgnlMsgNmId>"
    "</OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><TxInfAndSts><OrgnlEndToEndId>TXN-A</OrgnlEndToEndId>"
    "<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts>"
    "<TxInfAndSts><OrgnlEndToEndId>TXN-B</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>"
    "<TxInfAndSts><OrgnlEndToEndId>TXN-C</OrgnlEndToEndId><TxSts>PDNG</TxSts></TxInfAndSts>"
    "</OrgnlPmtInfAndSts>"
)


def test_pain002_is_read_into_answers() -> None:
    report = parse_pain002(_report(TX), max_bytes=10_000)
    answers, pending = report.answers()
    assert [(a.transaction_id, a.status, a.error_code) for a in answers] == [
        ("TXN-A", "declined", "AM04"),
        ("TXN-B", "approved", None),
    ]
    assert pending == ["TXN-C"]
    assert report.original_message_id == "M1"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Document>&lol2;</Document>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:1/secret">]><Document>&x;</Document>"""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\x89PNG not xml", "The file is not XML."),
        (BILLION_LAUGHS, "The file is not XML."),
        (EXTERNAL, "The file is not XML."),
        (b"<root/>", "The file is not an ISO 20022 document (no Document in its namespace)."),
        (
            _report("", "pain.008.001.10"),
            "The file is a pain.008.001.10 message, not a pain.002 payment status report.",
        ),
        (
            _report(TX.replace("pain.008.001.10", "pain.001.001.09")),
            "The status report answers a pain.001.001.09 message, not a pain.008 collection.",
        ),
        (_report(""), "The status report names no transaction."),
        (
            # Arabic-Indic digits, which Decimal reads as 150.00 (review).
            _report(
                TX.replace(
                    "<TxSts>ACSC</TxSts>",
                    '<TxSts>ACSC</TxSts><OrgnlTxRef><Amt><InstdAmt Ccy="EUR">'
                    "\u0661\u0665\u0660.\u0660\u0660</InstdAmt></Amt></OrgnlTxRef>",
                )
            ),
            "An OrgnlTxRef amount is no amount: '\u0661\u0665\u0660.\u0660\u0660'.",
        ),
        (b"<a>" + b"x" * 20_000 + b"</a>", "The file is too large: the maximum is 10000 bytes."),
    ],
)
def test_pain002_refusals(data: bytes, message: str) -> None:
    with pytest.raises(DomainValidationError) as refused:
        parse_pain002(data, max_bytes=10_000)
    assert refused.value.first.field == "file"
    assert refused.value.message == message


def _debtor(raw: dict[str, str]) -> Debtor:
    return Debtor(id=7, upload_id=3, raw_data=raw, created_at=NOW)


def test_mandates_come_from_the_csv_or_the_upload() -> None:
    derived = mandate_of(_debtor({}))
    assert (derived.reference, derived.signed_on.isoformat()) == ("DG-3-7", "2026-11-22")
    given = mandate_of(_debtor({"Mandate Reference": "MND-2024/001", "mandate_date": "2024-03-01"}))
    assert (given.reference, given.signed_on.isoformat()) == ("MND-2024/001", "2024-03-01")
    for raw in ({"mandate_reference": "bad{ref}"}, {"mandate_date": "01/03/2024"}):
        with pytest.raises(DomainValidationError) as refused:
            mandate_of(_debtor(raw))
        assert refused.value.code == "invalid_mandate"


# Standard Webhooks secrets: whsec_ and the base64 of the key.
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def test_callback_signature() -> None:
    body = json.dumps({"answers": [{"transaction_id": "TXN-1", "status": "approved"}]}).encode()
    stamp = int(NOW.timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1,old " + sign_callback(SECRET, "msg_1", stamp, body),
    }
    (answer,) = verify_callback(SECRET, headers, body, NOW)
    assert (answer.transaction_id, answer.status) == ("TXN-1", "approved")
    for bad in (
        {**headers, "webhook-signature": sign_callback(OTHER_SECRET, "msg_1", stamp, body)},
        {**headers, "webhook-id": "msg_2"},
        {k: v for k, v in headers.items() if k != "webhook-timestamp"},
    ):
        with pytest.raises(DomainValidationError):
            verify_callback(SECRET, bad, body, NOW)
    with pytest.raises(DomainValidationError):
        verify_callback(SECRET, headers, body + b" ", NOW)
    # A gateway signing with a Standard Webhooks library is heard: the HMAC was keyed with the
    # secret's text rather than the base64-decoded key, and every such callback was refused.
    library = StandardWebhook(SECRET).sign(msg_id="msg_1", timestamp=NOW, data=body.decode())
    (answer,) = verify_callback(SECRET, {**headers, "webhook-signature": library}, body, NOW)
    assert answer.status == "approved"


def test_hostile_callback_headers_and_bodies_are_refused_not_crashes() -> None:
    body = json.dumps({"answers": [{"transaction_id": "TXN-1", "status": "approved"}]}).encode()
    stamp = int(NOW.timestamp())
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_callback(SECRET, "msg_1", stamp, body),
    }
    for bad in (
        {**signed, "webhook-signature": "v1,\u00e9\u00e8"},  # not ASCII (latin-1 decoded)
        {**signed, "webhook-timestamp": "9" * 400},  # would overflow a float comparison
        {**signed, "webhook-timestamp": "9" * 5000},  # int() refuses this many digits
    ):
        with pytest.raises(DomainValidationError):
            verify_callback(SECRET, bad, body, NOW)
    unhashable = json.dumps({"answers": [{"transaction_id": "TXN-1", "status": ["x"]}]}).encode()
    headers = {**signed, "webhook-signature": sign_callback(SECRET, "msg_1", stamp, unhashable)}
    with pytest.raises(DomainValidationError):
        verify_callback(SECRET, headers, unhashable, NOW)
