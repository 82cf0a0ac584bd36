"""A tiny SEPA gateway on a free loopback port (a real HTTP server, for the HTTP gateway)."""

from __future__ import annotations

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
class Gateway:
    """What the fake gateway refuses; ``calls`` records every request, ``accepted`` what it took."""

    refused_ibans: set[str] = field(default_factory=set)
    known: set[str] = field(default_factory=set)  # transactions it has: a lone one is a 409
    status: int | None = None  # answer every call with this status instead
    refusal_size: int = 0  # pad a refusal's body to this many bytes
    calls: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/debits"


def _app(gateway: Gateway) -> Starlette:
    async def debits(request: Request) -> Response:
        body = await request.json()
        gateway.calls.append({"authorization": request.headers.get("authorization"), **body})
        if gateway.status is not None:
            return PlainTextResponse("refused", status_code=gateway.status)
        bad = [d["iban"] for d in body["debits"] if d["iban"] in gateway.refused_ibans]
        if bad:
            # A real gateway refuses the whole request when one debit is unacceptable.
            pad = " " * gateway.refusal_size
            return JSONResponse({"error": f"invalid creditor account for {bad[0]}{pad}"}, 422)
        if any(d["transaction_id"] in gateway.known for d in body["debits"]):
            return JSONResponse({"error": "duplicate transaction"}, 409)
        gateway.accepted.extend(d["transaction_id"] for d in body["debits"])
        return JSONResponse({"accepted": len(body["debits"])}, 202)

    return Starlette(routes=[Route("/debits", debits, methods=["POST"])])


@contextlib.contextmanager
def running_gateway(gateway: Gateway | None = None) -> Iterator[Gateway]:
    """Serve a Gateway with uvicorn in a thread of its own until the block ends."""
    gateway = gateway or Gateway()
    with serving_in_thread(_app(gateway), "gateway") as gateway.port:
        yield gateway
