"""Subscriptions follow scopes and reach per event, and end when their credentials stop working."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect
from sqlalchemy import select, update

from debtgraph.domain.core import outbox
from debtgraph.domain.core.secrets import hash_token
from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth.models import ApiKey, OAuthToken
from debtgraph.resolvers.events import subscriber_count
from debtgraph.server.app import Runtime
from debtgraph.settings import Settings
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user, creditor_token
from tests.integration.test_subscriptions import SUBSCRIBE, _next, socket

pytestmark = pytest.mark.usefixtures("clock")
# The close code of a stream whose credentials stopped working (PRODUCT-DECISIONS.md).
REVOKED_CLOSE_CODE = 4401


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Re-check idle streams every second, so expiry is seen without any event."""
    return dataclasses.replace(settings, subscription_recheck_seconds=1)


async def emit(
    runtime: Runtime,
    type_: str,
    object_id: str,
    platform_id: int | None = None,
    user_id: int | None = None,
) -> None:
    """Commit an event the way a mutation does, about a user or a receivable."""
    services = runtime.services
    async with services.session_factory() as session:
        outbox.record_event(
            session,
            services.clock,
            type=type_,
            object_type=type_.split(".")[0],
            object_id=object_id,
            obj={"id": object_id},
            previous={},
            platform_id=platform_id,
            user_id=user_id,
        )
        ids = await outbox.commit(session, services.jobs)
        await outbox.relay(session, services.bus, services.clock, ids)


async def _subscribers(runtime: Runtime, n: int) -> None:
    for _ in range(500):
        if subscriber_count(runtime.services) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("subscriptions never reached the bus")


async def _subscribe(ws: Any, authorization: str) -> None:
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": authorization}})
    assert (await _next(ws))["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})


async def _closed_with(ws: Any) -> int:
    """The close code of a socket the server closes (its next frame must be the close)."""
    with pytest.raises(WebSocketDisconnect) as closed:
        await _next(ws, timeout=10)
    return closed.value.code


async def _creditor(client: httpx.AsyncClient, make_platform: Any, db: Any) -> tuple[Any, int]:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == uid))
    return acme, user.id


async def test_reports_only_token_gets_no_receivable_events_and_revocation_closes(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme, user_id = await _creditor(client, make_platform, db)
    reports = await creditor_token(db, clock, acme.platform.id, user_id, "reports:read")
    reader = await creditor_token(db, clock, acme.platform.id, user_id, "receivables:read")
    async with socket(app) as blind, socket(app) as seeing:
        await _subscribe(blind, f"Bearer {reports}")
        await _subscribe(seeing, f"Bearer {reader}")
        await _subscribers(runtime, 2)
        await emit(runtime, "receivable.created", "rcv_1", acme.platform.id, user_id)
        seen = await _next(seeing)
        assert seen["payload"]["data"]["events"]["objectId"] == "rcv_1"
        # REST refuses both tokens once revoked; the streams end with them.
        revoked = await client.post(
            "/oauth/revoke",
            data={
                "token": reports,
                "client_id": acme.platform.client_id,
                "client_secret": acme.client_secret,
            },
        )
        assert revoked.status_code == 200
        assert (await client.get("/v1/receivables", headers=bearer(reports))).status_code == 401
        await emit(runtime, "receivable.status_changed", "rcv_1", acme.platform.id, user_id)
        # The blind stream never got rcv_1: its first frame after the ack is the close.
        assert await _closed_with(blind) == REVOKED_CLOSE_CODE
        assert (await _next(seeing))["payload"]["data"]["events"]["type"] == (
            "receivable.status_changed"
        )


async def test_expired_token_stream_closes_without_any_event(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme, user_id = await _creditor(client, make_platform, db)
    token = await creditor_token(db, clock, acme.platform.id, user_id, "receivables:read")
    async with socket(app) as ws:
        await _subscribe(ws, f"Bearer {token}")
        await _subscribers(runtime, 1)
        clock.advance(timedelta(hours=1))
        assert await _closed_with(ws) == REVOKED_CLOSE_CODE


async def test_suspended_creditor_stream_closes(
    app: Any,
    runtime: Runtime,
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    clock: Any,
    admin_headers: dict[str, str],
) -> None:
    acme, user_id = await _creditor(client, make_platform, db)
    token = await creditor_token(db, clock, acme.platform.id, user_id, "receivables:read")
    async with db() as session:
        uid = (await session.get(User, user_id)).public_id  # type: ignore[union-attr]
    async with socket(app) as ws:
        await _subscribe(ws, f"Bearer {token}")
        await _subscribers(runtime, 1)
        suspended = await gql(
            client,
            "mutation($i: UserIdInput!) { userSuspend(input: $i) { userErrors { code } } }",
            {"i": {"id": uid}},
            admin_headers,
        )
        assert suspended["data"]["userSuspend"]["userErrors"] == []
        await emit(runtime, "receivable.status_changed", "rcv_1", acme.platform.id, user_id)
        assert await _closed_with(ws) == REVOKED_CLOSE_CODE


async def test_logged_out_operator_stream_closes(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async with socket(app) as ws:
        await _subscribe(ws, admin_headers["Authorization"])
        await _subscribers(runtime, 1)
        assert (await client.post("/api/logout", headers=admin_headers)).status_code == 200
        await emit(runtime, "receivable.created", "rcv_1")
        assert await _closed_with(ws) == REVOKED_CLOSE_CODE


async def test_platform_stream_follows_the_grant_and_the_key(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    creator, user_id = await _creditor(client, make_platform, db)
    other = await make_platform("Other")
    grant = await creditor_token(db, clock, other.platform.id, user_id, "users:read")
    async with socket(app) as ws:
        await _subscribe(ws, f"Bearer {other.api_key}")
        await _subscribers(runtime, 1)
        # users:read only: user events, not receivable events (even those it submitted).
        await emit(runtime, "receivable.created", "rcv_1", other.platform.id, user_id)
        await emit(runtime, "user.updated", "usr_1", creator.platform.id, user_id)
        assert (await _next(ws))["payload"]["data"]["events"]["type"] == "user.updated"
        async with db() as session:
            await session.execute(
                update(OAuthToken)
                .where(OAuthToken.access_token_hash == hash_token(grant))
                .values(revoked_at=clock.now())
            )
            await session.commit()
        await emit(runtime, "user.updated", "usr_1", creator.platform.id, user_id)
        # Out of reach now; a revoked key ends the stream.
        async with db() as session:
            await session.execute(
                update(ApiKey)
                .where(ApiKey.platform_id == other.platform.id)
                .values(revoked_at=clock.now())
            )
            await session.commit()
        await emit(runtime, "user.updated", "usr_1", creator.platform.id, user_id)
        assert await _closed_with(ws) == REVOKED_CLOSE_CODE
