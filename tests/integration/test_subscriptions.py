"""Live events over WebSocket (graphql-transport-ws and graphql-ws), scoped to the caller."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from debtgraph.domain.core import outbox
from debtgraph.domain.core.events import CATALOGUE
from debtgraph.resolvers import events as resolver_events
from debtgraph.resolvers.events import subscriber_count
from debtgraph.server.app import Runtime

SUBSCRIBE = "subscription { events { id type objectType objectId data } }"


async def emit(
    runtime: Runtime,
    type_: str,
    object_id: str,
    platform_id: int | None = None,
    user_id: int | None = None,
    status: str = "in_process",
) -> str:
    """Commit an event the way a mutation does: outbox row, commit, relay; its object's status
    ``status`` (what a node subscription's row must show for the event to be delivered)."""
    services = runtime.services
    async with services.session_factory() as session:
        event = outbox.record_event(
            session,
            services.clock,
            type=type_,
            object_type=CATALOGUE[type_].object_type,
            object_id=object_id,
            obj={"id": object_id, "status": status},
            previous={"status": "pending"},
            platform_id=platform_id,
            user_id=user_id,
        )
        ids = await outbox.commit(session, services.jobs)
        await outbox.relay(session, services.bus, services.clock, ids)
        return event.public_id


@contextlib.asynccontextmanager
async def socket(app: Any, protocol: str = "graphql-transport-ws") -> AsyncIterator[Any]:
    """A WebSocket to /graphql; entered and left in the test's own task (anyio needs that)."""
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws("/graphql", client, subprotocols=[protocol]) as ws,
    ):
        yield ws


async def _next(ws: Any, timeout: float = 5) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.receive_text(), timeout))
        if message["type"] not in ("ka", "ping", "pong"):
            return message  # type: ignore[no-any-return]


async def _wait_subscribed(runtime: Runtime) -> None:
    for _ in range(200):
        if subscriber_count(runtime.services):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("subscription never reached the bus")


