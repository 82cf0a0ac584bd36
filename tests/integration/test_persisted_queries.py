"""Persisted queries (issue 13): Apollo's automatic protocol over POST, GET and WebSocket, the
bounded store, and the enforced mode that runs only the documents of a manifest.

The automatic flow is driven by gql (a real client library) with Apollo's link algorithm on top:
send the hash alone, and the document with its hash when the server answers
PERSISTED_QUERY_NOT_FOUND. Hostile variants are sent as raw requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import ExecutionResult, print_ast
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from debtgraph.domain.core.hashstore import MemoryHashStore, RedisHashStore
from debtgraph.resolvers.events import subscriber_count
from debtgraph.schema.persisted import DOCUMENTS_PORT
from debtgraph.server.app import Runtime, create_app, start_runtime, stop_runtime
from debtgraph.settings import ConfigError, Settings
from tests.conftest import REDIS_URL
from tests.integration.test_graphql_client import served
from tests.integration.test_subscriptions import emit

DASHBOARD = "query Dashboard { dashboard { uploads { total } } }"
BLACKLIST_ADD = (
    'mutation Add($iban: String!) { blacklistAdd(input: {iban: $iban, reason: "fraud"}) '
    "{ entry { iban } } }"
)
EVENTS = 'subscription { events(types: ["receivable.status_changed"]) { type objectId } }'


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(document)}}


class PersistedQueryTransport(HTTPXAsyncTransport):
    """gql's httpx transport with Apollo's persisted-query link: hash first, document on miss."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[dict[str, Any]] = []
        self._with_document = False

    def _prepare_request(self, request: Any, **kwargs: Any) -> dict[str, Any]:
        post_args = super()._prepare_request(request, **kwargs)
        payload = post_args["json"]
        payload["extensions"] = persisted(payload["query"])
        if not self._with_document:
            del payload["query"]
        self.sent.append(dict(payload))
        return post_args

    async def execute(self, request: GraphQLRequest, **kwargs: Any) -> ExecutionResult:
        self._with_document = False
        result = await super().execute(request, **kwargs)
        codes = [e.get("extensions", {}).get("code") for e in result.errors or []]
        if "PERSISTED_QUERY_NOT_FOUND" in codes:
            self._with_document = True
            result = await super().execute(request, **kwargs)
        return result


async def test_a_gql_client_registers_a_document_once_and_then_sends_its_hash(
    app: Any, admin_headers: dict[str, str]
) -> None:
    transport = PersistedQueryTransport(
        url="http://testserver/graphql",
        headers=admin_headers,
        transport=httpx.ASGITransport(app=app),
    )
    query = gql(DASHBOARD)
    text = print_ast(query.document)
    async with Client(transport=transport) as session:
        first = await session.execute(query)
        second = await session.execute(query)
        added = await session.execute(
            GraphQLRequest(gql(BLACKLIST_ADD), variable_values={"iban": "ES9121000418450200051332"})
        )
    assert first == second == {"dashboard": {"uploads": {"total": 0}}}
    assert added == {"blacklistAdd": {"entry": {"iban": "ES9121000418450200051332"}}}
    # Miss and register, then the hash alone; the mutation likewise.
    assert ["query" in p for p in transport.sent] == [False, True, False, False, True]
    assert transport.sent[2] == {"extensions": persisted(text)}


