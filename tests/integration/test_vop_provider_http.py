"""The HTTP VOP provider against a real service on loopback: batches, answers, failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from debtgraph.domain.payments.providers import HttpVopProvider, VopUnavailable, provider_in
from debtgraph.domain.payments.vop import SandboxVopProvider, VopAnswer, VopRequest
from tests.integration.vop_bank_support import Bank, running_bank

IBANS = ["ES9121000418450200051332", "DE89370400440532013000", "NL91ABNA0417164300"]


@pytest.fixture
def bank() -> Iterator[Bank]:
    with running_bank() as served:
        yield served


def _requests() -> list[VopRequest]:
    return [VopRequest(iban, f"Holder {n}") for n, iban in enumerate(IBANS)]


async def test_answers_come_back_in_order_in_batches(bank: Bank) -> None:
    bank.holders[IBANS[1]] = "Someone Else"
    bank.closed.add(IBANS[2])
    provider = HttpVopProvider(bank.url, batch_size=2)
    answers = await provider.check_many(_requests())
    assert answers == [
        VopAnswer("open", "Holder 0"),
        VopAnswer("open", "Someone Else"),
        VopAnswer("closed", None),
    ]
    # Two calls for three requests at two per call, each carrying its slice in order.
    assert [[item["iban"] for item in call] for call in bank.calls] == [IBANS[:2], IBANS[2:]]
    assert await provider.check(IBANS[0], "Ada") == VopAnswer("open", "Ada")


async def test_no_requests_make_no_call(bank: Bank) -> None:
    assert await HttpVopProvider(bank.url).check_many([]) == []
    assert bank.calls == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "The VOP service answered 503."),
        ("garbage", "The VOP service answered with invalid JSON."),
        ("short", "The VOP service answered without one result per request."),
    ],
)
async def test_a_bad_answer_is_unavailable(bank: Bank, mode: str, message: str) -> None:
    bank.mode = mode
    with pytest.raises(VopUnavailable) as caught:
        await HttpVopProvider(bank.url).check_many(_requests())
    assert caught.value.message == message


async def test_a_slow_service_times_out(bank: Bank) -> None:
    bank.mode = "slow"
    with pytest.raises(VopUnavailable) as caught:
        await HttpVopProvider(bank.url, timeout=0.2).check_many(_requests())
    assert "could not be reached" in caught.value.message


async def test_an_unreachable_service_is_unavailable() -> None:
    with running_bank() as gone:
        url = gone.url
    with pytest.raises(VopUnavailable):
        await HttpVopProvider(url, timeout=1).check_many(_requests())


def test_the_sandbox_is_the_default_port() -> None:
    assert isinstance(provider_in({}), SandboxVopProvider)
    with pytest.raises(ValueError, match="batch_size"):
        HttpVopProvider("http://127.0.0.1:1/vop", batch_size=0)