async def test_operator_receives_events_graphql_transport_ws(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    async with socket(app) as ws:
        await ws.send_json(
            {
                "type": "connection_init",
                "payload": {"Authorization": admin_headers["Authorization"]},
            }
        )
        assert (await _next(ws))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await _wait_subscribed(runtime)
        event_id = await emit(runtime, "receivable.status_changed", "rcv_1")
        message = await _next(ws)
        assert message["type"] == "next"
        event = message["payload"]["data"]["events"]
        assert event["id"] == event_id
        assert event["type"] == "receivable.status_changed"
        assert event["data"] == {
            "object": {"id": "rcv_1", "status": "in_process"},
            "previous_attributes": {"status": "pending"},
        }


async def test_type_filter_and_legacy_graphql_ws_protocol(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    async with socket(app, "graphql-ws") as ws:
        await ws.send_json(
            {
                "type": "connection_init",
                "payload": {"authToken": admin_headers["Authorization"][7:]},
            }
        )
        assert (await _next(ws))["type"] == "connection_ack"
        query = 'subscription { events(types: ["upload.completed"]) { type objectId } }'
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": query}})
        await _wait_subscribed(runtime)
        await emit(runtime, "receivable.created", "rcv_skip")
        await emit(runtime, "upload.completed", "15")
        message = await _next(ws)
        assert message["type"] == "data"
        assert message["payload"]["data"]["events"] == {
            "type": "upload.completed",
            "objectId": "15",
        }


async def test_platform_sees_only_its_tenants_events(
    app: Any, runtime: Runtime, make_platform: Any
) -> None:
    mine = await make_platform("Mine")
    other = await make_platform("Other")
    async with socket(app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {mine.api_key}"}}
        )
        assert (await _next(ws))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await _wait_subscribed(runtime)
        await emit(runtime, "receivable.created", "rcv_other", platform_id=other.platform.id)
        await emit(runtime, "receivable.created", "rcv_untenanted")
        await emit(runtime, "receivable.created", "rcv_mine", platform_id=mine.platform.id)
        message = await _next(ws)
        assert message["payload"]["data"]["events"]["objectId"] == "rcv_mine"


async def test_bad_token_is_refused_and_anonymous_cannot_subscribe(
    app: Any,
) -> None:
    async with socket(app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": "Bearer 9|wrong"}}
        )
        with pytest.raises(Exception):  # noqa: B017,PT011  (closed with 4403 Forbidden)
            await _next(ws, timeout=2)

    async with socket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await _next(ws))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        message = await _next(ws)
        assert message["type"] in ("next", "error")
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_platform_sees_events_of_its_users_submitted_through_another_platform(
    app: Any, runtime: Runtime, make_platform: Any, db: Any, clock: Any
) -> None:
    from debtgraph.domain.core.secrets import public_id
    from debtgraph.domain.creditors.models import User

    creator = await make_platform("Creator")
    other = await make_platform("Other")
    async with db() as session:
        user = User(
            public_id=public_id("usr"),
            role="creditor",
            email="cfo@creditor.test",
            status="active",
            platform_id=creator.platform.id,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(user)
        await session.commit()
    async with socket(app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {creator.api_key}"}}
        )
        assert (await _next(ws))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await _wait_subscribed(runtime)
        await emit(runtime, "receivable.created", "rcv_stranger", platform_id=other.platform.id)
        await emit(
            runtime,
            "receivable.created",
            "rcv_of_my_user",
            platform_id=other.platform.id,
            user_id=user.id,
        )
        message = await _next(ws)
        assert message["payload"]["data"]["events"]["objectId"] == "rcv_of_my_user"


async def test_an_event_the_row_has_moved_past_is_not_delivered_as_if_it_showed_it(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # The dispatcher loads the row when it handles an event, which may be after later changes
    # of the row: the event for one status then showed the next, and the next event showed it
    # again (review, under load). An event whose change the row no longer shows is skipped
    # when a later event of the row is on its way; the last one is always delivered, with the
    # row as it is (a row may change without an event: second review).
    from tests.integration.uploads_support import upload

    created = await upload(
        client,
        admin_headers,
        "first_name,last_name,iban,amount\nAna,Garcia,ES9121000418450200051332,150.00\n",
    )
    upload_id = created.json()["data"]["id"]
    listed = await client.get(
        "/api/admin/debtors", params={"upload_id": upload_id}, headers=admin_headers
    )
    (debtor,) = listed.json()["data"]
    assert debtor["status"] == "pending"
    services = runtime.services

    async def told(*changes: tuple[str, str]) -> None:
        # Committed and relayed as a change does: the row itself stays pending.
        async with services.session_factory() as session:
            for status, previous in changes:
                outbox.record_event(
                    session,
                    services.clock,
                    type="debtor.status_changed",
                    object_type="debtor",
                    object_id=str(debtor["id"]),
                    obj={"id": debtor["id"], "upload_id": upload_id, "status": status},
                    previous={"status": previous},
                )
            ids = await outbox.commit(session, services.jobs)
            await outbox.relay(session, services.bus, services.clock, ids)

    shown = {"databaseId": debtor["id"], "status": "PENDING"}
    async with socket(app) as ws:
        await ws.send_json(
            {
                "type": "connection_init",
                "payload": {"Authorization": admin_headers["Authorization"]},
            }
        )
        assert (await _next(ws))["type"] == "connection_ack"
        query = "subscription { debtorStatusChanged { databaseId status } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        await _wait_subscribed(runtime)
        # The row says pending: "processing" is a change it moved past, and a later event of
        # it follows, which sends the row: one message.
        await told(("processing", "pending"), ("pending", "processing"))
        assert (await _next(ws))["payload"]["data"]["debtorStatusChanged"] == shown
        with pytest.raises(TimeoutError):
            await _next(ws, timeout=0.5)
        # A change the row no longer shows, with nothing after it: sent, as the row is.
        await told(("failed", "pending"))
        assert (await _next(ws))["payload"]["data"]["debtorStatusChanged"] == shown


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_variables_that_do_not_coerce_are_refused_with_their_code(
    app: Any, admin_headers: dict[str, str], protocol: str
) -> None:
    # As over HTTP: BAD_USER_INPUT. A subscription's variables are coerced as it starts, after
    # the hook that coded HTTP's, and its refusal went out with no code.
    query = "subscription ($t: [String!]!) { events(types: $t) { type } }"
    init = {"type": "connection_init", "payload": {"authToken": admin_headers["Authorization"][7:]}}
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    async with socket(app, protocol) as ws:
        await ws.send_json(init)
        assert (await _next(ws))["type"] == "connection_ack"
        for n, variables in enumerate(({"t": 5}, {})):
            payload = {"query": query, "variables": variables}
            await ws.send_json({"id": str(n), "type": start, "payload": payload})
            message = await _next(ws)
            assert message["type"] == "error", message
            errors = (
                message["payload"] if protocol == "graphql-transport-ws" else [message["payload"]]
            )
            assert [e["extensions"] for e in errors] == [{"code": "BAD_USER_INPUT"}]
            assert errors[0]["message"].startswith("Variable '$t' has invalid value")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_a_failure_inside_an_event_stream_is_masked_and_not_the_clients_fault(
    app: Any, admin_headers: dict[str, str], protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Masked, it has no path and no original error, like a variable refusal: coded after the
    # mask, it went out as BAD_USER_INPUT, telling the client to change what it sent.
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals of a bug")
        yield  # an async generator, as the stream is

    monkeypatch.setattr(resolver_events, "watch", broken)
    init = {"type": "connection_init", "payload": {"authToken": admin_headers["Authorization"][7:]}}
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    async with socket(app, protocol) as ws:
        await ws.send_json(init)
        assert (await _next(ws))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": start, "payload": {"query": SUBSCRIBE}})
        message = await _next(ws)
        assert message["type"] == ("next" if protocol == "graphql-transport-ws" else "data")
        assert message["payload"] == {"data": None, "errors": [{"message": "Unexpected error."}]}
