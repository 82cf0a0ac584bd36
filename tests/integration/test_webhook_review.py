"""Webhook review fixes: one slow endpoint holds back no other webhook, the receivable object
carries REST's amounts (JSON numbers), webhook ids are ``whk_…``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from debtgraph.domain.webhooks import deliveries
from debtgraph.domain.webhooks.models import Webhook, WebhookDelivery
from debtgraph.domain.webhooks.transport import Sender
from debtgraph.jobs.webhooks import config_of
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user
from tests.integration.test_webhooks import (
    _receivable,
    _register,
    _relay_created,
    _user_id,
    _verify,
)
from tests.integration.webhook_support import Receiver

# Under the sender's 10 s deadline, and the held endpoint answers only when the test lets it:
# what the fast endpoint gets within this long, it got without waiting for the held one.
FAST_WITHIN = 8.0


@pytest.fixture
async def fast() -> AsyncIterator[Receiver]:
    """An endpoint that answers 200 at once."""
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def slow() -> AsyncIterator[Receiver]:
    """An endpoint that answers 200 only once the test sets ``slow.hold``."""
    r = await Receiver(hold=asyncio.Event()).start()
    yield r
    assert r.hold is not None
    r.hold.set()
    await r.stop()


async def _received(receiver: Receiver, n: int, within: float = FAST_WITHIN) -> list[str]:
    """The event types of the first ``n`` requests, once they arrived (at most ``within`` s)."""
    await receiver.wait_for(n, within)
    return [orjson.loads(r.body)["type"] for r in receiver.received]


async def _statuses(db: Any, hook_id: str) -> list[str]:
    """The webhook's delivery statuses, in event order."""
    async with db() as session:
        rows = await session.scalars(
            select(WebhookDelivery.status)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(Webhook.public_id == hook_id)
            .order_by(WebhookDelivery.event_id)
        )
        return list(rows.all())


async def _operator(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, input: dict[str, Any]
) -> None:
    input_type = {
        "receivableStart": "ReceivableIdInput",
        "receivableDisputeOpen": "ReceivableReasonInput",
        "receivablePaymentRecord": "ReceivablePaymentRecordInput",
    }[name]
    body = await gql(
        client,
        f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ userErrors {{ code }} }} }}",
        {"i": input},
        headers,
    )
    assert body["data"][name]["userErrors"] == [], body


# --- F2: a slow endpoint beside a fast one ----------------------------------------------------


async def test_a_slow_endpoint_does_not_hold_back_another_webhooks_events(
    client: httpx.AsyncClient,
    make_platform: Any,
    admin_headers: dict[str, str],
    db: Any,
    drain: Any,
    fast: Receiver,
    slow: Receiver,
) -> None:
    # The review's reproduction: two endpoints of the same events, one of them not answering.
    # The fast one's first delivery stayed pending until the slow one's ended (recorded with
    # the batch), so the order rule held every later event of the receivable back as long.
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    fast_hook = await _register(client, acme.api_key, fast.url)
    slow_hook = await _register(client, acme.api_key, slow.url)
    receivable = await _receivable(client, acme.api_key, user["id"])
    await _operator(client, admin_headers, "receivableStart", {"id": receivable["id"]})
    await _operator(
        client, admin_headers, "receivableDisputeOpen", {"id": receivable["id"], "reason": "x"}
    )
    in_order = [
        "receivable.created",
        "receivable.status_changed",
        "receivable.in_process",
        "receivable.status_changed",
        "receivable.disputed",
    ]
    assert await _received(fast, len(in_order)) == in_order
    for got in fast.received:
        _verify(fast_hook["secret"], got)
    # Each was claimed once the one before it was recorded (the last may still be recording).
    assert (await _statuses(db, fast_hook["id"]))[:-1] == ["succeeded"] * (len(in_order) - 1)
    # Meanwhile the slow endpoint has its first event, unanswered; the rest wait behind it.
    assert [orjson.loads(r.body)["type"] for r in slow.received] == in_order[:1]
    assert await _statuses(db, slow_hook["id"]) == ["pending"] * len(in_order)
    assert slow.hold is not None
    slow.hold.set()
    await drain()
    assert await _received(slow, len(in_order)) == in_order
    for hook in (fast_hook, slow_hook):
        assert await _statuses(db, hook["id"]) == ["succeeded"] * len(in_order)
    assert len(fast.received) == len(in_order)