async def test_get_requests_carry_the_hash_in_the_query_string(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    params = {"extensions": json.dumps(persisted(DASHBOARD))}
    miss = await client.get("/graphql", params=params, headers=admin_headers)
    assert miss.status_code == 200
    assert miss.json() == {
        "data": None,
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ],
    }
    registered = await client.get(
        "/graphql", params={**params, "query": DASHBOARD}, headers=admin_headers
    )
    assert registered.json() == {"data": {"dashboard": {"uploads": {"total": 0}}}}
    hit = await client.get("/graphql", params=params, headers=admin_headers)
    assert hit.json() == registered.json()
    # A stored mutation still does not run over GET.
    added = {"query": BLACKLIST_ADD, "variables": {"iban": "ES9121000418450200051332"}}
    ran = await client.post(
        "/graphql", json={**added, "extensions": persisted(BLACKLIST_ADD)}, headers=admin_headers
    )
    assert "errors" not in ran.json(), ran.json()
    over_get = await client.get(
        "/graphql",
        params={
            "extensions": json.dumps(persisted(BLACKLIST_ADD)),
            "variables": json.dumps({"iban": "DE89370400440532013000"}),
        },
        headers=admin_headers,
    )
    assert over_get.status_code == 400
    body = await client.post(
        "/graphql", json={"query": "{ blacklistedIbans { totalCount } }"}, headers=admin_headers
    )
    assert body.json() == {"data": {"blacklistedIbans": {"totalCount": 1}}}


async def post(client: httpx.AsyncClient, body: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/graphql", json=body, **kw)
    return response.status_code, response.json()


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body
    return body["errors"][0]  # type: ignore[no-any-return]


async def test_bad_hashes_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    typename = "{ __typename }"
    status, body = await post(client, {"query": typename, "extensions": persisted("{ other }")})
    assert status == 400
    assert only_error(body) == {
        "message": "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query.",
        "extensions": {"code": "BAD_REQUEST"},
    }
    for bad in (
        {"version": 2, "sha256Hash": sha(typename)},
        {"version": 1, "sha256Hash": "abc"},
        {"version": 1},
        "hash",
    ):
        status, body = await post(
            client, {"query": typename, "extensions": {"persistedQuery": bad}}
        )
        assert status == 400, bad
        assert only_error(body)["extensions"] == {"code": "BAD_REQUEST"}
        assert "persistedQuery" in only_error(body)["message"]
    store = runtime.services.ports[DOCUMENTS_PORT]
    assert await store.get(sha(typename)) is None
    assert await store.get(sha("{ other }")) is None


async def test_only_documents_that_validate_and_keep_to_the_limits_are_stored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    store = runtime.services.ports[DOCUMENTS_PORT]
    refused = [
        "{ noSuchField }",  # does not validate
        "{ __typename",  # does not parse
        "{ receivables(first: 100) { nodes { user { receivables(first: 100) { totalCount } } } } }",
        "{ " + " ".join(f"a{i}: __typename" for i in range(101)) + " }",  # aliases
        "{ receivables(first: 5000) { totalCount } }",  # page size
    ]
    for document in refused:
        status, body = await post(client, {"query": document, "extensions": persisted(document)})
        assert status == 200
        assert body["data"] is None, document
        assert await store.get(sha(document)) is None, document
        _, again = await post(client, {"extensions": persisted(document)})
        assert only_error(again)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # A document over the size limit is refused before it is hashed or parsed.
    big = "{ __typename }\n#" + "x" * 70_000
    _, body = await post(client, {"query": big, "extensions": persisted(big)})
    assert only_error(body)["extensions"]["limit"] == "GRAPHQL_MAX_DOCUMENT_KB"
    assert await store.get(sha(big)) is None


async def test_the_store_is_bounded_and_evicts_the_least_recently_used(
    settings: Settings, clock: Any
) -> None:
    app = create_app(dataclasses.replace(settings, graphql_apq_max_entries=3), clock=clock)
    runtime: Runtime = app.state.runtime
    await start_runtime(runtime, periodic=False)
    try:
        store = runtime.services.ports[DOCUMENTS_PORT]
        if REDIS_URL:
            assert isinstance(store, RedisHashStore)
            await store._redis.flushdb()
        else:
            assert isinstance(store, MemoryHashStore)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            documents = [f"query Q{i} {{ __typename }}" for i in range(5)]
            for document in documents[:3]:
                await post(c, {"query": document, "extensions": persisted(document)})
            # Q0 used again: Q1 is now the least recently used, evicted by Q3; Q2 by Q4.
            _, hit = await post(c, {"extensions": persisted(documents[0])})
            assert hit == {"data": {"__typename": "Query"}}
            for document in documents[3:]:
                await post(c, {"query": document, "extensions": persisted(document)})
            kept = [await store.get(sha(d)) is not None for d in documents]
            assert kept == [True, False, False, True, True]
            if isinstance(store, RedisHashStore):
                assert await store.count() == 3
                ttl = await store._redis.ttl("debtgraph:apq:text:" + sha(documents[4]))
                assert 0 < ttl <= settings.graphql_apq_ttl_seconds
            else:
                assert len(store) == 3
    finally:
        await stop_runtime(runtime)


async def test_the_memory_store_keeps_to_its_byte_budget_and_ttl() -> None:
    store = MemoryHashStore(max_entries=100, ttl_seconds=60, budget_bytes=10_000)
    for i in range(10):
        await store.put(f"k{i}", "x" * 3000)
    assert len(store) == 3
    assert [await store.get(f"k{i}") is not None for i in (6, 7, 8, 9)] == [False, True, True, True]
    expired = MemoryHashStore(max_entries=10, ttl_seconds=0)
    await expired.put("k", "text")
    assert await expired.get("k") is None
    assert len(expired) == 0


async def send(ws: Any, message: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(message).decode())  # a text frame, as the protocol wants


@contextlib.asynccontextmanager
async def socket(port: int, token: str) -> AsyncIterator[Any]:
    async with connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as ws:
        await send(ws, {"type": "connection_init", "payload": {"Authorization": token}})
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        yield ws


@contextlib.asynccontextmanager
async def legacy_socket(port: int, token: str) -> AsyncIterator[tuple[Any, Any]]:
    """A graphql-ws socket past connection_ack, and a receive that skips its keep-alives."""
    async with connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=["graphql-ws"],  # type: ignore[list-item]
    ) as ws:

        async def receive() -> dict[str, Any]:
            while True:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                if message["type"] != "ka":
                    return message  # type: ignore[no-any-return]

        await send(ws, {"type": "connection_init", "payload": {"Authorization": token}})
        assert (await receive())["type"] == "connection_ack"
        yield ws, receive


