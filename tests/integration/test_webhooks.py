"""Webhooks end to end: a real receiver on loopback, verified with the standardwebhooks library."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook as StandardWebhook

from debtgraph.domain.core import outbox
from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth.models import OAuthToken
from debtgraph.domain.webhooks import deliveries
from debtgraph.domain.webhooks.models import (
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
)
from debtgraph.domain.webhooks.transport import Sender
from debtgraph.jobs.webhooks import config_of, sweep
from tests.conftest import gql
from tests.integration.cleavr_support import (
    bearer,
    complete_user,
    count,
    create_user,
    creditor_token,
)
from tests.integration.test_receivables import receivable_payload
from tests.integration.webhook_support import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver answering 200."""
    r = await Receiver().start()
    yield r
    await r.stop()


async def _register(client: httpx.AsyncClient, key: str, url: str, events: Any = None) -> Any:
    response = await client.post(
        "/v1/webhooks", json={"url": url, "events": events or ["*"]}, headers=bearer(key)
    )
    assert response.status_code == 201, response.text
    return response.json()


_NUMBERS = iter(range(1, 10_000))


async def _receivable(client: httpx.AsyncClient, key: str, user_id: str) -> Any:
    payload = receivable_payload(user_id)
    payload["invoice"]["numbers"] = [f"INV-{next(_NUMBERS)}"]
    response = await client.post("/v1/receivables", json=payload, headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json()


def _verify(secret: str, got: Any) -> dict[str, Any]:
    """Both signatures, as a receiver checks them."""
    expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert expected in got.headers["cleavr-signature"].split(",")
    return StandardWebhook(secret).verify(got.body, got.headers)  # type: ignore[no-any-return]


async def _attempts(db: Any) -> list[WebhookDeliveryAttempt]:
    async with db() as session:
        rows = await session.scalars(
            select(WebhookDeliveryAttempt).order_by(
                WebhookDeliveryAttempt.delivery_id, WebhookDeliveryAttempt.attempt_number
            )
        )
        return list(rows.all())


async def _delivery(db: Any) -> WebhookDelivery:
    async with db() as session:
        (row,) = (await session.scalars(select(WebhookDelivery))).all()
        return row


async def _deliveries(db: Any) -> list[WebhookDelivery]:
    async with db() as session:
        return list(
            (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
        )


async def test_register_list_rotate_delete_as_the_seed(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver
) -> None:
    acme = await make_platform()
    created = await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    assert created["id"].startswith("whk_")
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["receivable.created"]
    assert created["url"] == receiver.url
    listed = (await client.get("/v1/webhooks", headers=bearer(acme.api_key))).json()
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]
    rotated = await client.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", headers=bearer(acme.api_key)
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created["secret"]
    gone = await client.delete(f"/v1/webhooks/{created['id']}", headers=bearer(acme.api_key))
    assert gone.status_code == 204
    assert (await client.get("/v1/webhooks", headers=bearer(acme.api_key))).json() == []
    again = await client.delete(f"/v1/webhooks/{created['id']}", headers=bearer(acme.api_key))
    assert again.status_code == 404


async def test_idempotency_key_replays_the_creation(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any
) -> None:
    acme = await make_platform()
    headers = {**bearer(acme.api_key), "Idempotency-Key": "k1"}
    body = {"url": receiver.url, "events": ["*"]}
    first = await client.post("/v1/webhooks", json=body, headers=headers)
    second = await client.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await count(db, Webhook) == 1


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"events": ["*"]}, "url", "required"),
        ({"url": "ftp://x.test/", "events": ["*"]}, "url", "invalid_url"),
        ({"url": "https://x.test/"}, "events", "required"),
        ({"url": "https://x.test/", "events": ["nope"]}, "events[0]", "invalid_event"),
        ({"url": "https://x.test/", "events": ["upload.completed"]}, "events[0]", "invalid_event"),
    ],
)
async def test_bad_input_is_refused_with_nothing_written(
    client: httpx.AsyncClient, make_platform: Any, db: Any, body: Any, field: str, code: str
) -> None:
    acme = await make_platform()
    response = await client.post("/v1/webhooks", json=body, headers=bearer(acme.api_key))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["code"] == code
    assert await count(db, Webhook) == 0


