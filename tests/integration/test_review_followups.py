"""Defects an outside reviewer found after the issue-7 fixes (issue 7 review follow-ups)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect
from sqlalchemy import select

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from debtgraph.domain.receivables.models import ReceivableEvent
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, complete_user, count, create_user
from tests.integration.test_graphql_limits import PRODUCTION
from tests.integration.test_oauth import consent_form, creditor
from tests.integration.test_receivables import receivable_payload
from tests.integration.test_subscriptions import socket


def gid(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


NOT_NODES = ["UserError:x", "Foo:1", "PageInfo:1"]


@pytest.mark.parametrize("raw", NOT_NODES)
async def test_node_of_a_type_that_is_no_node_is_not_found_not_an_incident(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    raw: str,
    admin_headers: dict[str, str],
) -> None:
    caplog.set_level(logging.INFO)
    # Signed in: anonymous, every id is UNAUTHENTICATED (test_graph_connections).
    body = await gql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": gid(raw)}, admin_headers
    )
    assert body["data"] == {"node": None}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["path"] == ["node"]
    assert "Unexpected" not in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_nodes_answer_null_and_not_found_per_element(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, admin_headers: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO)
    me = (await gql(client, "{ me { id } }", headers=admin_headers))["data"]["me"]["id"]
    ids = [gid("Webhook:x"), me, gid("User:usr_nope"), gid("PageInfo:1")]
    body = await gql(
        client, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids}, admin_headers
    )
    assert body["data"] == {"nodes": [None, {"id": me}, None, None]}
    assert sorted(tuple(e["path"]) for e in body["errors"]) == [
        ("nodes", 0),
        ("nodes", 2),
        ("nodes", 3),
    ]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"NOT_FOUND"}
    # Unknown and non-node ids answer alike: nothing tells them apart.
    assert len({e["message"] for e in body["errors"]}) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_node_out_of_reach_is_null_plus_not_found(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any
) -> None:
    me = (await gql(client, "{ me { id } }", headers=admin_headers))["data"]["me"]["id"]
    platform = await make_platform()
    query = "query($id: ID!) { node(id: $id) { id } }"
    for headers in ({"Authorization": f"Bearer {platform.api_key}"}, {}):
        foreign = await gql(client, query, {"id": me}, headers)
        unknown = await gql(client, query, {"id": gid("User:usr_nope")}, headers)
        assert foreign["data"] == unknown["data"] == {"node": None}
        assert foreign["errors"] == unknown["errors"]
        # Anonymous: sign in first (as REST's 401), whatever the id; nothing leaks either way.
        expected = "NOT_FOUND" if headers else "UNAUTHENTICATED"
        assert foreign["errors"][0]["extensions"]["code"] == expected
        assert foreign["errors"][0]["path"] == ["node"]


SUBSCRIPTION = "subscription { events { type } }"


async def test_subscription_over_http_is_refused_cleanly(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    post = await client.post("/graphql", json={"query": SUBSCRIPTION})
    get = await client.get("/graphql", params={"query": SUBSCRIPTION})
    for response in (post, get):
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert "WebSocket" in error["message"]
        assert "graphql-transport-ws" in error["message"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def _init(ws: Any, payload: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json({"type": "connection_init", "payload": payload})
    return await _next_message(ws)


async def _next_message(ws: Any) -> dict[str, Any]:
    """The next message that is not a keep-alive."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.receive_text(), 5))
        if message["type"] not in ("ka", "ping", "pong"):
            return message  # type: ignore[no-any-return]


