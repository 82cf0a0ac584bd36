"""``debtgraph serve --workers N``: N API processes behind one port, sharing events through Redis.

A real server with two worker processes and real WebSocket clients. The per-process WebSocket cap
(WS_MAX_CONNECTIONS_PER_PRINCIPAL=1) tells the processes apart: a second socket of the same
operator is accepted only by the process that does not hold the first, so two accepted sockets are
on two processes, and an event raised by a request on either reaches both.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import REDIS_URL
from tests.integration.live_server_support import live_server
from tests.integration.test_cli import run
from tests.integration.test_fanout import _login, operator_server_settings
from tests.integration.uploads_support import csv_text, upload

EVENTS = 'subscription { events(types: ["upload.completed"]) { type objectId } }'


def test_more_than_one_worker_without_redis_is_refused_before_migrating(tmp_path: Path) -> None:
    database = tmp_path / "workers.db"
    url = f"sqlite+aiosqlite:///{database}"
    refused = run(url, "serve", "--workers", "2", "--port", "1", WEB_CONCURRENCY="")
    assert refused.returncode == 1
    assert "--workers 2 needs REDIS_URL" in refused.stderr
    assert "--workers 1" in refused.stderr
    assert not database.exists()
    # WEB_CONCURRENCY is the default for --workers, held to the same rule.
    concurrency = run(url, "serve", "--port", "1", WEB_CONCURRENCY="3")
    assert concurrency.returncode == 1
    assert "--workers 3 needs REDIS_URL" in concurrency.stderr


async def _subscribe(port: int, token: str) -> Any | None:
    """A subscribed socket, or None when this process already holds the caller's one socket."""
    ws = await connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    init = {"type": "connection_init", "payload": {"Authorization": token}}
    await ws.send(orjson.dumps(init).decode())
    try:
        ack = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    except ConnectionClosed:
        assert ws.close_code == 4429, ws.close_code
        return None
    assert ack["type"] == "connection_ack", ack
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}
    await ws.send(orjson.dumps(subscribe).decode())
    return ws


@pytest.mark.skipif(not REDIS_URL, reason="--workers 2 needs REDIS_URL")
async def test_two_workers_share_one_port_and_their_subscribers_hear_each_others_events(
    migrated: str, tmp_path: Any
) -> None:
    settings = await operator_server_settings(migrated, tmp_path)
    async with live_server(
        settings, ["--workers", "2"], WS_MAX_CONNECTIONS_PER_PRINCIPAL="1"
    ) as server:
        token = await _login(server.url)
        sockets: list[Any] = []
        # The port answers once the first process listens; the second may still be starting
        # (a loaded CI machine): sixty refusals in a row from the first took well under a
        # second and failed the test. Its sockets come once it is up.
        deadline = asyncio.get_running_loop().time() + 30
        while len(sockets) < 2:
            assert asyncio.get_running_loop().time() < deadline, (
                "the kernel never handed a socket to the second process"
            )
            ws = await _subscribe(server.port, token)
            if ws is not None:
                sockets.append(ws)
            else:
                await asyncio.sleep(0.05)
        # A third is refused whichever process takes it: each holds one already.
        for _ in range(4):
            assert await _subscribe(server.port, token) is None
        try:
            await asyncio.sleep(0.5)  # both subscriptions registered with their dispatchers
            uploaded = []
            async with httpx.AsyncClient(base_url=server.url) as client:
                # Each on a new connection: the requests land on either process.
                for _ in range(3):
                    async with httpx.AsyncClient(base_url=server.url) as fresh:
                        response = await upload(fresh, {"Authorization": token}, csv_text(2))
                    assert response.status_code == 201, response.text
                    uploaded.append(str(response.json()["data"]["id"]))
                assert (await client.get("/healthz")).status_code == 200
            for ws in sockets:
                heard = []
                for _ in uploaded:
                    message = orjson.loads(await asyncio.wait_for(ws.recv(), 20))
                    assert message["type"] == "next", message
                    heard.append(message["payload"]["data"]["events"])
                assert {h["type"] for h in heard} == {"upload.completed"}
                assert sorted(h["objectId"] for h in heard) == sorted(uploaded)
            # The sign-in throttle is Redis's, not a process's: five attempts in all, not per
            # process, however the connections are spread.
            statuses = []
            for _ in range(8):
                async with httpx.AsyncClient(base_url=server.url) as fresh:
                    attempt = await fresh.post(
                        "/api/login", json={"email": "nobody@tether.test", "password": "wrong"}
                    )
                    statuses.append(attempt.status_code)
            assert statuses == [422] * 5 + [429] * 3  # 422: the operator API's failed login
        finally:
            for ws in sockets:
                await ws.close()
