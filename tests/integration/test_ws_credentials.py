"""WebSocket credentials after connection_init, and the socket caps from the upgrade on.

Three defects a reviewer reproduced: a token logged out after ``connection_init`` kept running
queries and mutations on its socket; a socket that never sent ``connection_init`` was counted
against nobody (graphql-ws had no init timeout at all); a bad token in the upgrade request's
Authorization header was taken as anonymous.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.routing import WebSocketRoute

from debtgraph.domain.debtors.models import BlacklistedIban
from debtgraph.resolvers.principal import PrincipalKind
from debtgraph.schema.http import DebtgraphGraphQL
from debtgraph.settings import Settings
from tests.integration.cleavr_support import count
from tests.integration.test_subscriptions import SUBSCRIBE, _next, socket

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
# What the re-check closes a socket with once its credentials stopped working.
REVOKED_CLOSE_CODE = 4401
CAP = 3
INIT_WAIT = 1.0
ME = "{ me { id } }"
BLACKLIST_ADD = (
    'mutation { blacklistAdd(input: {iban: "ES9121000418450200051332", reason: "fraud"}) '
    "{ entry { iban } userErrors { code } } }"
)
REVOKED_ERROR = {
    "message": "The credentials of this connection no longer work.",
    "extensions": {"code": "UNAUTHENTICATED"},
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A small socket cap and init wait; the subscription re-check left at its 30 s, so
    nothing here is the re-check's doing."""
    return dataclasses.replace(
        settings,
        ws_max_connections_per_principal=CAP,
        ws_connection_init_timeout_seconds=INIT_WAIT,
        subscription_recheck_seconds=30,
    )


@contextlib.asynccontextmanager
async def socket_with(
    app: Any, protocol: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Any]:
    """``test_subscriptions.socket`` with headers on the upgrade request."""
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws("/graphql", client, subprotocols=[protocol], headers=headers or {}) as ws,
    ):
        yield ws


def _view(app: Any) -> DebtgraphGraphQL:
    for route in app.routes:
        if isinstance(route, WebSocketRoute) and route.path == "/graphql":
            assert isinstance(route.app, DebtgraphGraphQL)
            return route.app
    raise AssertionError("no WebSocket route /graphql")


async def _counts_settle(app: Any, expected: dict[str, int]) -> None:
    """Wait until the view's connection counts are ``expected`` (the server side of a closed
    socket finishes after the client saw the close)."""
    view = _view(app)
    for _ in range(200):
        if dict(view.connections) == expected:
            return
        await asyncio.sleep(0.01)
    assert dict(view.connections) == expected


async def _closed(ws: Any, timeout: float = 3) -> WebSocketDisconnect:
    """The close the server ends the socket with (keep-alives skipped); fails if it stays open."""
    with pytest.raises(WebSocketDisconnect) as closed:
        await _next(ws, timeout=timeout)
    return closed.value


async def _init(ws: Any, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    await ws.send_json({"type": "connection_init", "payload": payload or {}})
    return await _next(ws)


async def _login(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "password"}
    )
    assert response.status_code == 200, response.text
    return f"Bearer {response.json()['token']}"


# --- 1. A token revoked after connection_init runs nothing more on its socket ------------------


@pytest.mark.parametrize("document", [ME, BLACKLIST_ADD], ids=["query", "mutation"])
@pytest.mark.parametrize("carried", ["connection_params", "header"])
async def test_a_logged_out_token_runs_no_more_operations_on_its_socket(
    app: Any, client: httpx.AsyncClient, admin: Any, db: Any, document: str, carried: str
) -> None:
    token = await _login(client)
    headers = {"Authorization": token} if carried == "header" else None
    async with socket_with(app, "graphql-transport-ws", headers) as ws:
        assert (await _init(ws, {"Authorization": token} if headers is None else {}))[
            "type"
        ] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": ME}})
        answered = await _next(ws)
        assert answered["type"] == "next", answered
        assert answered["payload"]["data"]["me"]["id"]
        assert (await _next(ws))["type"] == "complete"

        logout = await client.post("/api/logout", headers={"Authorization": token})
        assert logout.status_code == 200, logout.text
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": document}})
        refused = await _next(ws)
        assert refused == {"id": "2", "type": "error", "payload": [REVOKED_ERROR]}
        closed = await _closed(ws)
        assert closed.code == REVOKED_CLOSE_CODE
        assert "no longer work" in closed.reason
    assert await count(db, BlacklistedIban) == 0
    await _counts_settle(app, {})


async def test_a_logged_out_token_starts_no_subscription_on_graphql_ws(
    app: Any, client: httpx.AsyncClient, admin: Any
) -> None:
    token = await _login(client)
    async with socket(app, "graphql-ws") as ws:
        assert (await _init(ws, {"authToken": token[7:]}))["type"] == "connection_ack"
        assert (await client.post("/api/logout", headers={"Authorization": token})).status_code
        await ws.send_json({"id": "1", "type": "start", "payload": {"query": SUBSCRIBE}})
        refused = await _next(ws)
        assert refused == {"id": "1", "type": "error", "payload": REVOKED_ERROR}
        assert (await _closed(ws)).code == REVOKED_CLOSE_CODE
    await _counts_settle(app, {})


