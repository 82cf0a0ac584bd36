"""``billingAttemptUpdated``: a real WebSocket client hears each attempt it may see, as a node."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from debtgraph.server.app import Runtime
from tests.integration.billing_support import billing_upload, gid, start
from tests.integration.test_fanout import errors_of, receive, registered, subscriber
from tests.integration.test_graphql_client import served

BILLING_UPDATES = (
    "subscription($upload: ID, $debtor: ID) { billingAttemptUpdated(uploadId: $upload, "
    "debtorId: $debtor) { databaseId status attemptNumber isFinal debtorId } }"
)
ANA = [("Ana Garcia", "ES9121000418450200051332", "150.00")]  # the sandbox approves her


async def _updates(ws: Any, n: int) -> list[dict[str, Any]]:
    messages = [await receive(ws) for _ in range(n)]
    assert all(m["type"] == "next" for m in messages), messages
    return [m["payload"]["data"]["billingAttemptUpdated"] for m in messages]


async def test_an_operator_hears_each_attempt_of_the_upload_it_follows_only(
    app: Any,
    runtime: Runtime,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    drain: Any,
) -> None:
    followed = await billing_upload(client, admin_headers, ANA)
    other = await billing_upload(client, admin_headers, ANA)
    token = admin_headers["Authorization"]
    async with (
        served(app) as port,
        subscriber(port, token, BILLING_UPDATES, {"upload": gid("Upload", followed)}) as ws,
    ):
        await registered(runtime, 1)
        assert "errors" not in await start(client, admin_headers, other)
        assert "errors" not in await start(client, admin_headers, followed)
        await drain()
        # Two changes (created, answered). Each message carries the node as it is when sent,
        # and a change the node no longer shows is not sent: when the sandbox answers before
        # the creation is dispatched, the answer alone arrives (never "approved" twice).
        (first,) = await _updates(ws, 1)
        heard = [first] + (await _updates(ws, 1) if first["status"] == "PENDING" else [])
        # Nothing more, and nothing about the other upload, arrives however long we wait.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
    answered = heard[-1]
    assert [h["status"] for h in heard] in (["PENDING", "APPROVED"], ["APPROVED"])
    assert answered["isFinal"] is True
    assert {h["databaseId"] for h in heard} == {answered["databaseId"]}
    assert answered["debtorId"] > 0


@pytest.mark.parametrize("who", ["anonymous", "platform"])
async def test_only_operators_may_follow_billing(
    app: Any, runtime: Runtime, make_platform: Any, who: str
) -> None:
    token = None if who == "anonymous" else f"Bearer {(await make_platform()).api_key}"
    async with served(app) as port, subscriber(port, token, BILLING_UPDATES) as ws:
        (error,) = errors_of(await receive(ws))
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