async def test_the_next_event_of_an_object_goes_out_in_the_run_that_sent_the_last(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    clock: Any,
    runtime: Any,
    fast: Receiver,
    slow: Receiver,
) -> None:
    # The job queued for an object's next event may claim before the previous delivery is
    # recorded, find it still pending, and end with nothing sent: the run that recorded it
    # sends the next one itself, without waiting for the slow endpoint it is also serving.
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    await _register(client, acme.api_key, fast.url, ["receivable.created"])
    await _register(client, acme.api_key, slow.url, ["receivable.created"])
    uid = await _user_id(db, user["id"])
    async with db() as session:
        # Relayed with no job queued: only the run below sends anything.
        events = await _relay_created(
            session, runtime, clock, acme.platform.id, uid, ["rcv_a", "rcv_a", "rcv_a"]
        )
    sender = Sender()
    try:
        async with db() as session:
            run = asyncio.create_task(
                deliveries.deliver_batch(session, clock, sender, config_of(runtime.services))
            )
            try:
                assert len(await _received(fast, 3)) == 3
                assert not run.done()  # still waiting on the slow endpoint's first answer
                assert len(slow.received) == 1
            finally:
                assert slow.hold is not None
                slow.hold.set()
            assert await run == 6
    finally:
        await sender.close()
    expected = [e.public_id for e in events]
    assert [orjson.loads(r.body)["id"] for r in fast.received] == expected
    assert [orjson.loads(r.body)["id"] for r in slow.received] == expected


# --- F3: the receivable object as REST shows it -----------------------------------------------


async def test_a_receivable_webhook_object_has_rests_amounts(
    client: httpx.AsyncClient,
    make_platform: Any,
    admin_headers: dict[str, str],
    drain: Any,
    fast: Receiver,
) -> None:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    hook = await _register(client, acme.api_key, fast.url)
    receivable = await _receivable(client, acme.api_key, user["id"])
    await _operator(client, admin_headers, "receivableStart", {"id": receivable["id"]})
    await _operator(
        client, admin_headers, "receivablePaymentRecord", {"id": receivable["id"], "amount": "200"}
    )
    await drain()
    last = fast.received[-1]
    # Signed as sent: the bytes with numbers are the bytes the signatures cover.
    payload = _verify(hook["secret"], last)
    assert payload["type"] == "receivable.payment_received"
    shown = (
        await client.get(f"/v1/receivables/{receivable['id']}", headers=bearer(acme.api_key))
    ).json()
    obj = payload["data"]["object"]
    assert obj["amount"] == shown["amount"] == 1200.0
    assert obj["recovery_progress"] == shown["recovery_progress"]
    assert obj["recovery_progress"]["amount_recovered"] == 200.0
    assert obj["recovery_progress"]["amount_remaining"] == 1000.0
    assert {k: v for k, v in obj.items() if k != "object"} == {
        k: shown[k] for k in obj if k in shown
    }
    assert b'"amount":1200.0' in last.body
    # The first event carried numbers too, at the figures of its time.
    created = orjson.loads(fast.received[0].body)["data"]["object"]
    assert created["amount"] == 1200.0
    assert created["recovery_progress"]["amount_recovered"] == 0.0
    assert created["recovery_progress"]["amount_remaining"] == 1200.0


# --- F4: webhook ids ------------------------------------------------------------------------


async def test_new_webhook_ids_are_whk_and_stored_wh_ids_still_work(
    client: httpx.AsyncClient, make_platform: Any, db: Any, fast: Receiver
) -> None:
    acme = await make_platform()
    created = await _register(client, acme.api_key, fast.url)
    assert created["id"].startswith("whk_")
    # A webhook registered before the prefix changed keeps its id: lookups take the whole id.
    legacy = await _register(client, acme.api_key, fast.url)
    old_id = "wh_" + legacy["id"].removeprefix("whk_")
    async with db() as session:
        await session.execute(
            update(Webhook).where(Webhook.public_id == legacy["id"]).values(public_id=old_id)
        )
        await session.commit()
    headers = bearer(acme.api_key)
    listed = (await client.get("/v1/webhooks", headers=headers)).json()
    assert [w["id"] for w in listed] == [created["id"], old_id]
    rotated = await client.post(f"/v1/webhooks/{old_id}/rotate-secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    node = await gql(
        client,
        "mutation($i: WebhookIdInput!) { webhookDelete(input: $i) { userErrors { code } } }",
        {"i": {"id": old_id}},
        headers,
    )
    assert node["data"]["webhookDelete"]["userErrors"] == [], node
    listed = (await client.get("/v1/webhooks", headers=headers)).json()
    assert [w["id"] for w in listed] == [created["id"]]