async def subscribed(runtime: Runtime, n: int) -> None:
    """Wait until ``n`` subscriptions listen on the bus."""
    for _ in range(500):
        if subscriber_count(runtime.services) == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{subscriber_count(runtime.services)} subscriptions, not {n}")


async def test_subscriptions_use_persisted_queries_over_websocket(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    async with served(app) as port, socket(port, admin_headers["Authorization"]) as ws:
        hash_only = {"extensions": persisted(EVENTS)}
        await send(ws, {"id": "1", "type": "subscribe", "payload": hash_only})
        miss = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert miss == {
            "id": "1",
            "type": "error",
            "payload": [
                {
                    "message": "PersistedQueryNotFound",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                }
            ],
        }
        register = {"query": EVENTS, **hash_only}
        await send(ws, {"id": "2", "type": "subscribe", "payload": register})
        await send(ws, {"id": "3", "type": "subscribe", "payload": hash_only})
        await subscribed(runtime, 2)
        await emit(runtime, "receivable.status_changed", "rcv_1")
        got = [orjson.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
        assert sorted(m["id"] for m in got) == ["2", "3"]
        assert {m["payload"]["data"]["events"]["objectId"] for m in got} == {"rcv_1"}
        # Over the size limit: refused before it is parsed, and the socket stays open.
        big = {"query": EVENTS + "#" + "x" * 70_000}
        await send(ws, {"id": "4", "type": "subscribe", "payload": big})
        refused = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert refused["id"] == "4"
        assert refused["payload"][0]["extensions"]["limit"] == "GRAPHQL_MAX_DOCUMENT_KB"
        await send(ws, {"type": "ping"})
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


# --- enforced mode ------------------------------------------------------------------------------


def write_documents(folder: Path, documents: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        (folder / name).write_text(text, encoding="utf-8")


def build_manifest_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debtgraph.server.cli", "persisted-queries", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_manifest_is_built_from_a_folder_and_refuses_invalid_documents(
    tmp_path: Path,
) -> None:
    write_documents(tmp_path / "ops", {"dashboard.graphql": DASHBOARD})
    write_documents(tmp_path / "ops" / "nested", {"add.graphql": BLACKLIST_ADD})
    manifest = tmp_path / "manifest.json"
    built = build_manifest_cli(str(tmp_path / "ops"), "--output", str(manifest))
    assert built.returncode == 0, built.stderr
    assert "2 documents written" in built.stdout
    assert json.loads(manifest.read_text()) == {
        sha(DASHBOARD): DASHBOARD,
        sha(BLACKLIST_ADD): BLACKLIST_ADD,
    }
    write_documents(tmp_path / "ops", {"broken.graphql": "{ noSuchField }"})
    refused = build_manifest_cli(str(tmp_path / "ops"))
    assert refused.returncode == 1
    assert "broken.graphql" in refused.stderr
    assert "noSuchField" in refused.stderr
    assert refused.stdout == ""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({sha(DASHBOARD): DASHBOARD, sha(EVENTS): EVENTS}))
    return path


@contextlib.asynccontextmanager
async def enforced(settings: Settings, clock: Any, manifest: Path) -> AsyncIterator[Any]:
    app = create_app(
        dataclasses.replace(
            settings,
            graphql_persisted_queries="enforced",
            graphql_persisted_queries_manifest=str(manifest),
        ),
        clock=clock,
    )
    await start_runtime(app.state.runtime, periodic=False)
    try:
        yield app
    finally:
        await stop_runtime(app.state.runtime)


async def test_enforced_mode_runs_only_registered_documents(
    settings: Settings, clock: Any, manifest: Path, admin_headers: dict[str, str]
) -> None:
    async with enforced(settings, clock, manifest) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            expected = {"data": {"dashboard": {"uploads": {"total": 0}}}}
            by_hash = {"extensions": persisted(DASHBOARD)}
            assert await post(c, by_hash, headers=admin_headers) == (200, expected)
            assert await post(c, {"query": DASHBOARD}, headers=admin_headers) == (200, expected)
            # Anything else is refused before it is parsed, and registering is not possible.
            for document in ("{ __typename }", DASHBOARD + " "):
                status, body = await post(
                    c, {"query": document, "extensions": persisted(document)}, headers=admin_headers
                )
                assert status == 200
                assert only_error(body)["extensions"] == {"code": "QUERY_NOT_IN_SAFELIST"}
                assert "GRAPHQL_PERSISTED_QUERIES=enforced" in only_error(body)["message"]
                _, miss = await post(c, {"extensions": persisted(document)})
                assert only_error(miss)["extensions"] == {"code": "PERSISTED_QUERY_NOT_IN_LIST"}
            # Registered is not authorised: the caller's access rules still apply.
            _, anonymous = await post(c, by_hash)
            assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        async with served(app) as port, socket(port, admin_headers["Authorization"]) as ws:
            other = {"query": "subscription { dashboardUpdated { uploads { total } } }"}
            await send(ws, {"id": "1", "type": "subscribe", "payload": other})
            refused = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"
            # An extensions member that is no object does not step around the safelist.
            await send(
                ws, {"id": "x", "type": "subscribe", "payload": {**other, "extensions": "x"}}
            )
            sidestep = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert sidestep["type"] == "error"
            assert sidestep["payload"][0]["extensions"]["code"] == "BAD_REQUEST"
            hash_only = {"extensions": persisted(EVENTS)}
            await send(ws, {"id": "2", "type": "subscribe", "payload": hash_only})
            await subscribed(app.state.runtime, 1)
            await emit(app.state.runtime, "receivable.status_changed", "rcv_9")
            event = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event["payload"]["data"]["events"]["objectId"] == "rcv_9"


async def test_malformed_subscribe_payloads_are_refused_and_the_socket_serves_on(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    huge = "query { __typename }" + " " * (70 * 1024)  # over the 64 KB document limit
    malformed = [
        ([1], "payload must be a JSON object"),
        ({"query": EVENTS, "variables": [1]}, "`variables` must be an object"),
        ({"query": 5}, "`query` must be a string"),
        ({"query": EVENTS, "operationName": 5}, "`operationName` must be a string"),
        ({"query": huge, "extensions": []}, "`extensions` must be an object"),
    ]
    async with served(app) as port, socket(port, admin_headers["Authorization"]) as ws:
        for n, (payload, message) in enumerate(malformed):
            await send(ws, {"id": str(n), "type": "subscribe", "payload": payload})
            refused = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert refused["type"] == "error", payload
            assert refused["id"] == str(n)
            assert refused["payload"][0]["extensions"] == {"code": "BAD_REQUEST"}
            assert message in refused["payload"][0]["message"]
        await send(ws, {"id": "ok", "type": "subscribe", "payload": {"query": EVENTS}})
        await subscribed(runtime, 1)
        await emit(runtime, "receivable.status_changed", "rcv_2")
        event = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert event["id"] == "ok"
        assert event["payload"]["data"]["events"]["objectId"] == "rcv_2"


@pytest.mark.parametrize(
    "frame",
    [[1], "x", 5, {"id": [1], "type": "subscribe", "payload": {"query": EVENTS}}],
)
async def test_a_transport_ws_frame_that_is_no_message_closes_with_4400(
    app: Any, admin_headers: dict[str, str], frame: Any
) -> None:
    async with served(app) as port, socket(port, admin_headers["Authorization"]) as ws:
        await ws.send(orjson.dumps(frame).decode())
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400


async def test_a_graphql_ws_message_of_the_wrong_shape_is_an_error_and_the_socket_serves_on(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    async with (
        served(app) as port,
        legacy_socket(port, admin_headers["Authorization"]) as (ws, receive),
    ):
        for frame in (
            [1],
            {"payload": {"query": EVENTS}},
            {"type": "start", "payload": {"query": EVENTS}},
            {"id": [1], "type": "start", "payload": {"query": EVENTS}},
        ):
            await ws.send(orjson.dumps(frame).decode())
            refused = await receive()
            assert refused["type"] == "error", frame
            assert refused["payload"]["extensions"] == {"code": "BAD_REQUEST"}
        await send(ws, {"id": "q", "type": "start", "payload": {}})
        assert await receive() == {
            "type": "error",
            "id": "q",
            "payload": {
                "message": "No GraphQL query found in the request",
                "extensions": {"code": "BAD_REQUEST"},
            },
        }
        await send(ws, {"id": "ok", "type": "start", "payload": {"query": EVENTS}})
        await subscribed(runtime, 1)
        await emit(runtime, "receivable.status_changed", "rcv_3")
        event = await receive()
        assert event["id"] == "ok"
        assert event["payload"]["data"]["events"]["objectId"] == "rcv_3"


async def test_an_unusable_manifest_refuses_to_start(
    settings: Settings, clock: Any, tmp_path: Path
) -> None:
    def start(content: str) -> None:
        path = tmp_path / "m.json"
        path.write_text(content)
        create_app(
            dataclasses.replace(
                settings,
                graphql_persisted_queries="enforced",
                graphql_persisted_queries_manifest=str(path),
            ),
            clock=clock,
        )

    with pytest.raises(ConfigError, match="not the SHA-256"):
        start(json.dumps({sha("{ other }"): DASHBOARD}))
    with pytest.raises(ConfigError, match="noSuchField"):
        start(json.dumps({sha("{ noSuchField }"): "{ noSuchField }"}))
    with pytest.raises(ConfigError, match="hash to document"):
        start("[1, 2]")
    with pytest.raises(ConfigError, match="GRAPHQL_PERSISTED_QUERIES_MANIFEST"):
        Settings(graphql_persisted_queries="enforced").check()
    with pytest.raises(ConfigError, match="off, automatic or enforced"):
        Settings(graphql_persisted_queries="sometimes").check()
    # Apollo's manifest format is read as well.
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha(DASHBOARD), "name": "Dashboard", "type": "query", "body": DASHBOARD}
        ],
    }
    start(json.dumps(apollo))