async def test_authorization(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any, admin_headers: Any
) -> None:
    acme, other = await make_platform(), await make_platform("Other")
    reader = await make_platform("Reader", scopes=["webhooks:read"])
    body = {"url": receiver.url, "events": ["*"]}
    assert (await client.post("/v1/webhooks", json=body)).status_code == 401
    refused = await client.post("/v1/webhooks", json=body, headers=bearer(reader.api_key))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    operator = await client.post("/v1/webhooks", json=body, headers=admin_headers)
    assert operator.status_code == 409
    created = await _register(client, acme.api_key, receiver.url)
    for path in (f"/v1/webhooks/{created['id']}", f"/v1/webhooks/{created['id']}/rotate-secret"):
        method = client.delete if "rotate" not in path else client.post
        assert (await method(path, headers=bearer(other.api_key))).status_code == 404
    assert (await client.get("/v1/webhooks", headers=bearer(other.api_key))).json() == []
    assert (await client.get("/v1/webhooks")).status_code == 401
    assert await count(db, Webhook) == 1


async def test_an_event_is_delivered_signed_and_logged(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any, drain: Any
) -> None:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    hook = await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    receivable = await _receivable(client, acme.api_key, user["id"])
    await drain()
    (got,) = receiver.received
    payload = _verify(hook["secret"], got)
    assert payload["type"] == "receivable.created"
    assert payload["id"].startswith("evt_")
    assert got.headers["webhook-id"] == payload["id"]
    assert payload["data"]["object"]["id"] == receivable["id"]
    (attempt,) = await _attempts(db)
    assert attempt.status_code == 200
    assert attempt.succeeded
    assert attempt.response_excerpt == "ok"
    assert (await _delivery(db)).status == "succeeded"


async def test_other_platforms_and_unsubscribed_types_get_nothing(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any, drain: Any
) -> None:
    acme, other = await make_platform(), await make_platform("Other")
    user = await create_user(client, acme.api_key)
    await _register(client, other.api_key, receiver.url)
    await _register(client, acme.api_key, receiver.url, ["user.updated"])
    await _receivable(client, acme.api_key, user["id"])
    await drain()
    assert receiver.received == []
    assert await count(db, WebhookDelivery) == 0


async def _failing_setup(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, drain: Any
) -> Any:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    hook = await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    await _receivable(client, acme.api_key, user["id"])
    await drain()
    return acme, hook