async def test_one_caller_holds_at_most_ws_max_connections(
    app: Any, admin_headers: dict[str, str]
) -> None:
    auth = {"Authorization": admin_headers["Authorization"]}
    async with contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(socket(app)) for _ in range(10)]
        for ws in held:
            assert (await _init(ws, auth))["type"] == "connection_ack"
        async with socket(app) as extra:
            with pytest.raises(WebSocketDisconnect) as closed:
                await _init(extra, auth)
            assert closed.value.code == 4429
            # The limit and its value are named (PRODUCT.md §12), in the close reason too.
            assert closed.value.reason == "Too many connections (at most 10)"
        async with socket(app, "graphql-ws") as legacy:
            refused = await _init(legacy, auth)
            assert refused["type"] == "connection_error"
            assert refused["payload"] == {
                "message": "Too many connections for this caller: at most 10 open sockets "
                "(WS_MAX_CONNECTIONS_PER_PRINCIPAL).",
                "code": "TOO_MANY_CONNECTIONS",
                "limit": "WS_MAX_CONNECTIONS_PER_PRINCIPAL",
                "max": 10,
            }
            with pytest.raises(WebSocketDisconnect) as closed:
                await legacy.receive_text()
            assert closed.value.code == 4429
        # Another caller (here anonymous) is not affected.
        async with socket(app) as other:
            assert (await _init(other, {}))["type"] == "connection_ack"
    # Closed sockets give their places back.
    async with socket(app) as again:
        assert (await _init(again, auth))["type"] == "connection_ack"


async def test_a_connection_holds_at_most_ws_max_subscriptions(
    app: Any, admin_headers: dict[str, str]
) -> None:
    async with socket(app) as ws:
        assert (await _init(ws, {"Authorization": admin_headers["Authorization"]}))[
            "type"
        ] == "connection_ack"
        for i in range(21):
            await ws.send_json({"id": str(i), "type": "subscribe", "payload": {"query": SUB}})
        message = json.loads(await asyncio.wait_for(ws.receive_text(), 5))
        assert message["type"] == "error"
        assert message["id"] == "20"
        assert message["payload"] == [SUBSCRIPTION_LIMIT]
    async with socket(app, "graphql-ws") as legacy:
        token = admin_headers["Authorization"][7:]
        assert (await _init(legacy, {"authToken": token}))["type"] == "connection_ack"
        for i in range(21):
            await legacy.send_json({"id": str(i), "type": "start", "payload": {"query": SUB}})
        message = await _next_message(legacy)
        assert message == {"type": "error", "id": "20", "payload": SUBSCRIPTION_LIMIT}


SUBSCRIPTION_LIMIT = {
    "message": "Subscription limit reached: at most 20 operations run at once on one socket "
    "(WS_MAX_SUBSCRIPTIONS_PER_CONNECTION).",
    "extensions": {
        "code": "TOO_MANY_SUBSCRIPTIONS",
        "limit": "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        "max": 20,
    },
}


SUB = "subscription { events { id } }"


