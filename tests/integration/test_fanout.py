"""The subscription fan-out: one dispatcher per process, work per audience, bounded queues.

Real clients (the ``websockets`` library, gql) against a real uvicorn, and on Redis a real
``debtgraph worker`` process raising the events an API process serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State

from debtgraph.domain.core.clock import SystemClock
from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.eventbus import BusMessage, RedisEventBus
from debtgraph.domain.creditors.models import User
from debtgraph.domain.creditors.operators import upsert_operator
from debtgraph.resolvers import auth, events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import Unauthenticated
from debtgraph.resolvers.events import subscriber_count
from debtgraph.schema import live
from debtgraph.server.app import Runtime
from debtgraph.settings import Settings
from tests.conftest import REDIS_URL
from tests.integration.cleavr_support import complete_user, create_user, creditor_token
from tests.integration.live_server_support import live_server
from tests.integration.test_graphql_client import served
from tests.integration.test_receivables import receivable_payload
from tests.integration.test_subscriptions import emit
from tests.integration.uploads_support import csv_text, upload

PROTOCOL = "graphql-transport-ws"
UPLOAD_PROGRESS = (
    "subscription($id: ID) { uploadProgress(uploadId: $id) "
    "{ databaseId status processedRecords totalRecords isComplete } }"
)
EVENTS = "subscription { events { id type objectId } }"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Small subscriber queues, so a stalled client is dropped after a few events; room for a
    dozen sockets of one operator."""
    return dataclasses.replace(
        settings, ws_subscriber_queue_size=4, ws_max_connections_per_principal=20
    )


@contextlib.asynccontextmanager
async def subscriber(
    port: int, token: str | None, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> AsyncIterator[Any]:
    """A graphql-transport-ws client that has sent connection_init and one subscribe."""
    async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL], **kw) as ws:  # type: ignore[list-item]
        init: dict[str, Any] = {"type": "connection_init"}
        if token is not None:
            init["payload"] = {"Authorization": token}
        await ws.send(orjson.dumps(init).decode())
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        payload = {"query": query, "variables": variables or {}}
        await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())
        yield ws


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors a subscription answered with: an ``error`` message (validation) or a ``next``
    carrying errors and no data (the resolver refused), as graphql-transport-ws sends them."""
    if message["type"] == "error":
        return message["payload"]  # type: ignore[no-any-return]
    assert message["type"] == "next", message
    assert message["payload"].get("data") is None, message
    return message["payload"]["errors"]  # type: ignore[no-any-return]


async def receive(ws: Any, timeout: float = 10) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "ping":
            await ws.send('{"type":"pong"}')
        elif message["type"] != "pong":
            return message  # type: ignore[no-any-return]


async def _drain(ws: Any, timeout: float) -> None:
    """Read until the connection closes (raises ConnectionClosed)."""
    while True:
        await asyncio.wait_for(ws.recv(), timeout)


async def registered(runtime: Runtime, n: int) -> None:
    """Wait until n subscriptions reached the dispatcher."""
    for _ in range(1000):
        if subscriber_count(runtime.services) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {subscriber_count(runtime.services)} of {n} subscriptions")


async def _upload_id(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await upload(client, headers, csv_text(2))
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


# --- Work per event does not grow with the subscribers ------------------------------------------


async def _statements_for_one_event(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, headers: dict[str, str], n: int
) -> tuple[int, list[dict[str, Any]]]:
    upload_id = await _upload_id(client, headers)
    token = headers["Authorization"]
    async with served(app) as port, contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(subscriber(port, token, UPLOAD_PROGRESS))
            for _ in range(n)
        ]
        await registered(runtime, n)
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            statements.append(sql)

        engine = runtime.services.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            await emit(runtime, "upload.progress", str(upload_id))
            received = [await receive(ws) for ws in sockets]
        finally:
            event.remove(engine, "before_cursor_execute", count)
    return len(statements), received


async def test_an_event_costs_the_same_statements_for_one_or_many_subscribers(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    one, [alone] = await _statements_for_one_event(app, runtime, client, admin_headers, 1)
    many, received = await _statements_for_one_event(app, runtime, client, admin_headers, 12)
    assert many == one
    assert alone["type"] == "next"
    # Every subscriber got the node itself, with no refetch needed.
    assert all(m["payload"]["data"]["uploadProgress"]["status"] == "COMPLETED" for m in received)
    assert all(m["payload"]["data"]["uploadProgress"]["totalRecords"] == 2 for m in received)


async def test_identical_subscriptions_share_one_execution_but_not_across_audiences(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    """Two platforms subscribed with the same document see their own creditors' receivables."""
    acme, other = await make_platform("Acme"), await make_platform("Other")
    acme_user = (await create_user(client, acme.api_key))["id"]
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == acme_user))
    query = "subscription { userUpdated { id email } }"
    async with (
        served(app) as port,
        subscriber(port, f"Bearer {acme.api_key}", query) as mine,
        subscriber(port, f"Bearer {acme.api_key}", query) as mine_too,
        subscriber(port, f"Bearer {other.api_key}", query) as theirs,
    ):
        await registered(runtime, 3)
        await emit_user_updated(runtime, user)
        got = [await receive(mine), await receive(mine_too)]
        assert got[0]["payload"] == got[1]["payload"]
        assert got[0]["payload"]["data"]["userUpdated"]["email"] == user.email
        with pytest.raises(TimeoutError):
            await receive(theirs, timeout=0.5)