async def test_a_500_is_retried_with_backoff(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
    runtime: Any,
) -> None:
    receiver.status = 500
    await _failing_setup(client, make_platform, receiver, drain)
    delivery = await _delivery(db)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at == clock.now() + timedelta(minutes=1)
    services = runtime.services
    assert await sweep({"services": services}) == 0  # not due yet
    clock.advance(timedelta(minutes=1))
    receiver.status = 200
    assert await sweep({"services": services}) == 1
    attempts = await _attempts(db)
    assert [(a.attempt_number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert attempts[0].error == "HTTP 500"
    assert (await _delivery(db)).status == "succeeded"


async def test_a_redirect_is_a_failure_and_is_not_followed(
    client: httpx.AsyncClient, make_platform: Any, db: Any, drain: Any, receiver: Receiver
) -> None:
    target = await Receiver().start()
    receiver.status, receiver.location = 302, target.url
    try:
        await _failing_setup(client, make_platform, receiver, drain)
        (attempt,) = await _attempts(db)
        assert attempt.status_code == 302
        assert not attempt.succeeded
        assert "not followed" in (attempt.error or "")
        assert target.count == 0
    finally:
        await target.stop()


async def test_a_receiver_that_times_out(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, runtime: Any
) -> None:
    slow = await Receiver(delay=2).start()
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    await _register(client, acme.api_key, slow.url, ["receivable.created"])
    # Deliveries are written, but no job sends them: this test sends with a short timeout.
    async with db() as session:
        await session.execute(update(Webhook).values(active=False))
        await session.commit()
    await _receivable(client, acme.api_key, user["id"])
    async with db() as session:
        await session.execute(update(Webhook).values(active=True))
        await session.execute(update(outbox.Event).values(published_at=None))
        await session.commit()
        await outbox.relay(session, runtime.services.bus, clock)
    try:
        async with db() as session:
            sender = Sender(timeout=0.3)
            sent = await deliveries.deliver_batch(
                session, clock, sender, config_of(runtime.services)
            )
            await session.commit()
            await sender.close()
        assert sent == 1
        (attempt,) = await _attempts(db)
        assert attempt.status_code is None
        assert attempt.error == "timeout after 0.3 s"
    finally:
        await slow.stop()


async def test_killed_between_commit_and_delivery_still_delivers_once(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
    runtime: Any,
) -> None:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    hook = await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    async with db() as session:
        # The process dies after the claim's transaction committed, before any job ran: the
        # relay wrote the delivery, and no queue (jobs=None) ever heard of it.
        event = outbox.record_event(
            session,
            clock,
            type="receivable.created",
            object_type="receivable",
            object_id="rcv_x",
            obj={"id": "rcv_x"},
            platform_id=acme.platform.id,
            user_id=await session.scalar(select(User.id).where(User.public_id == user["id"])),
        )
        await session.commit()
        await outbox.relay(session, runtime.services.bus, clock, [event.id])
    # A worker that claimed it and was killed mid-request leaves it leased, then due again.
    async with db() as session:
        await deliveries.claim(session, clock, None)
    clock.advance(deliveries.LEASE)
    assert await sweep({"services": runtime.services}) == 1
    assert await sweep({"services": runtime.services}) == 0
    await drain()
    (got,) = receiver.received
    assert _verify(hook["secret"], got)["id"] == event.public_id
    attempts = await _attempts(db)
    # Attempt 1 died with its worker (never logged); attempt 2 is logged once.
    assert [a.attempt_number for a in attempts] == [2]
    assert attempts[0].succeeded


async def test_a_receiver_down_for_a_day_gets_it_when_back(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
    runtime: Any,
) -> None:
    await receiver.stop()  # down: connections are refused
    port = receiver.port
    _acme, hook = await _failing_setup(client, make_platform, receiver, drain)
    services = runtime.services
    elapsed = timedelta(0)
    while elapsed < timedelta(days=1):
        delivery = await _delivery(db)
        step = delivery.next_attempt_at - clock.now()
        clock.advance(step)
        elapsed += step
        if elapsed < timedelta(days=1):
            await sweep({"services": services})
    back = Receiver(port=port)
    back._server = None
    back._server = await asyncio.start_server(back._serve, "127.0.0.1", port)
    try:
        assert await sweep({"services": services}) == 1
        (got,) = back.received
        _verify(hook["secret"], got)
        attempts = await _attempts(db)
        assert all(not a.succeeded and a.status_code is None for a in attempts[:-1])
        assert attempts[-1].succeeded
        assert [a.attempt_number for a in attempts] == list(range(1, len(attempts) + 1))
        assert len(attempts) == 12  # 1 + retries after 1, 2, 4 … 1024 minutes (~34 hours)
    finally:
        back._server.close()


async def test_given_up_deliveries_disable_a_dead_endpoint_with_a_notice(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
    runtime: Any,
) -> None:
    receiver.status = 500
    acme, hook = await _failing_setup(client, make_platform, receiver, drain)
    services = runtime.services
    for _ in range(deliveries.MAX_ATTEMPTS - 1):
        delivery = await _delivery(db)
        clock.set(delivery.next_attempt_at)
        assert await sweep({"services": services}) == 1
    delivery = await _delivery(db)
    assert delivery.status == "failed"
    assert delivery.attempts_count == deliveries.MAX_ATTEMPTS
    async with db() as session:
        webhook = await session.scalar(select(Webhook))
        notice = await session.scalar(
            select(outbox.Event).where(outbox.Event.type == "webhook.disabled")
        )
    assert webhook is not None
    assert not webhook.active
    assert webhook.disabled_at == clock.now()
    assert notice is not None
    assert notice.object_id == hook["id"]
    listed = (await client.get("/v1/webhooks", headers=bearer(acme.api_key))).json()
    assert listed[0]["active"] is False
    # Replaying onto a disabled endpoint is refused.
    response = await gql(
        client,
        "mutation($id: ID!) { webhookDeliveryReplay(input: {id: $id}) "
        "{ delivery { id } userErrors { code } } }",
        {"id": _gid("WebhookDelivery", delivery.public_id)},
        bearer(acme.api_key),
    )
    assert response["data"]["webhookDeliveryReplay"]["userErrors"][0]["code"] == "webhook_inactive"


def _gid(type_name: str, key: str) -> str:
    from strawberry import relay

    return str(relay.GlobalID(type_name, key))


async def test_after_a_rotation_both_secrets_sign_for_24_hours(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
) -> None:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    hook = await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    rotated = await client.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", headers=bearer(acme.api_key)
    )
    new = rotated.json()["secret"]
    await _receivable(client, acme.api_key, user["id"])
    await drain()
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    _verify(new, got)
    _verify(hook["secret"], got)
    clock.advance(timedelta(hours=24, seconds=1))
    await _receivable(client, acme.api_key, user["id"])
    await drain()
    late = receiver.received[1]
    _verify(new, late)
    with pytest.raises(Exception, match="No matching signature"):
        StandardWebhook(hook["secret"]).verify(late.body, late.headers)
    assert late.headers["cleavr-signature"].count(",") == 0


async def test_graphql_nodes_attempts_and_replay(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    sql_counter: Any,
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    user = await create_user(client, acme.api_key)
    created = await gql(
        client,
        "mutation($input: WebhookCreateInput!) { webhookCreate(input: $input) "
        "{ secret webhook { id webhookId url events } userErrors { field code } } }",
        {"input": {"url": receiver.url, "events": ["receivable.created"]}},
        headers,
    )
    payload = created["data"]["webhookCreate"]
    assert payload["userErrors"] == []
    assert payload["secret"].startswith("whsec_")
    await _receivable(client, acme.api_key, user["id"])
    await _receivable(client, acme.api_key, user["id"])
    await drain()
    query = """{ webhooks { nodes { id deliveries { totalCount nodes { id status eventType
      attempts { attemptNumber statusCode succeeded } webhook { webhookId } } } } } }"""
    with sql_counter:
        body = await gql(client, query, headers=headers)
    statements = sql_counter.count
    (hook,) = body["data"]["webhooks"]["nodes"]
    assert hook["deliveries"]["totalCount"] == 2
    assert [d["status"] for d in hook["deliveries"]["nodes"]] == ["succeeded", "succeeded"]
    assert hook["deliveries"]["nodes"][0]["attempts"] == [
        {"attemptNumber": 1, "statusCode": 200, "succeeded": True}
    ]
    # Statements do not grow with the deliveries listed (auth + webhooks + 3 batched loads).
    await _receivable(client, acme.api_key, user["id"])
    await drain()
    with sql_counter:
        await gql(client, query, headers=headers)
    assert sql_counter.count == statements
    delivery_id = hook["deliveries"]["nodes"][0]["id"]
    replayed = await gql(
        client,
        "mutation($id: ID!) { webhookDeliveryReplay(input: {id: $id}) "
        "{ delivery { id status } userErrors { code } } }",
        {"id": delivery_id},
        headers,
    )
    assert replayed["data"]["webhookDeliveryReplay"]["userErrors"] == []
    await drain()
    assert len(receiver.received) == 4
    node = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on WebhookDelivery { status attemptsCount } } }",
        {"id": delivery_id},
        headers,
    )
    assert node["data"]["node"] == {"status": "succeeded", "attemptsCount": 2}
    other = await make_platform("Other")
    hidden = await gql(
        client,
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": delivery_id},
        bearer(other.api_key),
    )
    assert hidden["data"]["node"] is None
    assert orjson.loads(receiver.received[0].body)["type"] == "receivable.created"


