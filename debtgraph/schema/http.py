"""The GraphQL endpoint: HTTP (GraphiQL in development) and both WebSocket protocols."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from debtgraph.resolvers import auth
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.json_limits import MAX_JSON_DEPTH, json_depth_exceeds
from debtgraph.schema import schema


def _closer(websocket: WebSocket) -> Callable[[int, str], Awaitable[None]]:
    async def close(code: int, reason: str) -> None:
        # Several subscriptions of one socket may end at once; the first one closes it.
        with contextlib.suppress(RuntimeError):
            await websocket.close(code=code, reason=reason)

    return close


class DebtgraphGraphQL(GraphQL):  # type: ignore[type-arg]
    """Strawberry's ASGI app, using the Context the server middleware built for the request."""

    def __init__(self, *, graphiql: bool) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            multipart_uploads_enabled=True,
            keep_alive=True,
            keep_alive_interval=15,
        )

    def decode_json(self, data: str | bytes) -> object:
        """orjson, refusing nesting deeper than PRODUCT.md §12 allows (json.loads would recurse
        until RecursionError on a deeply nested body, a 500)."""
        value = orjson.loads(data)  # its JSONDecodeError is json's
        if json_depth_exceeds(value, MAX_JSON_DEPTH):
            # Strawberry answers any JSONDecodeError with its 400 "Unable to parse request body".
            raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)
        return value

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Any:
        ctx = request.scope.get("state", {}).get("ctx")
        if ctx is None:
            raise RuntimeError("no Context on the request: is the context middleware installed?")
        if isinstance(response, WebSocket):
            ctx.end_stream = _closer(response)
        return ctx

    async def on_ws_connect(self, context: Any) -> Any:
        """Authenticate a socket by ``connection_params`` (browsers cannot set headers)."""
        ctx: Context = context
        params = ctx.connection_params or {}
        if not isinstance(params, dict):
            raise ConnectionRejectionError({"message": "connection_params must be an object"})
        token = params.get("Authorization") or params.get("authorization")
        if token is None and params.get("authToken"):
            token = f"Bearer {params['authToken']}"
        if token is not None:
            principal = await auth.authenticate(ctx, str(token))
            if principal is None:
                raise ConnectionRejectionError({"message": "Unauthenticated."})
            ctx.principal = principal
        await ctx.uow.close()
        return None