async def test_one_rendering_per_selection_each_operation_with_its_own_id(
    app: Any,
    runtime: Runtime,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Subscribers of one document share one execution and encoding of each event; every
    operation still gets its own id, and a completed one gets nothing more."""
    rendered: list[object] = []
    render = live._WireSink.render

    async def counted(sink: live._WireSink, ctx: Context, result: Any) -> str:
        rendered.append(sink.key)
        return await render(sink, ctx, result)

    monkeypatch.setattr(live._WireSink, "render", counted)
    upload_id = await _upload_id(client, admin_headers)
    token = admin_headers["Authorization"]
    status_only = "subscription { uploadProgress { status } }"
    async with (
        served(app) as port,
        subscriber(port, token, UPLOAD_PROGRESS) as first,
        subscriber(port, token, UPLOAD_PROGRESS) as second,
        subscriber(port, token, status_only) as other,
    ):
        again = {"query": UPLOAD_PROGRESS, "variables": {}}
        await first.send(orjson.dumps({"id": "2", "type": "subscribe", "payload": again}).decode())
        await registered(runtime, 4)
        await emit(runtime, "upload.progress", str(upload_id))
        on_first = [await receive(first), await receive(first)]
        assert sorted(m["id"] for m in on_first) == ["1", "2"]
        assert (
            on_first[0]["payload"] == on_first[1]["payload"] == (await receive(second))["payload"]
        )
        assert on_first[0]["payload"]["data"]["uploadProgress"]["databaseId"] == upload_id
        assert (await receive(other))["payload"] == {
            "data": {"uploadProgress": {"status": "COMPLETED"}}
        }
        # Two documents, two renderings: not one per subscriber or operation.
        assert len(rendered) == 2
        assert len(set(rendered)) == 2
        await first.send('{"id":"2","type":"complete"}')
        for _ in range(500):
            if subscriber_count(runtime.services) == 3:
                break
            await asyncio.sleep(0.01)
        await emit(runtime, "upload.progress", str(upload_id))
        assert (await receive(first))["id"] == "1"
        with pytest.raises(TimeoutError):
            await receive(first, timeout=0.5)


async def emit_user_updated(runtime: Runtime, user: User) -> None:
    """Commit a user.updated event as a user change does."""
    from debtgraph.domain.core import outbox

    services = runtime.services
    async with services.session_factory() as session:
        outbox.record_event(
            session,
            services.clock,
            type="user.updated",
            object_type="user",
            object_id=user.public_id,
            obj={"id": user.public_id},
            previous={"name": "before"},
            platform_id=user.platform_id,
            user_id=user.id,
        )
        ids = await outbox.commit(session, services.jobs)
        await outbox.relay(session, services.bus, services.clock, ids)


# --- Arguments, scopes and tenants --------------------------------------------------------------


async def test_receivable_status_changed_by_user_id_and_tenant(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme, other = await make_platform("Acme"), await make_platform("Other")
    first = (await create_user(client, acme.api_key, _user_payload("first")))["id"]
    second = (await create_user(client, acme.api_key, _user_payload("second")))["id"]
    async with db() as session:
        users = {
            u.public_id: u
            for u in await session.scalars(select(User).where(User.public_id.in_([first, second])))
        }
    query = "subscription($user: ID) { receivableStatusChanged(userId: $user) { id status } }"
    async with (
        served(app) as port,
        subscriber(port, f"Bearer {acme.api_key}", query, {"user": second}) as only_second,
        subscriber(port, f"Bearer {acme.api_key}", query) as every,
        subscriber(port, f"Bearer {other.api_key}", query, {"user": second}) as stranger,
    ):
        await registered(runtime, 3)
        for public_id in (first, second):
            await _receivable_changes(client, acme.api_key, public_id)
        # Without userId: both creditors' receivables; with it, only the second's.
        seen_every = [await receive(every) for _ in range(2)]
        assert [m["payload"]["data"]["receivableStatusChanged"]["status"] for m in seen_every] == [
            "CANCELLED",
            "CANCELLED",
        ]
        mine = await receive(only_second)
        assert (
            mine["payload"]["data"]["receivableStatusChanged"]["id"]
            == (seen_every[1]["payload"]["data"]["receivableStatusChanged"]["id"])
        )
        with pytest.raises(TimeoutError):
            await receive(only_second, timeout=0.5)
        # Another tenant naming a creditor it does not reach hears nothing.
        with pytest.raises(TimeoutError):
            await receive(stranger, timeout=0.5)
    assert set(users) == {first, second}


def _user_payload(name: str) -> dict[str, Any]:
    return complete_user(f"{name}@creditor.test")


async def _receivable_changes(client: httpx.AsyncClient, api_key: str, user_id: str) -> None:
    """Create a receivable for the user and cancel it (one status change)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    created = await client.post(
        "/v1/receivables", json=receivable_payload(user_id), headers=headers
    )
    assert created.status_code == 201, created.text
    cancelled = await client.post(
        f"/v1/receivables/{created.json()['id']}/cancel",
        json={"reason": "paid_directly"},
        headers=headers,
    )
    assert cancelled.status_code == 200, cancelled.text


async def test_a_token_missing_the_scope_is_refused_at_subscribe(
    app: Any, runtime: Runtime, client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == uid))
    reports = await creditor_token(db, clock, acme.platform.id, user.id, "reports:read")
    async with (
        served(app) as port,
        subscriber(
            port, f"Bearer {reports}", "subscription { receivableStatusChanged { id } }"
        ) as ws,
    ):
        message = await receive(ws)
    [error] = errors_of(message)
    assert "receivables:read" in error["message"]


