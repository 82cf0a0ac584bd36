"""A GraphQL client library (gql) against the app: the committed SDL, HTTP, multipart, WebSocket.

gql validates every operation locally against ``schema.graphql`` (as a client generated from the
committed SDL would), then sends it: queries and mutations over its httpx transport into the ASGI
app, ``uploadCreate`` through gql's GraphQL multipart request support, and a subscription over its
``websockets`` transport with ``graphql-transport-ws``. The websockets library needs a real socket,
so the same app object is also served by uvicorn on a loopback port for that one test.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from gql import Client, FileVar, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from graphql import GraphQLError, build_schema, validate

from debtgraph.resolvers.events import subscriber_count
from debtgraph.server.app import Runtime
from tests.integration.test_subscriptions import emit
from tests.integration.uploads_support import csv_text

SDL = (Path(__file__).resolve().parents[2] / "debtgraph/schema/schema.graphql").read_text()

DASHBOARD = gql("query Dashboard { dashboard { uploads { total } latestUploads { id } } }")
BLACKLIST_ADD = gql(
    """
    mutation Add($iban: String!) {
      blacklistAdd(input: {iban: $iban, reason: "fraud"}) {
        entry { iban reason }
        userErrors { field code message }
      }
    }
    """
)
UPLOAD = gql(
    """
    mutation Upload($file: File!) {
      uploadCreate(input: {file: $file}) {
        upload { id databaseId originalFilename totalRecords processedRecords failedRecords }
        queued created failed
        userErrors { field code message }
      }
    }
    """
)
EVENTS = gql(
    'subscription Events { events(types: ["receivable.status_changed"]) { type objectId } }'
)
OPERATIONS = [DASHBOARD, BLACKLIST_ADD, UPLOAD, EVENTS]


def test_committed_sdl_builds_and_validates_our_operations() -> None:
    schema = build_schema(SDL)
    assert schema.query_type is not None
    assert schema.mutation_type is not None
    assert schema.subscription_type is not None
    for document in OPERATIONS:
        assert validate(schema, document.document) == []
    client = Client(schema=SDL)
    # gql's own client-side validation accepts them, and refuses what the schema does not have.
    for document in OPERATIONS:
        client.validate(document)
    with pytest.raises(GraphQLError):
        client.validate(gql("{ dashboard { noSuchField } }"))


def _client(app: Any, headers: dict[str, str]) -> Client:
    transport = HTTPXAsyncTransport(
        url="http://testserver/graphql",
        headers=headers,
        transport=httpx.ASGITransport(app=app),
    )
    return Client(transport=transport, schema=SDL)


async def test_query_and_mutation(app: Any, admin_headers: dict[str, str]) -> None:
    async with _client(app, admin_headers) as session:
        before = await session.execute(DASHBOARD)
        assert before["dashboard"]["uploads"]["total"] == 0
        added = await session.execute(
            GraphQLRequest(BLACKLIST_ADD, variable_values={"iban": "es91 2100 0418 4502 0005 1332"})
        )
        assert added["blacklistAdd"] == {
            "entry": {"iban": "ES9121000418450200051332", "reason": "fraud"},
            "userErrors": [],
        }
        bad = await session.execute(
            GraphQLRequest(BLACKLIST_ADD, variable_values={"iban": "not an iban"})
        )
        assert bad["blacklistAdd"]["entry"] is None
        assert bad["blacklistAdd"]["userErrors"][0]["field"] == "iban"


async def test_an_anonymous_client_gets_unauthenticated(app: Any) -> None:
    async with _client(app, {}) as session:
        with pytest.raises(TransportQueryError) as refused:
            await session.execute(DASHBOARD)
    assert refused.value.errors
    assert refused.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_multipart_upload(app: Any, admin_headers: dict[str, str]) -> None:
    content = csv_text(4, bad_every=2).encode()
    async with _client(app, admin_headers) as session:
        file = FileVar(io.BytesIO(content), filename="dec.csv", content_type="text/csv")
        result = await session.execute(
            GraphQLRequest(UPLOAD, variable_values={"file": file}), upload_files=True
        )
    payload = result["uploadCreate"]
    assert payload["userErrors"] == []
    assert payload["queued"] is False
    assert (payload["created"], payload["failed"]) == (2, 2)
    assert payload["upload"]["originalFilename"] == "dec.csv"
    assert payload["upload"]["totalRecords"] == 4


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    """The test's app on a loopback port (its runtime is already started: no lifespan)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_subscription_over_graphql_transport_ws(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    async with served(app) as port:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{port}/graphql",
            init_payload={"Authorization": admin_headers["Authorization"]},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        async with Client(transport=transport, schema=SDL) as session:
            received: list[dict[str, Any]] = []

            async def listen() -> None:
                async for result in session.subscribe(EVENTS):
                    received.append(result["events"])
                    return

            listener = asyncio.create_task(listen())
            for _ in range(500):
                if subscriber_count(runtime.services):
                    break
                await asyncio.sleep(0.01)
            await emit(runtime, "receivable.created", "rcv_ignored")
            await emit(runtime, "receivable.status_changed", "rcv_1")
            await asyncio.wait_for(listener, 10)
        assert transport.subprotocol == WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL
    assert received == [{"type": "receivable.status_changed", "objectId": "rcv_1"}]