async def _relay_created(
    session: Any, runtime: Any, clock: Any, platform_id: int, uid: int, object_ids: list[str]
) -> list[outbox.Event]:
    """Commit a receivable.created event per object id and relay them (deliveries written)."""
    events = [
        outbox.record_event(
            session,
            clock,
            type="receivable.created",
            object_type="receivable",
            object_id=object_id,
            obj={"id": object_id},
            platform_id=platform_id,
            user_id=uid,
        )
        for object_id in object_ids
    ]
    await session.commit()
    await outbox.relay(session, runtime.services.bus, clock, [e.id for e in events])
    return events


async def _user_id(db: Any, public: str) -> int:
    async with db() as session:
        found = await session.scalar(select(User.id).where(User.public_id == public))
        assert found is not None
        return int(found)


async def _relayed_to(
    url: str,
    object_ids: list[str],
    client: Any,
    make_platform: Any,
    db: Any,
    clock: Any,
    runtime: Any,
) -> list[outbox.Event]:
    """A platform's webhook at ``url``, and a relayed receivable.created per object id."""
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    await _register(client, acme.api_key, url, ["receivable.created"])
    uid = await _user_id(db, user["id"])
    async with db() as session:
        return await _relay_created(session, runtime, clock, acme.platform.id, uid, object_ids)