async def test_concurrent_cancels_transition_once(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    uid = (await create_user(client, acme.api_key))["id"]
    rid = (
        await client.post("/v1/receivables", json=receivable_payload(uid), headers=headers)
    ).json()["id"]
    before = await count(db, ReceivableEvent)
    responses = await asyncio.gather(
        *(
            client.post(
                f"/v1/receivables/{rid}/cancel", json={"reason": "paid_directly"}, headers=headers
            )
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.json()["error"]["code"] == "invalid_transition"
    assert await count(db, ReceivableEvent) == before + 1


async def test_concurrent_suspensions_change_the_creditor_once(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], db: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    query = "mutation($id: ID!) { userSuspend(input: {id: $id}) { userErrors { code } } }"
    before = await count(db, Event)
    bodies = await asyncio.gather(
        *(gql(client, query, {"id": uid}, admin_headers) for _ in range(2))
    )
    assert all("errors" not in b for b in bodies), bodies
    async with db() as session:
        types = (await session.scalars(select(Event.type).order_by(Event.id))).all()
    # One change, one user.updated event: the second suspension found it already done.
    assert types[before:].count("user.updated") == 1, types[before:]


async def test_creditor_emails_differing_only_in_case_are_one(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    first = await create_user(client, acme.api_key, complete_user("Case1@Example.test"))
    assert first["email"] == "case1@example.test"
    for email in ("case1@example.test", "CASE1@EXAMPLE.TEST"):
        again = await client.post(
            "/v1/users", json=complete_user(email), headers=bearer(acme.api_key)
        )
        assert again.status_code == 400, again.text
        assert again.json()["error"]["code"] == "email_taken"
    gql_create = await gql(
        client,
        "mutation($i: UserCreateInput!) { userCreate(input: $i) { userErrors { code } } }",
        {"i": {"email": "cAsE1@example.test", "company": {"name": "X"}}},
        bearer(acme.api_key),
    )
    assert gql_create["data"]["userCreate"]["userErrors"] == [{"code": "email_taken"}]
    async with db() as session:
        emails = (await session.scalars(select(User.email).where(User.role == "creditor"))).all()
    assert emails == ["case1@example.test"], (emails, gql_create)


def _from(app: Any, address: str, cookies: Any = None) -> httpx.AsyncClient:
    """A client whose requests come from ``address`` (what a trusted proxy's X-Forwarded-For
    sets as the ASGI client)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies)


async def test_login_guesses_spread_over_addresses_hit_the_per_email_cap(
    app: Any, admin: Any
) -> None:
    body = {"email": "admin@tether.test", "password": "wrong password"}
    statuses = []
    for i in range(30):
        async with _from(app, f"10.0.0.{i}") as c:
            statuses.append((await c.post("/api/login", json=body)).status_code)
    assert statuses == [422] * 20 + [429] * 10, statuses
    # The cap is per email: another email from a fresh address is unaffected.
    async with _from(app, "10.0.1.1") as c:
        other = await c.post("/api/login", json={**body, "email": "other@tether.test"})
        assert other.status_code == 422


async def test_consent_guesses_spread_over_addresses_hit_the_per_email_cap(
    app: Any, client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    await creditor(client, db, acme.api_key)
    form = await consent_form(client, acme, scope="users:read", password="wrong password")
    statuses = []
    for i in range(30):
        async with _from(app, f"10.0.0.{i}", client.cookies) as c:
            statuses.append((await c.post("/oauth/consent", data=form)).status_code)
    assert statuses == [401] * 20 + [429] * 10, statuses


@contextlib.asynccontextmanager
async def _address_capped(settings: Any, clock: Any, cap: int) -> AsyncIterator[Any]:
    """An app whose sign-ins are capped at ``cap`` per address (LOGIN_MAX_ATTEMPTS_PER_ADDRESS)."""
    from dataclasses import replace

    from debtgraph.server.app import create_app, start_runtime, stop_runtime

    capped = create_app(replace(settings, login_max_attempts_per_address=cap), clock=clock)
    await start_runtime(capped.state.runtime, periodic=False)
    try:
        yield capped
    finally:
        await stop_runtime(capped.state.runtime)


def _guess(i: int | str) -> dict[str, str]:
    return {"email": f"guess{i}@tether.test", "password": "wrong password"}


async def test_sign_ins_from_one_address_for_many_emails_hit_the_address_cap(
    settings: Any, clock: Any, client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    # Each attempt costs an argon2 check: one address naming a new email each time was capped by
    # nothing. Operator login and the consent page share the address's count.
    acme = await make_platform()
    await creditor(client, db, acme.api_key)
    form = await consent_form(client, acme, scope="users:read", password="wrong password")
    async with _address_capped(settings, clock, 6) as capped:
        statuses = []
        async with _from(capped, "10.0.2.1", client.cookies) as c:
            for i in range(4):
                statuses.append((await c.post("/api/login", json=_guess(i))).status_code)
            for _ in range(3):
                statuses.append((await c.post("/oauth/consent", data=form)).status_code)
            refused = await c.post("/api/login", json=_guess("new"))
        assert statuses == [422] * 4 + [401, 401, 429], statuses
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # The cap is the address's: another address signs in with the same emails.
        async with _from(capped, "10.0.2.2") as c:
            assert (await c.post("/api/login", json=_guess(0))).status_code == 422


async def test_a_flood_past_the_address_cap_spends_nothing_of_the_email(
    settings: Any, clock: Any, admin: Any
) -> None:
    # Counted first: 40 tries from one address count 3 against the email (cap 20), so its owner
    # still signs in from elsewhere.
    async with _address_capped(settings, clock, 3) as capped:
        wrong = {"email": "admin@tether.test", "password": "wrong password"}
        async with _from(capped, "10.0.3.1") as c:
            statuses = [(await c.post("/api/login", json=wrong)).status_code for _ in range(40)]
        assert statuses == [422] * 3 + [429] * 37
        async with _from(capped, "10.0.3.2") as c:
            ok = await c.post("/api/login", json={**wrong, "password": "password"})
            assert ok.status_code == 200, ok.text


async def test_a_success_does_not_reset_the_address_cap(
    settings: Any, clock: Any, admin: Any
) -> None:
    async with _address_capped(settings, clock, 3) as capped:
        good = {"email": "admin@tether.test", "password": "password"}
        async with _from(capped, "10.0.4.1") as c:
            statuses = [(await c.post("/api/login", json=_guess(0))).status_code]
            statuses.append((await c.post("/api/login", json=good)).status_code)
            statuses += [(await c.post("/api/login", json=_guess(i))).status_code for i in (1, 2)]
        assert statuses == [422, 200, 422, 429], statuses


async def test_an_ipv6_host_is_capped_by_its_64_and_no_address_is_not_capped(
    settings: Any, clock: Any, admin: Any
) -> None:
    async with _address_capped(settings, clock, 3) as capped:
        statuses = []
        for i in range(5):  # a new address of one /64 each time
            async with _from(capped, f"2001:db8:1:2::{i + 1:x}") as c:
                statuses.append((await c.post("/api/login", json=_guess(i))).status_code)
        assert statuses == [422] * 3 + [429] * 2
        async with _from(capped, "2001:db8:1:3::1") as c:  # the next /64
            assert (await c.post("/api/login", json=_guess(9))).status_code == 422
        # No address at all (a unix socket): no shared count one caller could exhaust for all.
        transport = httpx.ASGITransport(app=capped, client=None)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            answers = [(await c.post("/api/login", json=_guess(i))).status_code for i in range(5)]
        assert answers == [422] * 5


async def test_production_hides_suggestions_from_anonymous_callers(
    settings: Any, clock: Any, client: httpx.AsyncClient
) -> None:
    from dataclasses import replace

    from debtgraph.server.app import create_app

    typo = "{ receivablez { totalCount } }"
    enum_typo = "{ receivables(status: PENDINGG) { totalCount } }"
    dev = await gql(client, typo)
    assert "Did you mean" in dev["errors"][0]["message"]  # development keeps the hint
    app = create_app(
        replace(settings, **PRODUCTION),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for query in (typo, enum_typo):
            body = await gql(c, query)
            assert body["errors"], body
            for error in body["errors"]:
                assert "Did you mean" not in error["message"], error
                assert "receivables'" not in error["message"]
                assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        first = (await gql(c, typo))["errors"][0]["message"]
        assert first == "Cannot query field 'receivablez' on type 'Query'."


def _nested(depth: int) -> str:
    """A GraphQL object literal nesting ``depth`` levels."""
    return "{a: " * (depth - 1) + "{a: 1}" + "}" * (depth - 1)


async def test_json_literals_deeper_than_32_levels_are_refused(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    uid = (await create_user(client, acme.api_key))["id"]
    rid = (
        await client.post("/v1/receivables", json=receivable_payload(uid), headers=headers)
    ).json()["id"]

    def update(metadata: str) -> str:
        return (
            f'mutation {{ receivableUpdate(input: {{id: "{rid}", metadata: {metadata}}}) '
            "{ userErrors { code } } }"
        )

    deep = await gql(client, update(_nested(33)), headers=headers)
    assert deep["data"] is None
    (error,) = deep["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["code"] == "invalid_json"
    assert "32" in error["message"]
    stored = (await client.get(f"/v1/receivables/{rid}", headers=headers)).json()["metadata"]
    assert "a" not in (stored or {})
    ok = await gql(client, update(_nested(32)), headers=headers)
    assert ok["data"]["receivableUpdate"]["userErrors"] == [], ok


async def test_bad_multipart_boundary_on_graphql_answers_in_the_graphql_shape(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
        response = await client.post(
            "/graphql",
            content=b"--x\r\n\r\n",
            headers={**admin_headers, "content-type": content_type},
        )
        assert response.status_code == 400, response.text
        body = response.json()
        assert "error" not in body
        assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
