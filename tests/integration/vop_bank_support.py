"""A tiny VOP service on a free loopback port (a real HTTP server, for the HTTP provider)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.integration.live_server_support import serving_in_thread


@dataclass
class Bank:
    """What the fake service knows and how it behaves; ``calls`` records every request body."""

    holders: dict[str, str | None] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    mode: str = "ok"  # ok | fail | slow | garbage | short
    fail_after: int | None = None  # answer 503 from this call on
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/vop"

    @property
    def asked_ibans(self) -> list[str]:
        return [item["iban"] for call in self.calls for item in call]

    def answer(self, item: dict[str, Any]) -> dict[str, Any]:
        iban = item["iban"]
        if iban in self.closed:
            return {"account_status": "closed", "holder_name": None}
        return {"account_status": "open", "holder_name": self.holders.get(iban, item["name"])}


def _app(bank: Bank) -> Starlette:
    async def vop(request: Request) -> Response:
        body = await request.json()
        items = body["requests"]
        bank.calls.append(items)
        if bank.fail_after is not None and len(bank.calls) > bank.fail_after:
            return PlainTextResponse("down", status_code=503)
        if bank.mode == "fail":
            return PlainTextResponse("down", status_code=503)
        if bank.mode == "slow":
            await asyncio.sleep(2)
        if bank.mode == "garbage":
            return PlainTextResponse("not json")
        results = [bank.answer(item) for item in items]
        if bank.mode == "short":
            results = results[:-1]
        return JSONResponse({"results": results})

    return Starlette(routes=[Route("/vop", vop, methods=["POST"])])


@contextlib.contextmanager
def running_bank(bank: Bank | None = None) -> Iterator[Bank]:
    """Serve a Bank with uvicorn in a thread of its own until the block ends."""
    bank = bank or Bank()
    with serving_in_thread(_app(bank), "VOP") as bank.port:
        yield bank