# --- 2. Sockets are counted from the upgrade on; graphql-ws too waits for connection_init ------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_sockets_without_connection_init_are_held_to_the_cap(
    app: Any, client: httpx.AsyncClient, admin: Any, protocol: str
) -> None:
    token = await _login(client)
    operator = f"{PrincipalKind.OPERATOR.value}:{admin.id}"
    async with contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(socket(app, protocol)) for _ in range(CAP)]
        await _counts_settle(app, {"anonymous:127.0.0.1": CAP})
        async with socket(app, protocol) as extra:
            closed = await _closed(extra, timeout=INIT_WAIT / 2)
            assert closed.code == 4429
            assert closed.reason == f"Too many connections (at most {CAP})"
        # A connection_init moves its socket to its caller: the address has a place again.
        auth = {"Authorization": token}
        assert (await _init(held[0], auth))["type"] == "connection_ack"
        await _counts_settle(app, {"anonymous:127.0.0.1": CAP - 1, operator: 1})
        async with socket(app, protocol) as another:
            assert (await _init(another))["type"] == "connection_ack"  # anonymous: stays
            await _counts_settle(app, {"anonymous:127.0.0.1": CAP, operator: 1})
    # Every place given back, exactly once.
    await _counts_settle(app, {})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_without_connection_init_is_closed_after_the_wait(
    app: Any, protocol: str
) -> None:
    async with socket(app, protocol) as ws:
        closed = await _closed(ws, timeout=INIT_WAIT + 3)
        assert closed.code == 4408
        assert closed.reason == "Connection initialisation timeout (no connection_init within 1 s)"
    await _counts_settle(app, {})
    # One that sends it in time stays open past the wait.
    async with socket(app, protocol) as ws:
        assert (await _init(ws))["type"] == "connection_ack"
        with pytest.raises(TimeoutError):
            await _next(ws, timeout=INIT_WAIT + 0.5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_refused_socket_gives_its_place_back(app: Any, protocol: str) -> None:
    for _ in range(CAP + 1):
        async with socket(app, protocol) as ws:
            await _counts_settle(app, {"anonymous:127.0.0.1": 1})  # counted from the upgrade
            await ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": "Bearer 9|wrong"}}
            )
            with contextlib.suppress(WebSocketDisconnect):
                await _next(ws)  # graphql-ws: connection_error, then the close
                await _next(ws)
        await _counts_settle(app, {})


# --- 3. A bad token in the upgrade request's Authorization header is refused -------------------


async def _refused_at_init(ws: Any, protocol: str) -> None:
    """The refusal of a bad token in connection_params, on either protocol."""
    await ws.send_json({"type": "connection_init", "payload": {}})
    if protocol == "graphql-ws":
        refused = await _next(ws)
        assert refused == {"type": "connection_error", "payload": {"message": "Unauthenticated."}}
        await _closed(ws)
    else:
        closed = await _closed(ws)
        assert (closed.code, closed.reason) == (4403, "Forbidden")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_bad_authorization_header_is_refused_at_connection_init(
    app: Any, protocol: str
) -> None:
    for header in ("Bearer 9|wrong", "Bearer sk_live_nope", "Basic YWRtaW46cGFzc3dvcmQ="):
        async with socket_with(app, protocol, {"Authorization": header}) as ws:
            await _refused_at_init(ws, protocol)
        # As a bad token in connection_params is.
        async with socket(app, protocol) as ws:
            await ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": "Bearer 9|wrong"}}
            )
            if protocol == "graphql-ws":
                assert (await _next(ws))["type"] == "connection_error"
            else:
                assert (await _closed(ws)).code == 4403
    await _counts_settle(app, {})


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_logged_out_or_expired_header_token_is_refused(
    app: Any, client: httpx.AsyncClient, admin: Any, clock: Any, settings: Settings, protocol: str
) -> None:
    logged_out = await _login(client)
    assert (await client.post("/api/logout", headers={"Authorization": logged_out})).status_code
    async with socket_with(app, protocol, {"Authorization": logged_out}) as ws:
        await _refused_at_init(ws, protocol)

    expiring = await _login(client)
    async with socket_with(app, protocol, {"Authorization": expiring}) as ws:
        assert (await _init(ws))["type"] == "connection_ack"  # a good header signs in
    clock.advance(timedelta(seconds=settings.operator_token_ttl_seconds + 1))
    async with socket_with(app, protocol, {"Authorization": expiring}) as ws:
        await _refused_at_init(ws, protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_second_connection_init_closes_the_socket(app: Any, protocol: str) -> None:
    # Outside review: graphql-ws acked every init, each starting a keep-alive task of its own
    # (anonymous clients grew the process by tens of MB and the log by a trace per task).
    async with socket(app, protocol) as ws:
        assert (await _init(ws))["type"] == "connection_ack"
        await ws.send_json({"type": "connection_init", "payload": {}})
        closed = await _closed(ws)
        assert closed.code == 4429
    await _counts_settle(app, {})