async def test_operator_only_subscriptions_refuse_platforms(app: Any, make_platform: Any) -> None:
    acme = await make_platform()
    async with served(app) as port:
        for query in (
            "subscription { uploadProgress { id } }",
            "subscription { debtorStatusChanged { id } }",
            "subscription { dashboardUpdated { uploads { total } } }",
        ):
            async with subscriber(port, f"Bearer {acme.api_key}", query) as ws:
                message = await receive(ws)
            assert errors_of(message), query


async def test_unknown_event_types_are_refused_naming_the_field(
    app: Any, admin_headers: dict[str, str]
) -> None:
    query = 'subscription { events(types: ["receivable.created", "nope.never"]) { id } }'
    async with served(app) as port, subscriber(port, admin_headers["Authorization"], query) as ws:
        message = await receive(ws)
    [error] = errors_of(message)
    assert error["extensions"]["errors"][0]["field"] == "types"
    assert "nope.never" in error["message"]


# --- Bad credentials and bad protocol messages --------------------------------------------------


async def test_no_token_subscribes_to_an_unauthenticated_error(app: Any) -> None:
    async with served(app) as port, subscriber(port, None, EVENTS) as ws:
        message = await receive(ws)
    [error] = errors_of(message)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_bad_token_is_refused_at_connection_init(app: Any) -> None:
    async with (
        served(app) as port,
        connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL]) as ws,  # type: ignore[list-item]
    ):
        await ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}
            ).decode()
        )
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (["not json"], 4400),
        (['{"type": "no_such_type"}'], 4400),
        (
            [orjson.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}).decode()],
            4401,
        ),
        (['{"type": "connection_init"}', '{"type": "connection_init"}'], 4429),
        (['{"type": "connection_init"}', '{"type": "subscribe", "payload": {}}'], 4400),
    ],
)
async def test_malformed_protocol_messages_close_with_the_protocol_code(
    app: Any, frames: list[str], code: int
) -> None:
    async with (
        served(app) as port,
        connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL]) as ws,  # type: ignore[list-item]
    ):
        for frame in frames:
            await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(ws, 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


# --- A client that never reads ------------------------------------------------------------------


async def test_a_subscription_that_falls_behind_is_dropped_without_delaying_the_others(
    runtime: Runtime, admin_headers: dict[str, str], app: Any
) -> None:
    """At the dispatcher: a stalled stream's queue fills, it is closed with 4408, others go on."""
    services = runtime.services

    async def operator_ctx() -> Context:
        ctx = Context.create(services)
        ctx.principal = await auth.authenticate(ctx, admin_headers["Authorization"])
        await ctx.uow.close()
        return ctx

    closed: list[tuple[int, str]] = []

    async def record_close(code: int, reason: str) -> None:
        closed.append((code, reason))

    stalled, healthy = await operator_ctx(), await operator_ctx()
    stalled.end_stream = record_close
    stalled_stream = events.watch(stalled)
    healthy_stream = events.watch(healthy)
    first = asyncio.ensure_future(anext(stalled_stream))
    received: list[str] = []

    async def read() -> None:
        async for message in healthy_stream:
            received.append(message.id)
            if len(received) == 20:
                return

    reader = asyncio.create_task(read())
    await registered(runtime, 2)
    for i in range(20):
        await services.bus.publish(_message(f"evt_{i}"))
    await asyncio.wait_for(reader, 10)
    assert received == [f"evt_{i}" for i in range(20)]
    assert (await first).id == "evt_0"
    for _ in range(200):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed == [(events.SLOW_CLOSE_CODE, events.SLOW_REASON)]
    assert subscriber_count(services) == 1  # the healthy one
    for stream in (stalled_stream, healthy_stream):
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


def _message(event_id: str, size: int = 0) -> BusMessage:
    return BusMessage(
        id=event_id,
        type="upload.progress",
        object_type="upload",
        object_id="1",
        platform_id=None,
        user_id=None,
        created=0,
        data={"object": {"id": 1, "padding": "x" * size}, "previous_attributes": {}},
    )


class RawClient:
    """A graphql-transport-ws client on a blocking socket with a tiny receive buffer, driving
    the websockets library's sans-I/O protocol: it reads only when told to, so a test can
    stall it for real (the server's sends then block on TCP flow control)."""

    def __init__(self, port: int) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.sock = socket.socket()
        # Before connect, so the advertised window stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.protocol = ClientProtocol(
            parse_uri(f"ws://127.0.0.1:{port}/graphql"),
            subprotocols=[PROTOCOL],  # type: ignore[list-item]
            max_size=None,
        )
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.sock.settimeout(10)
        while self.protocol.state is State.CONNECTING:
            self.protocol.receive_data(self.sock.recv(4096))
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc
        self.pending = [e for e in self.protocol.events_received() if not isinstance(e, Response)]

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        """Send one text frame."""
        self.protocol.send_text(orjson.dumps(message))
        self._flush()

    def read_until(self, done: Any, timeout: float = 30) -> list[Any]:
        """Frames read until ``done(frame)``, the close or ``timeout`` seconds; blocking, so
        called in a thread."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        frames: list[Any] = []
        for frame in self.pending:
            frames.append(frame)
            if done(frame):
                self.pending = []
                return frames
        self.pending = []
        while True:
            data = self.sock.recv(65536)
            if not data:
                self.protocol.receive_eof()
            else:
                self.protocol.receive_data(data)
            self._flush()
            for frame in self.protocol.events_received():
                if not isinstance(frame, Response):
                    frames.append(frame)
                    if done(frame):
                        return frames
            if not data or self.protocol.close_rcvd is not None or time.monotonic() > deadline:
                return frames


@pytest.mark.skipif(not REDIS_URL, reason="publishes through Redis to a separate server")
async def test_a_client_that_never_reads_is_closed_and_the_others_hear_everything(
    migrated: str, tmp_path: Any
) -> None:
    settings = await operator_server_settings(migrated, tmp_path)
    # Well past what the loopback socket buffers hold, so the server's sends to it block.
    count, size = 300, 50_000
    async with live_server(settings, WS_SUBSCRIBER_QUEUE_SIZE="4") as server:
        token = await _login(server.url)
        stalled = await asyncio.to_thread(RawClient, server.port)
        stalled.send({"type": "connection_init", "payload": {"Authorization": token}})
        acked = await asyncio.to_thread(stalled.read_until, lambda f: b"connection_ack" in f.data)
        assert acked
        # With the events' data: large frames, which fill the socket buffers quickly.
        query = "subscription { events { id type objectId data } }"
        stalled.send({"id": "1", "type": "subscribe", "payload": {"query": query}})
        async with subscriber(server.port, token, query, max_size=None) as healthy:
            bus = RedisEventBus(REDIS_URL or "")
            await asyncio.sleep(0.5)  # both subscriptions registered on the server
            for i in range(count):
                await bus.publish(_message(f"evt_{i}", size))
            heard = [await receive(healthy) for _ in range(count)]
            await bus.stop()
        assert [m["payload"]["data"]["events"]["id"] for m in heard] == [
            f"evt_{i}" for i in range(count)
        ]
        # Now read what the stalled client was sent: some events, then the close.
        frames = await asyncio.to_thread(stalled.read_until, lambda _f: False)
        stalled.sock.close()
    nexts = [f for f in frames if f.opcode is Opcode.TEXT and b'"next"' in f.data]
    assert len(nexts) < count
    assert stalled.protocol.close_rcvd is not None
    assert stalled.protocol.close_rcvd.code == events.SLOW_CLOSE_CODE


# --- Across processes: raised by a worker, heard on the API process -----------------------------


async def operator_server_settings(database_url: str, upload_dir: Any) -> Settings:
    """Settings for a live server on Redis, with the operator that ``_login`` signs in."""
    await _operator_token(database_url)
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        upload_dir=str(upload_dir),
        secret_key="x" * 40,
    )


async def _operator_token(database_url: str) -> str:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        await upsert_operator(session, SystemClock(), "fanout@tether.test", "password", "Fanout")
        await session.commit()
    await engine.dispose()
    return "fanout@tether.test"


async def _login(url: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/api/login", json={"email": "fanout@tether.test", "password": "password"}
        )
        response.raise_for_status()
        return f"Bearer {response.json()['token']}"


@pytest.mark.skipif(not REDIS_URL, reason="the worker needs REDIS_URL")
async def test_upload_progress_raised_in_a_worker_process_reaches_the_api_process(
    migrated: str, tmp_path: Any
) -> None:
    settings = await operator_server_settings(migrated, tmp_path)
    env = {
        **os.environ,
        "DATABASE_URL": migrated,
        "REDIS_URL": REDIS_URL or "",
        "UPLOAD_DIR": str(tmp_path),
        "SECRET_KEY": "x" * 40,
    }
    worker = subprocess.Popen(  # noqa: ASYNC220  (a long-lived child, not awaited)
        [sys.executable, "-m", "debtgraph.server.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with live_server(settings) as server:
            token = await _login(server.url)
            async with subscriber(server.port, token, UPLOAD_PROGRESS) as ws:
                await asyncio.sleep(0.5)
                async with httpx.AsyncClient(base_url=server.url) as client:
                    # Above the synchronous limit: the worker process ingests it.
                    response = await upload(client, {"Authorization": token}, csv_text(150))
                assert response.status_code == 202, response.text
                assert response.json()["meta"]["queued"] is True
                seen = []
                while not seen or not seen[-1]["isComplete"]:
                    message = await receive(ws, timeout=60)
                    assert message["type"] == "next", message
                    seen.append(message["payload"]["data"]["uploadProgress"])
        assert seen[-1]["status"] == "COMPLETED"
        assert seen[-1]["processedRecords"] == 150
        assert {s["databaseId"] for s in seen} == {int(response.json()["data"]["id"])}
    finally:
        worker.terminate()
        worker.wait(timeout=30)


# --- billingAttemptUpdated (the resolver; the GraphQL type comes with schema/billing.py) --------


async def test_billing_attempt_updates_filter_by_upload_and_debtor(
    app: Any,
    runtime: Runtime,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    clock: Any,
) -> None:
    from debtgraph.domain.debtors.models import Debtor
    from debtgraph.domain.payments.models import BillingAttempt
    from debtgraph.resolvers import debtors

    upload_id = await _upload_id(client, admin_headers)
    async with db() as session:
        first, second = (
            await session.scalars(
                select(Debtor.id).where(Debtor.upload_id == upload_id).order_by(Debtor.id)
            )
        ).all()
        attempts = [
            BillingAttempt(
                debtor_id=debtor_id,
                upload_id=upload_id,
                transaction_id=f"tx-{debtor_id}",
                amount=150,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            for debtor_id in (first, second)
        ]
        session.add_all(attempts)
        await session.commit()

    async def operator() -> Context:
        ctx = Context.create(runtime.services)
        ctx.principal = await auth.authenticate(ctx, admin_headers["Authorization"])
        await ctx.uow.close()
        return ctx

    of_second = debtors.watch_billing_attempts(await operator(), lambda: upload_id, lambda: second)
    of_upload = debtors.watch_billing_attempts(await operator(), lambda: upload_id, lambda: None)
    of_other = debtors.watch_billing_attempts(await operator(), lambda: upload_id + 1, lambda: None)
    reads = [asyncio.ensure_future(anext(s)) for s in (of_second, of_upload, of_other)]
    await registered(runtime, 3)
    for attempt in attempts:
        await emit(runtime, "billing_attempt.updated", str(attempt.id), status="pending")
    assert (await asyncio.wait_for(reads[0], 10)).debtor_id == second
    assert (await asyncio.wait_for(reads[1], 10)).debtor_id == first
    assert (await asyncio.wait_for(anext(of_upload), 10)).debtor_id == second
    await asyncio.sleep(0.2)
    assert not reads[2].done()
    reads[2].cancel()
    platform_ctx = Context.create(runtime.services)
    with pytest.raises(Unauthenticated):
        await anext(debtors.watch_billing_attempts(platform_ctx, lambda: None, lambda: None))
    for stream in (of_second, of_upload, of_other):
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