async def test_a_revoked_grant_ends_deliveries_even_those_already_queued(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
    runtime: Any,
) -> None:
    acme, other = await make_platform(), await make_platform("Other")
    # A creditor of another platform that connected to acme with receivables:read.
    user = await create_user(client, other.api_key)
    uid = await _user_id(db, user["id"])
    await creditor_token(db, clock, acme.platform.id, uid, "receivables:read")
    await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    await _receivable(client, other.api_key, user["id"])
    await drain()
    assert len(receiver.received) == 1  # within reach through the grant
    # A delivery written while the grant was live, not yet sent when it is revoked.
    async with db() as session:
        await _relay_created(session, runtime, clock, other.platform.id, uid, ["rcv_q"])
        await session.execute(update(OAuthToken).values(revoked_at=clock.now()))
        await session.commit()
    assert await sweep({"services": runtime.services}) == 1
    attempts = await _attempts(db)
    assert attempts[-1].error == "not sent: the event is no longer within reach"
    assert len(receiver.received) == 1
    # And no delivery is written for what happens after.
    before = await count(db, WebhookDelivery)
    await _receivable(client, other.api_key, user["id"])
    await drain()
    assert await count(db, WebhookDelivery) == before


async def test_a_creditor_token_webhook_gets_only_its_creditor(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    drain: Any,
    clock: Any,
) -> None:
    acme = await make_platform()
    ada = await create_user(client, acme.api_key)
    bob = await create_user(client, acme.api_key, complete_user("bob@danone.test"))
    token = await creditor_token(
        db, clock, acme.platform.id, await _user_id(db, ada["id"]), "webhooks:write webhooks:read"
    )
    hook = await _register(client, token, receiver.url, ["receivable.created"])
    await _receivable(client, acme.api_key, bob["id"])
    await _receivable(client, acme.api_key, ada["id"])
    await drain()
    (got,) = receiver.received
    assert _verify(hook["secret"], got)["data"]["object"]["user_id"] == ada["id"]
    bob_token = await creditor_token(
        db, clock, acme.platform.id, await _user_id(db, bob["id"]), "webhooks:write webhooks:read"
    )
    assert (await client.get("/v1/webhooks", headers=bearer(bob_token))).json() == []
    refused = await client.delete(f"/v1/webhooks/{hook['id']}", headers=bearer(bob_token))
    assert refused.status_code == 404
    listed = (await client.get("/v1/webhooks", headers=bearer(token))).json()
    assert [w["id"] for w in listed] == [hook["id"]]


async def test_a_pending_delivery_is_not_replayed(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any, drain: Any
) -> None:
    receiver.status = 500
    acme, _hook = await _failing_setup(client, make_platform, receiver, drain)
    delivery = await _delivery(db)
    response = await gql(
        client,
        "mutation($id: ID!) { webhookDeliveryReplay(input: {id: $id}) "
        "{ delivery { id } userErrors { code } } }",
        {"id": _gid("WebhookDelivery", delivery.public_id)},
        bearer(acme.api_key),
    )
    assert response["data"]["webhookDeliveryReplay"]["userErrors"][0]["code"] == "delivery_pending"
    assert len(await _attempts(db)) == 1


async def test_events_of_one_object_arrive_in_order(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    drain: Any,
    admin_headers: Any,
) -> None:
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    await _register(client, acme.api_key, receiver.url)
    receivable = await _receivable(client, acme.api_key, user["id"])
    started = await gql(
        client,
        "mutation($v: ReceivableIdInput!) { receivableStart(input: $v) "
        "{ receivable { status } userErrors { code } } }",
        {"v": {"id": receivable["id"]}},
        admin_headers,
    )
    assert started["data"]["receivableStart"]["userErrors"] == []
    await drain()
    types = [orjson.loads(r.body)["type"] for r in receiver.received]
    # Two events in one transaction, sent one after the other by the same job.
    assert types == ["receivable.created", "receivable.status_changed", "receivable.in_process"]


async def test_a_grant_to_one_platform_reaches_no_other_platforms_webhooks(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    clock: Any,
    runtime: Any,
) -> None:
    """The creditor granted Granted access; Bystander, with a webhook of its own, must not get
    its events (the grant's platform is the webhook's, not any platform with a webhook)."""
    owner = await make_platform("Owner")
    granted, bystander = await make_platform("Granted"), await make_platform("Bystander")
    uid = await _user_id(db, (await create_user(client, owner.api_key))["id"])
    await creditor_token(db, clock, granted.platform.id, uid, "receivables:read")
    hooks = {
        name: (await _register(client, platform.api_key, receiver.url, ["receivable.created"]))
        for name, platform in (("granted", granted), ("bystander", bystander))
    }
    async with db() as session:
        (event,) = await _relay_created(session, runtime, clock, owner.platform.id, uid, ["rcv_x"])
        delivered_to = set(
            (
                await session.scalars(
                    select(Webhook.public_id)
                    .join(WebhookDelivery, WebhookDelivery.webhook_id == Webhook.id)
                    .where(WebhookDelivery.event_id == event.id)
                )
            ).all()
        )
    assert delivered_to == {hooks["granted"]["id"]}


