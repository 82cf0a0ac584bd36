"""The HTTP billing gateway against a real gateway on loopback: what it sends, and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

from debtgraph.domain.payments.billing import Debit, GatewayAnswer
from debtgraph.domain.payments.gateways import HttpGateway
from tests.integration.billing_support import attempts, billing_upload, start
from tests.integration.gateway_support import Gateway, running_gateway

REFUSED_IBAN = "NL91ABNA0417164300"


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