async def test_persisted_queries_off_tells_clients_to_send_documents(
    settings: Settings, clock: Any
) -> None:
    app = create_app(dataclasses.replace(settings, graphql_persisted_queries="off"), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        status, body = await post(c, {"extensions": persisted("{ __typename }")})
        assert status == 400
        assert only_error(body) == {
            "message": "PersistedQueryNotSupported",
            "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
        }
        assert await post(c, {"query": "{ __typename }"}) == (
            200,
            {"data": {"__typename": "Query"}},
        )


async def test_the_older_graphql_ws_protocol_uses_persisted_queries_too(
    app: Any, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    async with (
        served(app) as port,
        legacy_socket(port, admin_headers["Authorization"]) as (ws, receive),
    ):
        hash_only = {"extensions": persisted(EVENTS)}
        await send(ws, {"id": "1", "type": "start", "payload": hash_only})
        assert await receive() == {
            "type": "error",
            "id": "1",
            "payload": {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            },
        }
        await send(ws, {"id": "2", "type": "start", "payload": {"query": EVENTS, **hash_only}})
        await send(ws, {"id": "3", "type": "start", "payload": hash_only})
        await subscribed(runtime, 2)
        await emit(runtime, "receivable.status_changed", "rcv_2")
        got = [await receive() for _ in range(2)]
        assert sorted(m["id"] for m in got) == ["2", "3"]
        assert {m["payload"]["data"]["events"]["objectId"] for m in got} == {"rcv_2"}
        # graphql-ws serves subscriptions only: a query is the client's mistake, said so.
        await send(ws, {"id": "4", "type": "start", "payload": {"query": "{ __typename }"}})
        refused = await receive()
        assert refused == {
            "type": "error",
            "id": "4",
            "payload": {
                "message": "graphql-ws serves subscriptions only: send queries and mutations"
                " over HTTP, or all three over graphql-transport-ws.",
                "extensions": {"code": "BAD_REQUEST"},
            },
        }


async def test_a_document_whose_other_operation_is_over_the_limits_is_not_stored(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # The first operation's default once measured the second: both were stored and runnable.
    store = runtime.services.ports[DOCUMENTS_PORT]
    cheap = "query A($n: Int = 1) { receivables(first: $n) { totalCount } } "
    expensive = (
        "query B($n: Int = 100) { receivables(first: $n) { nodes { user { receivables(first: $n)"
        " { nodes { contacts(first: $n) { totalCount } } } } } } }"
    )
    ids = "[" + ", ".join(f'"{i}"' for i in range(300)) + "]"
    for document in (
        cheap + expensive,
        f"query A($i: [ID!]! = []) {{ __typename }} query B($i: [ID!]! = {ids}) "
        "{ nodes(ids: $i) { id } }",
        'query A($s: String = "a") { __typename } '
        'query B($s: String = "\\u0000") { debtors(search: $s) { totalCount } }',
    ):
        for operation in ("A", "B"):
            body = {
                "query": document,
                "operationName": operation,
                "extensions": persisted(document),
            }
            status, answer = await post(client, body)
            assert status == 200
            assert answer["data"] is None, answer
        assert await store.get(sha(document)) is None, document
        _, again = await post(client, {"extensions": persisted(document), "operationName": "B"})
        assert only_error(again)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("name", [5, ["A"], {"a": 1}, True])
async def test_an_operation_name_that_is_no_string_is_refused_over_http_as_over_websocket(
    client: httpx.AsyncClient, name: Any
) -> None:
    # HTTP looked it up as a name ('Unknown operation named "5".'); the sockets refuse it by
    # its type (the test above).
    response = await client.post(
        "/graphql", json={"query": "{ __typename }", "operationName": name}
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "`operationName` must be a string or null" in error["message"]