async def test_a_claim_takes_only_the_oldest_pending_delivery_of_each_object(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    clock: Any,
    runtime: Any,
) -> None:
    objects = ["rcv_a", "rcv_a", "rcv_b", "rcv_a"]
    events = await _relayed_to(receiver.url, objects, client, make_platform, db, clock, runtime)
    async with db() as session:
        first = await deliveries.claim(session, clock, None)
        # The first of rcv_a and the only one of rcv_b; rcv_a's later two wait behind it.
        assert sorted(c.event_id for c in first) == sorted([events[0].id, events[2].id])
        # Still pending under their lease, they hold the others back.
        assert await deliveries.claim(session, clock, None) == []
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([c.id for c in first]))
            .values(status="succeeded", next_attempt_at=None)
        )
        await session.commit()
        second = await deliveries.claim(session, clock, None)
        assert [c.event_id for c in second] == [events[1].id]


async def test_two_workers_never_make_the_same_attempt(
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    clock: Any,
    runtime: Any,
) -> None:
    # Written by the relay, queued to no one: the two "workers" below race for them.
    objects = [f"rcv_{i}" for i in range(30)]
    await _relayed_to(receiver.url, objects, client, make_platform, db, clock, runtime)
    config = config_of(runtime.services)

    async def worker() -> int:
        sender = Sender()
        try:
            async with db() as session:
                sent = await deliveries.deliver_batch(session, clock, sender, config, limit=20)
                await session.commit()
                return sent
        finally:
            await sender.close()

    first, second = await asyncio.gather(worker(), worker())
    # Each claims only what the other did not; what neither got is left for the next round.
    assert 20 <= first + second <= 30
    while await worker():
        pass
    attempts = await _attempts(db)
    assert len(attempts) == 30
    assert len({a.delivery_id for a in attempts}) == 30
    assert all(a.attempt_number == 1 for a in attempts)
    ids = [orjson.loads(r.body)["data"]["object"]["id"] for r in receiver.received]
    assert sorted(ids) == sorted(f"rcv_{i}" for i in range(30))


async def test_one_undeliverable_webhook_does_not_hold_up_the_batch(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any, drain: Any
) -> None:
    # A secret that no longer decrypts (SECRET_KEY changed) used to raise out of the batch:
    # nothing was recorded and every delivery of the batch, of any tenant, came back later.
    acme, other = await make_platform(), await make_platform("Other")
    broken = await _register(client, acme.api_key, receiver.url, ["receivable.created"])
    await _register(client, other.api_key, receiver.url, ["receivable.created"])
    async with db() as session:
        await session.execute(
            update(Webhook)
            .where(Webhook.public_id == broken["id"])
            .values(secret_encrypted="not-a-fernet-token")
        )
        await session.commit()
    acme_user = await create_user(client, acme.api_key)
    other_user = await create_user(client, other.api_key, complete_user("bo@danone.test"))
    await _receivable(client, acme.api_key, acme_user["id"])
    await _receivable(client, other.api_key, other_user["id"])
    await drain()
    assert len(receiver.received) == 1
    async with db() as session:
        rows = (
            await session.execute(
                select(Webhook.public_id, WebhookDelivery.status, WebhookDeliveryAttempt)
                .join(WebhookDelivery, WebhookDelivery.webhook_id == Webhook.id)
                .join(
                    WebhookDeliveryAttempt,
                    WebhookDeliveryAttempt.delivery_id == WebhookDelivery.id,
                )
            )
        ).all()
    by_hook = {public: (status, attempt) for public, status, attempt in rows}
    assert len(rows) == 2
    status, attempt = by_hook[broken["id"]]
    assert status == "pending"  # retried with backoff like any failed attempt
    assert not attempt.succeeded
    assert attempt.status_code is None
    assert attempt.error.startswith("not sent: InvalidToken")
    ((good_status, good),) = [v for k, v in by_hook.items() if k != broken["id"]]
    assert good_status == "succeeded"
    assert good.succeeded


