"""ASGI middleware: request id, and the per-request Context (authenticated) with its cleanup."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debtgraph.domain.core.database import UNAVAILABLE_MESSAGE, is_unavailable
from debtgraph.resolvers import auth
from debtgraph.resolvers.context import AppServices, Context
from debtgraph.rest_compat.errors import UNAVAILABLE_RETRY_AFTER, handle_server_error
from debtgraph.rest_compat.hosted_pages import base_url_of
from debtgraph.server.limits import GRAPHQL_PATH, graphql_error
from debtgraph.server.logging import request_id_var

log = logging.getLogger("debtgraph.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# The access log's status of a request its client abandoned before it was answered (nginx's).
CLIENT_CLOSED_REQUEST = 499


class ContextMiddleware:
    """Builds one Context per HTTP request or WebSocket connection and always closes it."""

    def __init__(self, app: ASGIApp, services: AppServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        client = scope.get("client")
        ctx = Context.create(
            self.services, client_ip=client[0] if client else "", request_id=request_id
        )
        ctx.base_url = base_url_of(scope)
        scope.setdefault("state", {})["ctx"] = ctx
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": raw}
            elif message["type"] == "websocket.accept":
                status["code"] = 101
            elif message["type"] == "websocket.close" and status["code"] is None:
                status["code"] = 403  # refused during the handshake, as uvicorn answers it
            await send(message)

        try:
            ctx.principal = await auth.authenticate(ctx, headers.get("authorization"))
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away while sending its body: nobody is left to answer, and it is
            # the client's doing, not an incident (no trace; anyone can cause it at will). The
            # access line shows nginx's code for it.
            if status["code"] is None:
                status["code"] = CLIENT_CLOSED_REQUEST
        except Exception as exc:
            # Rendered here rather than by Starlette's outermost handler so that the 500 still
            # carries X-Request-ID; the trace is logged, never sent.
            if scope["type"] != "http" or status["code"] is not None:
                raise
            if scope.get("path") == GRAPHQL_PATH and is_unavailable(exc):
                # Signing in found no database connection: answer a GraphQL client in its shape.
                log.warning("database unavailable on %s: %s", GRAPHQL_PATH, exc)
                response = graphql_error(
                    503, UNAVAILABLE_MESSAGE, "SERVICE_UNAVAILABLE", retryAfter=1
                )
                response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
            else:
                response = await handle_server_error(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            try:
                await ctx.uow.end()
            finally:
                ctx.loaders.clear()
            # One access line per request, and one per WebSocket connection when it ends.
            method = scope.get("method") if scope["type"] == "http" else "WEBSOCKET"
            log.info(
                "%s %s %s",
                method,
                scope.get("path"),
                status["code"],
                extra={
                    "method": method,
                    "path": scope.get("path"),
                    "status": status["code"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            request_id_var.reset(token)
