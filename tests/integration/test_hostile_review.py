"""What an outside attacker found in minutes (review of this session), each refused as a client
error in its face's shape: no 500, no "Unexpected error.", no ERROR with a trace, nothing written.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from debtgraph.domain.debtors.models import Upload
from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.domain.receivables.models import Receivable
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, count, create_user
from tests.integration.live_server_support import live_server
from tests.integration.test_extraction import TEXT_PDF
from tests.integration.test_nul_both_faces import CREATE, _graphql_input
from tests.integration.test_subscriptions import _next, socket


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        # Its cents rounded to 0 in the decimal context: stored as a 0.00 receivable.
        ("1e-999999999", "invalid_amount", "invoice.amount must have at most 2 decimal places."),
        # abs() overflowed the decimal context: "Unexpected error." and a trace.
        ("1e999999999", "out_of_range", "invoice.amount must not exceed 9999999999.99."),
        ("-1e999999999", "out_of_range", "invoice.amount must not exceed 9999999999.99."),
        ("1.0000000000000000000000000000001", "invalid_amount", None),
    ],
)
async def test_extreme_decimal_amounts_are_refused_not_rounded_or_overflowed(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    caplog: pytest.LogCaptureFixture,
    amount: str,
    code: str,
    message: str | None,
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    uid = (await create_user(client, acme.api_key))["id"]
    given = _graphql_input(uid, "Consulting")
    given["invoice"].update(amount=amount, amountBeforeTax=None, taxAmount=None)
    body = await gql(client, CREATE, {"i": given}, headers)
    assert body["data"]["receivableCreate"]["receivable"] is None, body
    [error] = body["data"]["receivableCreate"]["userErrors"]
    assert (error["field"], error["code"]) == ("invoice.amount", code)
    if message is not None:
        assert error["message"] == message
    assert await count(db, Receivable) == 0
    quote = await gql(
        client,
        'query($a: Decimal!) { commissionQuote(amount: $a, dueDate: "2026-01-01") { rate } }',
        {"a": amount},
        headers,
    )
    [refusal] = quote["errors"]
    assert refusal["extensions"]["code"] == "BAD_USER_INPUT", quote
    assert [e["code"] for e in refusal["extensions"]["errors"]] == [code]
    assert _errors_logged(caplog) == []


def _part(name: str, value: bytes, filename: bytes | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'.encode()
    if filename is not None:
        disposition += b'; filename="' + filename + b'"\r\nContent-Type: text/csv'
    return b"--BND\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"


CSV = b"first_name,last_name,iban,amount\nMaria,Rodriguez,ES9121000418450200051332,150.00\n"
MULTIPART = {"Content-Type": "multipart/form-data; boundary=BND"}


async def test_a_nul_in_an_uploaded_file_name_is_refused_by_both_faces(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Raw bodies: httpx would percent-encode the NUL of a filename it writes itself.
    name = b"a\x00b.csv"
    headers = {**admin_headers, **MULTIPART}
    rest = await client.post(
        "/api/admin/uploads", content=_part("file", CSV, name) + b"--BND--\r\n", headers=headers
    )
    assert rest.status_code == 422, rest.text
    assert rest.json()["errors"] == {"file": ["Text must not contain the NUL character (\\u0000)."]}
    operations = (
        b'{"query": "mutation($i: UploadCreateInput!) { uploadCreate(input: $i) { upload { id }'
        b' userErrors { field code message } } }", "variables": {"i": {"file": null}}}'
    )
    body = (
        _part("operations", operations)
        + _part("map", b'{"0": ["variables.i.file"]}')
        + _part("0", CSV, name)
        + b"--BND--\r\n"
    )
    graph = (await client.post("/graphql", content=body, headers=headers)).json()
    payload = graph["data"]["uploadCreate"]
    assert payload["upload"] is None, graph
    assert payload["userErrors"] == [
        {
            "field": "file",
            "code": "invalid_character",
            "message": "Text must not contain the NUL character (\\u0000).",
        }
    ]
    assert await count(db, Upload) == 0
    assert await asyncio.to_thread(lambda: list(Path(settings.upload_dir).glob("*"))) == []
    assert _errors_logged(caplog) == []


SUBSCRIBE = "subscription A { debtorStatusChanged { id } }"
AMBIGUOUS = "query A { __typename } query C { __typename }"
MULTIPLE = "Must provide operation name if query contains multiple operations."


def _bad(message: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": "BAD_REQUEST"}}


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize(
    ("query", "name", "error"),
    [
        (SUBSCRIBE, "B", _bad('Unknown operation named "B".')),
        (AMBIGUOUS, None, _bad(MULTIPLE)),
        ("fragment F on Query { __typename }", None, _bad("Can't get GraphQL operation type")),
        (
            "subscription { debtorStatusChanged { id }",
            None,
            {
                "message": "Syntax Error: Expected Name, found <EOF>.",
                "locations": [{"line": 1, "column": 42}],
                "extensions": {"code": "GRAPHQL_PARSE_FAILED"},
            },
        ),
        (
            "{" + " a" * 5001 + " }",
            None,
            {
                "message": "Syntax Error: Document contains more than 5000 tokens."
                " Parsing aborted.",
                "locations": [{"line": 1, "column": 10001}],
                "extensions": {"code": "QUERY_TOO_COMPLEX", "limit": "tokens", "max": 5000},
            },
        ),
    ],
    ids=["unknown-name", "several-unnamed", "no-operation", "syntax", "tokens"],
)
async def test_a_socket_naming_no_single_operation_is_a_bad_request(
    app: Any,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
    query: str,
    name: str | None,
    error: dict[str, Any],
) -> None:
    # Strawberry raised for a name matching nothing (or no operation), which its socket handlers
    # answered "Unexpected error." with an incident's trace (HTTP answers 400); it ran the first
    # of several unnamed operations; and graphql-transport-ws closed the whole socket (4400) on
    # a syntax error or the token limit (review). Each is an error message; the socket stays.
    start = "subscribe" if protocol == "graphql-transport-ws" else "start"
    async with socket(app, protocol) as ws:
        await ws.send_text(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await _next(ws))["type"] == "connection_ack"
        payload = {"query": query, **({"operationName": name} if name else {})}
        await ws.send_text(json.dumps({"id": "1", "type": start, "payload": payload}))
        answer = await _next(ws)
        assert answer == {
            "id": "1",
            "type": "error",
            "payload": [error] if protocol == "graphql-transport-ws" else error,
        }
        # Still served: the same socket answers a well-formed operation (refused: anonymous).
        await ws.send_text(json.dumps({"id": "2", "type": start, "payload": {"query": SUBSCRIBE}}))
        assert (await _next(ws))["id"] == "2"
    assert _errors_logged(caplog) == []


async def test_several_operations_without_a_name_run_none_of_them(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # Strawberry ran the first operation when none was named: this logged the operator out.
    body = await gql(
        client, "mutation M { logout { __typename } } " + AMBIGUOUS, None, admin_headers
    )
    assert body == {
        "data": None,
        "errors": [
            {
                "message": "Must provide operation name if query contains multiple operations.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ],
    }
    assert (await client.get("/api/user", headers=admin_headers)).status_code == 200
    named = await client.post(
        "/graphql", json={"query": AMBIGUOUS, "operationName": "C"}, headers=admin_headers
    )
    assert named.json() == {"data": {"__typename": "Query"}}


async def test_a_websocket_message_past_max_body_kb_closes_the_socket_unread(
    settings: Any,
) -> None:
    # uvicorn's default let each anonymous socket have a 16 MiB frame buffered and parsed
    # (a dozen sockets: +500 MB); a message is held to MAX_BODY_KB as an HTTP body is.
    async with live_server(settings, MAX_BODY_KB="64") as server:
        url = f"ws://127.0.0.1:{server.port}/graphql"
        init = {"type": "connection_init", "payload": {"junk": "a" * 60_000}}
        async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps(init))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        init["payload"] = {"junk": "a" * 70_000}
        async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps(init))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009  # message too big


async def test_a_nul_in_an_invoice_file_name_is_refused_by_both_faces(
    client: httpx.AsyncClient, make_platform: Any, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The same rule as a CSV upload's (review: extraction stored the name and failed on it).
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    headers = {**bearer(acme.api_key), **MULTIPART}
    invoice = _part("file", TEXT_PDF, b"inv\x00.pdf")
    rest = await client.post(
        "/v1/receivables/ocr",
        content=_part("user_id", uid.encode()) + invoice + b"--BND--\r\n",
        headers=headers,
    )
    assert rest.status_code == 400, rest.text
    error = rest.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_character", "file")
    operations = (
        b'{"query": "mutation($i: InvoiceExtractInput!) { invoiceExtract(input: $i) {'
        b' extraction { id } userErrors { field code } } }", "variables": {"i": {"userId": "'
        + uid.encode()
        + b'", "file": null}}}'
    )
    body = (
        _part("operations", operations)
        + _part("map", b'{"0": ["variables.i.file"]}')
        + _part("0", TEXT_PDF, b"inv\x00.pdf")
        + b"--BND--\r\n"
    )
    graph = (await client.post("/graphql", content=body, headers=headers)).json()
    assert graph["data"]["invoiceExtract"] == {
        "extraction": None,
        "userErrors": [{"field": "file", "code": "invalid_character"}],
    }, graph
    assert await count(db, ExtractionResult) == 0
    assert _errors_logged(caplog) == []


async def test_a_subscribe_reusing_a_live_id_is_still_the_protocols_4409(
    app: Any, admin_headers: dict[str, str], runtime: Any
) -> None:
    # The document checks must not answer first: a client library ends the live subscription
    # of that id on an error message, where the protocol closes the socket (review).
    from httpx_ws import WebSocketDisconnect

    from tests.integration.test_subscriptions import _wait_subscribed

    async with socket(app) as ws:
        init = {
            "type": "connection_init",
            "payload": {"Authorization": admin_headers["Authorization"]},
        }
        await ws.send_text(json.dumps(init))
        assert (await _next(ws))["type"] == "connection_ack"
        subscribe = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
        await ws.send_text(json.dumps(subscribe))
        await _wait_subscribed(runtime)
        again = {"id": "1", "type": "subscribe", "payload": {"query": AMBIGUOUS}}
        await ws.send_text(json.dumps(again))
        with pytest.raises(WebSocketDisconnect) as closed:
            await _next(ws)
    assert closed.value.code == 4409