async def test_a_late_answer_to_a_claim_whose_lease_ended_changes_nothing(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, runtime: Any
) -> None:
    # A stalled worker's attempt outlives its lease, and another worker claims the delivery.
    # The stalled attempt's failure, recorded while the other holds the delivery, used to move
    # it on (here, being the run's last try, to `failed`).
    held = asyncio.Event()
    slow = await Receiver(hold=held).start()
    stalled_sender, sender = Sender(timeout=1.0), Sender()
    try:
        await _relayed_to(slow.url, ["rcv_a"], client, make_platform, db, clock, runtime)
        async with db() as session:
            await session.execute(
                update(WebhookDelivery).values(run_attempts=deliveries.MAX_ATTEMPTS - 1)
            )
            await session.commit()
        config = config_of(runtime.services)

        async def deliver(with_sender: Sender) -> int:
            async with db() as session:
                return await deliveries.deliver_batch(session, clock, with_sender, config)

        stalled = asyncio.create_task(deliver(stalled_sender))
        await slow.wait_for(1, 10)
        clock.advance(deliveries.LEASE + timedelta(seconds=1))
        slow.hold = second_hold = asyncio.Event()  # the second worker's request waits too
        second = asyncio.create_task(deliver(sender))
        await slow.wait_for(2, 10)
        assert slow.count == 2
        assert await stalled == 1  # its request timed out; its failure is recorded
        delivery = await _delivery(db)
        # Still the second worker's: pending under its lease, its attempt number.
        assert (delivery.status, delivery.attempts_count) == ("pending", 2)
        assert delivery.next_attempt_at == clock.now() + deliveries.LEASE
        second_hold.set()
        assert await second == 1
        delivery = await _delivery(db)
        assert delivery.status == "succeeded"
        assert delivery.delivered_at is not None
        assert delivery.next_attempt_at is None
        attempts = await _attempts(db)
        # Both attempts happened and are logged as they went.
        assert [(a.attempt_number, a.succeeded) for a in attempts] == [(1, False), (2, True)]
        assert attempts[0].error == "timeout after 1 s"
    finally:
        held.set()
        if slow.hold is not None:
            slow.hold.set()
        await stalled_sender.close()
        await sender.close()
        await slow.stop()


async def test_a_2xx_ends_a_delivery_failed_while_it_was_in_flight(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, runtime: Any
) -> None:
    # Its endpoint is disabled (its pending deliveries failed) while the request is out; the
    # receiver then answers 2xx: it has the event, and the delivery says so.
    held = asyncio.Event()
    slow = await Receiver(hold=held).start()
    sender = Sender()
    try:
        await _relayed_to(slow.url, ["rcv_a"], client, make_platform, db, clock, runtime)

        async def deliver() -> int:
            async with db() as session:
                return await deliveries.deliver_batch(
                    session, clock, sender, config_of(runtime.services)
                )

        run = asyncio.create_task(deliver())
        await slow.wait_for(1, 10)
        async with db() as session:
            # What _disable_dead writes.
            await session.execute(update(Webhook).values(active=False))
            await session.execute(
                update(WebhookDelivery).values(status="failed", next_attempt_at=None)
            )
            await session.commit()
        held.set()
        assert await run == 1
        delivery = await _delivery(db)
        assert delivery.status == "succeeded"
        assert delivery.delivered_at is not None
    finally:
        held.set()
        await sender.close()
        await slow.stop()


