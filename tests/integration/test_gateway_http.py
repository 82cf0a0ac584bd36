"""The HTTP billing gateway against a real gateway on loopback: what it sends, and refusals."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from debtgraph.domain.payments.billing import Debit, GatewayAnswer
from debtgraph.domain.payments.gateways import GatewayRefusedBatch, HttpGateway, sign_callback
from tests.integration.billing_support import NS, attempts, billing_upload, pain002, start
from tests.integration.gateway_support import Gateway, running_gateway

REFUSED_IBAN = "NL91ABNA0417164300"
SECRET = "whsec_" + base64.b64encode(b"test billing callback secret 32b").decode()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway() as served:
        yield served


def _debit(n: int, iban: str = "ES9121000418450200051332") -> Debit:
    return Debit(f"TXN-{n}", iban, None, f"Ana Garcia {n}", Decimal("150.00"), "EUR", 1)


async def test_the_debits_are_posted_with_the_key_and_merchant_account(gateway: Gateway) -> None:
    assert await HttpGateway(gateway.url, "key-1", "MID-9").submit([_debit(1)]) == []
    (call,) = gateway.calls
    assert call["authorization"] == "Bearer key-1"
    assert call["mid_reference"] == "MID-9"
    assert call["debits"] == [
        {
            "transaction_id": "TXN-1", "iban": "ES9121000418450200051332", "bic": None,
            "name": "Ana Garcia 1", "amount": "150.00", "currency": "EUR", "attempt_number": 1,
        }
    ]  # fmt: skip
    assert await HttpGateway(gateway.url, "key-1", "MID-9").submit([]) == []
    assert len(gateway.calls) == 1


async def test_one_refused_debit_costs_only_that_debit(gateway: Gateway) -> None:
    gateway.refused_ibans.add(REFUSED_IBAN)
    debits = [_debit(n, REFUSED_IBAN if n == 5 else "ES9121000418450200051332") for n in range(8)]
    answers = await HttpGateway(gateway.url, "key-1", "MID-9").submit(debits)
    assert answers == [
        GatewayAnswer(
            "TXN-5",
            "error",
            error_message="The gateway refused the debit (HTTP 422): "
            f'{{"error":"invalid creditor account for {REFUSED_IBAN}"}}',
        )
    ]
    # Every other debit was accepted exactly once; the split asked O(log n) times, not n.
    assert sorted(gateway.accepted) == sorted(f"TXN-{n}" for n in range(8) if n != 5)
    assert len(gateway.calls) <= 1 + 2 * 3


async def test_a_transaction_the_gateway_has_already_counts_as_sent(gateway: Gateway) -> None:
    # The sweep resending a batch a failed job had partly sent: the gateway answers 409 for
    # what it has; those are not refusals (an error would be retried as a new transaction).
    gateway.known.update({"TXN-1", "TXN-2"})
    assert (
        await HttpGateway(gateway.url, "key-1", "MID-9").submit([_debit(n) for n in range(4)]) == []
    )
    assert sorted(gateway.accepted) == ["TXN-0", "TXN-3"]


async def test_a_gateway_refusing_every_debit_refuses_the_batch(gateway: Gateway) -> None:
    gateway.refused_ibans.add(REFUSED_IBAN)
    gateway.refusal_size = 1_000_000  # only the opening of a refusal is read
    debits = [_debit(n, REFUSED_IBAN) for n in range(500)]
    with pytest.raises(GatewayRefusedBatch, match="more than 10 debits"):
        await HttpGateway(gateway.url, "key-1", "MID-9").submit(debits)
    # It stopped at the eleventh refused debit, not after 999 requests.
    assert len(gateway.calls) < 100


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
async def test_other_refusals_raise_so_the_batch_stays_unsent(
    gateway: Gateway, status: int
) -> None:
    gateway.status = status
    with pytest.raises(httpx.HTTPStatusError):
        await HttpGateway(gateway.url, "key-1", "MID-9").submit([_debit(1), _debit(2)])
    assert len(gateway.calls) == 1  # not split: nothing about the debits was refused


async def test_an_unreachable_gateway_raises() -> None:
    with running_gateway() as gone:
        url = gone.url
    with pytest.raises(httpx.TransportError):
        await HttpGateway(url, "key-1", "MID-9").submit([_debit(1)])


@pytest.fixture
def settings(settings: Any, gateway: Gateway) -> Any:
    """The app sends its debits to the loopback gateway."""
    gateway.refused_ibans.add(REFUSED_IBAN)
    return replace(
        settings,
        billing_gateway_url=gateway.url,
        billing_gateway_api_key="key-1",
        billing_gateway_mid="MID-9",
        billing_callback_secret=SECRET,
    )


async def test_billing_through_the_http_gateway(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, gateway: Gateway
) -> None:
    rows = [
        ("Ana Garcia", "ES9121000418450200051332", "150.00"),
        ("Dan Refused", REFUSED_IBAN, "33.00"),
        ("Eva Fine", "DE89370400440532013000", "40.00"),
    ]
    upload_id = await billing_upload(client, admin_headers, rows)
    body = await start(client, admin_headers, upload_id)
    assert body["data"]["billingStart"]["userErrors"] == [], body
    await drain()
    listed = await attempts(client, admin_headers, upload_id=upload_id)
    statuses = sorted((a["status"], a["mid_reference"]) for a in listed)
    # The two accepted debits wait for the gateway's callback; the refused one is an error now.
    assert statuses == [("error", "MID-9"), ("pending", "MID-9"), ("pending", "MID-9")], listed
    (refused,) = [a for a in listed if a["status"] == "error"]
    assert refused["error_message"].startswith("The gateway refused the debit (HTTP 422)")
    assert refused["can_retry"] is True
    assert len(gateway.accepted) == 2


def _callback(clock: Any, answers: list[dict[str, Any]], message_id: str = "msg_1") -> Any:
    """A callback body and its signed headers, as the gateway sends them."""
    body = json.dumps({"answers": answers}).encode()
    stamp = int(clock.now().timestamp())
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_callback(SECRET, message_id, stamp, body),
    }
    return body, headers


async def _sent_through_the_gateway(
    client: httpx.AsyncClient, headers: dict[str, str], drain: Any
) -> list[dict[str, Any]]:
    """An upload billed through the loopback gateway: its attempts, sent and awaiting answers."""
    rows = [
        ("Ana Garcia", "ES9121000418450200051332", "150.00"),
        ("Eva Fine", "DE89370400440532013000", "40.00"),
        ("Ida Later", "FR1420041010050500013M02606", "20.00"),
    ]
    upload_id = await billing_upload(client, headers, rows)
    assert (await start(client, headers, upload_id))["data"]["billingStart"]["userErrors"] == []
    await drain()
    listed = await attempts(client, headers, upload_id=upload_id)
    assert {(a["status"], a["mid_reference"]) for a in listed} == {("pending", "MID-9")}
    return listed


async def test_signed_gateway_callback(
    client: httpx.AsyncClient, admin_headers: dict[str, str], clock: Any, drain: Any
) -> None:
    sent = await _sent_through_the_gateway(client, admin_headers, drain)
    answer = {"transaction_id": sent[0]["transaction_id"], "status": "approved"}
    body, good = _callback(clock, [{**answer, "unique_id": "EMG-XYZ789"}])
    forged = {
        **good,
        "webhook-signature": sign_callback(
            "whsec_" + base64.b64encode(b"w" * 32).decode(), "msg_1", 1, body
        ),
    }
    refused = await client.post("/api/billing/callback", content=body, headers=forged)
    assert refused.status_code == 422
    assert refused.json()["errors"] == {"signature": ["The callback signature is invalid."]}
    stale = {**good, "webhook-timestamp": str(int(time.time()) - 10**6)}
    assert (
        await client.post("/api/billing/callback", content=body, headers=stale)
    ).status_code == 422
    accepted = await client.post("/api/billing/callback", content=body, headers=good)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"] == {"settled": 1}
    again = await client.post("/api/billing/callback", content=body, headers=good)
    assert again.json()["data"] == {"settled": 0}
    (row,) = await attempts(client, admin_headers, status="approved")
    assert (row["transaction_id"], row["unique_id"]) == (answer["transaction_id"], "EMG-XYZ789")

    # A reference another attempt keeps, or one over 35 characters, is refused; nothing changes.
    for n, unique_id in enumerate(("EMG-XYZ789", "R" * 36)):
        second = {"transaction_id": sent[1]["transaction_id"], "status": "approved"}
        body, headers = _callback(clock, [{**second, "unique_id": unique_id}], f"msg_ref_{n}")
        callback = await client.post("/api/billing/callback", content=body, headers=headers)
        assert callback.status_code == 422, callback.text
        assert list(callback.json()["errors"]) == ["unique_id"]
    assert len(await attempts(client, admin_headers, status="pending")) == 2


async def test_an_answer_settles_only_attempts_sent_its_way(
    client: httpx.AsyncClient, admin_headers: dict[str, str], clock: Any, drain: Any
) -> None:
    sent = await _sent_through_the_gateway(client, admin_headers, drain)
    in_file = await billing_upload(client, admin_headers, [("Ola Filed", REFUSED_IBAN, "9.00")])
    exported = await client.post(
        f"/api/admin/uploads/{in_file}/sepa/pain008", headers=admin_headers
    )
    assert exported.status_code == 200, exported.text
    msg_id = ET.fromstring(exported.content).find("p:CstmrDrctDbtInitn/p:GrpHdr/p:MsgId", NS).text
    (filed,) = await attempts(client, admin_headers, upload_id=in_file)

    # The gateway never received the file's debit: its answer about it settles nothing.
    body, headers = _callback(
        clock, [{"transaction_id": filed["transaction_id"], "status": "approved"}]
    )
    answered = await client.post("/api/billing/callback", content=body, headers=headers)
    assert answered.status_code == 200, answered.text
    assert answered.json()["data"] == {"settled": 0}
    # A bank's status report names the file's transactions, not the gateway's.
    report = pain002(msg_id, [(sent[0]["transaction_id"], "ACSC", None)])
    imported = await client.post(
        "/api/admin/billing/pain002",
        files={"file": ("status.xml", report, "application/xml")},
        headers=admin_headers,
    )
    assert imported.status_code == 422, imported.text
    assert imported.json()["errors"]["file"] == [
        f"The status report names unknown transactions: {sent[0]['transaction_id']}."
    ]
    assert {a["status"] for a in await attempts(client, admin_headers)} == {"pending"}


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"webhook-id", b"msg_1"), (b"webhook-timestamp", b"1"), (b"webhook-signature", b"v1,x")],
    ],
    ids=["unsigned", "stale"],
)
async def test_a_callback_refused_by_its_headers_is_answered_without_its_body(
    app: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    # The body was read first: a client declaring 100 KB and sending one byte held the socket
    # (PRODUCT.md §12: nothing is read before the caller is within its limits).
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/billing/callback",
        "raw_path": b"/api/billing/callback",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100000"),
            *headers,
        ],
        "client": ("127.0.0.1", 5555),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 422
