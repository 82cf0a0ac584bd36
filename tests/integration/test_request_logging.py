"""Logs (issue 7): one access line per request, client errors at INFO without traces, incidents
at ERROR with one trace and the request id, and no per-WebSocket chatter from uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from debtgraph.resolvers import auth
from debtgraph.server.logging import JsonFormatter

NODE_QUERY = '{ node(id: "bogus") { id } }'
BAD_VARIABLE = "query($f: Int) { uploads(first: $f) { totalCount } }"
UPLOAD = "mutation($f: File!) { uploadCreate(input: {file: $f}) { queued } }"


class Formatted(logging.Handler):
    """Formats each record as it is emitted, while the request's context (its id) is current."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def formatted() -> Any:
    handler = Formatted()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def _app_lines(handler: Formatted) -> list[dict[str, Any]]:
    return [
        line
        for line in handler.lines
        if line["logger"].startswith(("debtgraph", "strawberry", "uvicorn"))
    ]


async def test_graphql_client_mistakes_are_info_without_a_trace(
    client: httpx.AsyncClient, admin_headers: dict[str, str], formatted: Formatted
) -> None:
    mistakes: list[dict[str, Any]] = [
        {"json": {"query": NODE_QUERY}},
        {"json": {"query": BAD_VARIABLE, "variables": {"f": "x"}}},
        # A multipart upload without its ``map``: the file never reaches the variable.
        {
            "data": {"operations": json.dumps({"query": UPLOAD, "variables": {"f": None}})},
            "files": {"0": ("a.csv", b"x", "text/csv")},
        },
        {"json": {"query": "{ uploads { totalCount } }"}, "headers": {}},
    ]
    for mistake in mistakes:
        formatted.lines.clear()
        response = await client.post("/graphql", **{"headers": admin_headers, **mistake})
        assert response.json()["errors"], response.text
        lines = _app_lines(formatted)
        assert [line for line in lines if line["level"] not in ("INFO", "DEBUG")] == [], lines
        assert not any("exception" in line for line in lines), lines
        assert any(line["message"].startswith("GraphQL client error") for line in lines), lines
        access = [line for line in lines if line["logger"] == "debtgraph.access"]
        assert [line["path"] for line in access] == ["/graphql"]


async def test_an_unexpected_graphql_error_is_one_error_with_one_trace_and_the_request_id(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    formatted: Formatted,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(auth, "me", broken)
    response = await client.post(
        "/graphql",
        json={"query": "{ me { id } }"},
        headers={**admin_headers, "X-Request-ID": "req-graph-1"},
    )
    assert response.json()["errors"][0]["message"] == "Unexpected error."
    errors = [line for line in _app_lines(formatted) if line["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0]["request_id"] == "req-graph-1"
    assert errors[0]["exception"].count("Traceback") == 1
    assert "injected" in errors[0]["exception"]


async def test_rest_client_errors_log_only_the_access_line(
    client: httpx.AsyncClient, formatted: Formatted
) -> None:
    for path in ("/v1/users/%00", "/v1/receivables", "/api/admin/debtors"):
        formatted.lines.clear()
        response = await client.get(path)
        assert 400 <= response.status_code < 500
        lines = _app_lines(formatted)
        assert [line["logger"] for line in lines] == ["debtgraph.access"], lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until_healthy(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(60):
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


async def test_the_served_process_logs_one_line_per_request_and_no_websocket_chatter(
    tmp_path: Path,
) -> None:
    from httpx_ws import aconnect_ws

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as stderr:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "debtgraph.server.cli",
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                await _until_healthy(client)
                await client.get("/readyz", headers={"X-Request-ID": "req-ready"})
                async with aconnect_ws(
                    "/graphql", client, subprotocols=["graphql-transport-ws"]
                ) as ws:
                    await ws.send_json({"type": "connection_init", "payload": {}})
                    assert json.loads(await ws.receive_text())["type"] == "connection_ack"
                await client.get("/readyz", headers={"X-Request-ID": "req-last"})
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 20)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    ready = [line for line in lines if line.get("request_id") == "req-ready"]
    assert [(line["logger"], line["message"]) for line in ready] == [
        ("debtgraph.access", "GET /readyz 200")
    ]
    assert not any(line["logger"] == "uvicorn.access" for line in lines), lines
    chatter = [
        line
        for line in lines
        if line["logger"].startswith("uvicorn")
        and ("WebSocket" in line["message"] or line["message"].startswith("connection "))
    ]
    assert chatter == [], chatter
    sockets = [line for line in lines if line.get("method") == "WEBSOCKET"]
    assert [(line["path"], line["status"]) for line in sockets] == [("/graphql", 101)]