async def test_an_attempt_whose_turn_comes_too_late_for_its_lease_is_not_made(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    clock: Any,
    runtime: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One request at a time, and the process stalls on the first: by the second's turn less
    # than an attempt's time is left of its lease. Sent anyway, it could be claimed and sent
    # by another worker at the same time; it is given back instead, unsent.
    monkeypatch.setattr(deliveries, "CONCURRENCY", 1)
    held = asyncio.Event()
    slow = await Receiver(hold=held).start()
    sender = Sender()
    try:
        await _relayed_to(slow.url, ["rcv_a", "rcv_b"], client, make_platform, db, clock, runtime)
        config = config_of(runtime.services)

        async def deliver() -> int:
            async with db() as session:
                return await deliveries.deliver_batch(session, clock, sender, config)

        run = asyncio.create_task(deliver())
        await slow.wait_for(1, 10)
        left = timedelta(seconds=deliveries.ATTEMPT_SECONDS) - timedelta(seconds=1)
        clock.advance(deliveries.LEASE - left)
        held.set()
        assert await run == 1  # one attempt made; the other given back
        assert slow.count == 1
        rows = await _deliveries(db)
        sent, given_back = sorted(rows, key=lambda d: d.status != "succeeded")
        assert sent.status == "succeeded"
        assert given_back.status == "pending"
        # As if never claimed: due now, its attempt number and backoff step unused.
        assert (given_back.attempts_count, given_back.run_attempts) == (0, 0)
        assert given_back.next_attempt_at == clock.now()
        assert [a.delivery_id for a in await _attempts(db)] == [sent.id]
        assert await sweep({"services": runtime.services}) == 1
        assert slow.count == 2
        attempts = await _attempts(db)
        assert [(a.delivery_id, a.attempt_number, a.succeeded) for a in attempts] == sorted(
            [(sent.id, 1, True), (given_back.id, 1, True)]
        )
    finally:
        held.set()
        await sender.close()
        await slow.stop()


async def test_a_run_whose_every_claim_is_given_back_counts_no_attempt(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, runtime: Any
) -> None:
    # A sender whose deadline no lease covers: each claim is given back unused. Counted as
    # sent, the deliver job (which loops while a run makes attempts) never ended.
    receiver = await Receiver().start()
    sender = Sender(timeout=deliveries.LEASE.total_seconds())
    try:
        await _relayed_to(receiver.url, ["rcv_a"], client, make_platform, db, clock, runtime)
        async with db() as session:
            config = config_of(runtime.services)
            assert await deliveries.deliver_batch(session, clock, sender, config) == 0
    finally:
        await sender.close()
        await receiver.stop()
    assert receiver.count == 0
    delivery = await _delivery(db)
    assert (delivery.status, delivery.attempts_count, delivery.run_attempts) == ("pending", 0, 0)


async def test_a_run_takes_successors_only_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
    client: httpx.AsyncClient,
    make_platform: Any,
    receiver: Receiver,
    db: Any,
    clock: Any,
    runtime: Any,
) -> None:
    # Past RUN_SECONDS an object's next delivery is left due for a fresh run (fresh URL checks)
    # instead of keeping this one going: with a steady stream of events it never ended.
    await _relayed_to(receiver.url, ["rcv_a", "rcv_a"], client, make_platform, db, clock, runtime)
    config = config_of(runtime.services)
    monkeypatch.setattr(deliveries, "RUN_SECONDS", 0)
    sender = Sender()
    try:
        async with db() as session:
            assert await deliveries.deliver_batch(session, clock, sender, config) == 1
        rows = await _deliveries(db)
        assert [(d.status, d.attempts_count) for d in rows] == [("succeeded", 1), ("pending", 0)]
        assert rows[1].next_attempt_at <= clock.now()  # due at once
        monkeypatch.setattr(deliveries, "RUN_SECONDS", deliveries.LEASE.total_seconds())
        async with db() as session:
            assert await deliveries.deliver_batch(session, clock, sender, config) == 1
    finally:
        await sender.close()
    assert receiver.count == 2


async def test_a_key_replays_only_to_its_platform_and_to_tokens_holding_the_scopes(
    client: httpx.AsyncClient, make_platform: Any, receiver: Receiver, db: Any, clock: Any
) -> None:
    # A creditor's tokens of two platforms were one caller: the second platform's token, read
    # only, got the first one's webhook and its signing secret back by reusing the key.
    acme, globex = await make_platform(), await make_platform()
    ada = await create_user(client, acme.api_key)
    user_id = await _user_id(db, ada["id"])

    async def token(platform: Any, scopes: str) -> dict[str, str]:
        value = await creditor_token(db, clock, platform.platform.id, user_id, scopes)
        return {**bearer(value), "Idempotency-Key": "hook-1"}

    body = {"url": receiver.url, "events": ["*"]}
    WRITE, READ = "webhooks:write webhooks:read", "receivables:read"  # noqa: N806
    first = await client.post("/v1/webhooks", json=body, headers=await token(acme, WRITE))
    assert first.status_code == 201, first.text
    # Another platform's token, without the scope: refused as a fresh request would be.
    refused = await client.post("/v1/webhooks", json=body, headers=await token(globex, READ))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert "idempotent-replayed" not in refused.headers
    # The same platform's later token without the scope: the replay asks the scope again.
    narrower = await client.post("/v1/webhooks", json=body, headers=await token(acme, READ))
    assert narrower.status_code == 403, narrower.text
    assert "whsec_" not in narrower.text
    # Another platform's token with the scope: its own key, its own webhook.
    own = await client.post("/v1/webhooks", json=body, headers=await token(globex, WRITE))
    assert own.status_code == 201, own.text
    assert "idempotent-replayed" not in own.headers
    assert own.json()["id"] != first.json()["id"]
    # The same platform's later token holding the scope: the first answer, replayed.
    again = await client.post("/v1/webhooks", json=body, headers=await token(acme, WRITE))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert await count(db, Webhook) == 2
