"""The GraphQL endpoint: HTTP (GraphiQL in development) and both WebSocket protocols."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationDefinitionNode, parse
from graphql import OperationType as CoreOperationType
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from debtgraph.domain.core.hashstore import MemoryHashStore
from debtgraph.domain.core.tasks import cancel_and_wait
from debtgraph.resolvers import auth, events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.json_limits import MAX_JSON_DEPTH, json_depth_exceeds
from debtgraph.schema import schema
from debtgraph.schema.limits import MAX_TOKENS, MULTIPLE_OPERATIONS, coded_parse_error
from debtgraph.schema.live import DirectLegacyWSHandler, DirectTransportWSHandler
from debtgraph.schema.persisted import DocumentRefused, PersistedQueries
from debtgraph.settings import Settings

log = logging.getLogger("debtgraph.graphql")


class _Closer:
    """Context.end_stream for one socket; keeps the socket for on_ws_connect's bookkeeping."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def __call__(self, code: int, reason: str) -> None:
        # Several subscriptions of one socket may end at once; the first one closes it.
        with contextlib.suppress(RuntimeError):
            await self.websocket.close(code=code, reason=reason)


# Closes a socket refused for holding too many (PRODUCT-DECISIONS "Issue 7 review follow-ups");
# 4429 is also graphql-transport-ws's own "too many" code (a repeated connection_init).
TOO_MANY_CONNECTIONS = 4429
_SLOT = "ws_slot"  # scope state: the key whose connection count this socket holds
_REFUSAL = "ws_refusal"  # scope state: the close code and reason of a refused socket
# Scope state: the upgrade request's Authorization header carried credentials that did not
# resolve (the context middleware leaves such a socket anonymous; it is refused at init).
_BAD_HEADER = "ws_bad_authorization"
# graphql-transport-ws's close of a socket that sent no connection_init in time (Strawberry's
# code and words); graphql-ws, which has no such rule, is held to it too.
INIT_TIMEOUT_CLOSE_CODE = 4408


def _init_timeout_reason(wait: timedelta) -> str:
    """The close reason of a socket that sent no connection_init within ``wait``: Strawberry's
    words, then the limit's value (its words alone named none)."""
    return (
        f"Connection initialisation timeout (no connection_init within {wait.total_seconds():g} s)"
    )


# The refusal of an operation on a socket whose credentials stopped working after its
# connection_init; the socket is then closed as a revoked stream is (events.REVOKED_CLOSE_CODE).
_REVOKED_ERROR = {
    "message": "The credentials of this connection no longer work.",
    "extensions": {"code": "UNAUTHENTICATED"},
}


def _address_key(ctx: Context) -> str:
    """The connection count of an anonymous socket, or of one not yet initialised."""
    return f"anonymous:{ctx.client_ip}"


class _WebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's, closing a socket refused by on_ws_connect with the refusal's own code
    (Strawberry closes every refusal with 4403, or 1011 on graphql-ws)."""

    async def close(self, code: int, reason: str) -> None:
        refusal = self.ws.scope.get("state", {}).get(_REFUSAL)
        if refusal is not None:
            code, reason = refusal
        await super().close(code, reason)


_STRAWBERRY_SUBSCRIPTION_LIMIT = "Subscription limit reached"


def _naming_the_limit(message: Any, most: int | None) -> Any:
    """``message``, or, if it is Strawberry's refusal of an operation past
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION, that refusal naming the limit and its value (its words
    alone named neither; they still lead), in the protocol's payload shape (a list of errors
    on graphql-transport-ws, one error on graphql-ws)."""
    payload = message.get("payload")
    listed = isinstance(payload, list)
    first = payload[0] if listed and payload else payload
    if message.get("type") != "error" or not (
        isinstance(first, dict) and first.get("message") == _STRAWBERRY_SUBSCRIPTION_LIMIT
    ):
        return message
    error = {
        "message": f"{_STRAWBERRY_SUBSCRIPTION_LIMIT}: at most {most} operations run at once on "
        "one socket (WS_MAX_SUBSCRIPTIONS_PER_CONNECTION).",
        "extensions": {
            "code": "TOO_MANY_SUBSCRIPTIONS",
            "limit": "WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            "max": most,
        },
    }
    return {**message, "payload": [error] if listed else error}


class _TransportWSHandler(DirectTransportWSHandler):
    """graphql-transport-ws, resolving persisted-query hashes and the document size limit."""

    async def send_message(self, message: Any) -> None:
        await super().send_message(
            _naming_the_limit(message, self.max_subscriptions_per_connection)
        )

    async def handle_connection_init_timeout(self) -> None:
        """Strawberry's, its close reason naming the wait (WS_CONNECTION_INIT_TIMEOUT_SECONDS)."""
        try:
            await asyncio.sleep(self.connection_init_wait_timeout.total_seconds())
            if self.connection_init_received:
                return
            self.connection_timed_out = True
            await self.websocket.close(
                INIT_TIMEOUT_CLOSE_CODE, _init_timeout_reason(self.connection_init_wait_timeout)
            )
        except Exception as error:
            await self.handle_task_exception(error)

    async def handle_message(self, message: Any) -> None:
        # Strawberry catches a missing member (KeyError) only: a frame that is no object, or an
        # id that is no string (unhashable as its operations' key), ended in a trace and a
        # dropped socket. The protocol closes on an invalid message with 4400, as it does then.
        if not isinstance(message, dict) or not isinstance(message.get("id", ""), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        def error(found: dict[str, Any]) -> Any:
            return {"id": message["id"], "type": "error", "payload": [found]}

        # Strawberry refuses first a socket not acknowledged (4401) and an id in use (4409).
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and not await _still_authenticated(self, error(_REVOKED_ERROR))
        ):
            return
        resolved = await _with_document(self, message, error)
        if resolved is None:
            return
        # An id already in use is Strawberry's to refuse first (4409), whatever the document.
        known = self.connection_acknowledged and message["id"] not in self.operations
        chosen = _operation_of(resolved["payload"]) if known else None
        if isinstance(chosen, dict):
            await self.send_message(error(chosen))
            return
        await super().handle_subscribe(resolved)


class _WSHandler(DirectLegacyWSHandler):
    """graphql-ws (the older protocol), likewise; and, as graphql-transport-ws, closing a
    socket that sends no connection_init in time (the protocol has no such rule: a client
    could hold a socket for ever without ever being counted against a caller)."""

    connection_init_received = False

    async def send_message(self, message: Any) -> None:
        await super().send_message(
            _naming_the_limit(message, self.max_subscriptions_per_connection)
        )

    async def handle(self) -> None:
        deadline = asyncio.create_task(self._close_uninitialised())
        try:
            await super().handle()
        finally:
            await cancel_and_wait(deadline)

    async def _close_uninitialised(self) -> None:
        wait: timedelta = self.view.connection_init_wait_timeout
        await asyncio.sleep(wait.total_seconds())
        if not self.connection_init_received:
            with contextlib.suppress(Exception):
                await self.websocket.close(INIT_TIMEOUT_CLOSE_CODE, _init_timeout_reason(wait))

    async def handle_connection_init(self, message: Any) -> None:
        if self.connection_init_received:
            # Each init Strawberry acks starts one more keep-alive task: a client repeating it
            # grew the process without bound, its tasks logging a trace each at the close. As
            # graphql-transport-ws, the socket is closed.
            await self.websocket.close(4429, "Too many initialisation requests")
            return
        self.connection_init_received = True
        await super().handle_connection_init(message)

    async def handle_message(self, message: Any) -> None:
        # Strawberry indexes the message blindly (a trace and a dropped socket): one that is no
        # object, has no type, or names an operation by no string id is answered with the
        # protocol's error message, the socket kept open.
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("type"), str)
            or (message["type"] in ("start", "stop") and not isinstance(message.get("id"), str))
        ):
            await self.send_message(
                {
                    "type": "error",
                    "payload": _bad_request(
                        "Invalid message: an object with a type, and a string id for start"
                        " and stop."
                    ),
                }
            )
            return
        await super().handle_message(message)

    async def handle_start(self, message: StartMessage) -> None:
        if not self.connection_acknowledged:
            await super().handle_start(message)  # Strawberry's refusal (4401)
            return

        def error(found: dict[str, Any]) -> Any:
            return {"type": "error", "id": message["id"], "payload": found}

        if not await _still_authenticated(self, error(_REVOKED_ERROR)):
            return
        resolved = await _with_document(self, message, error)
        if resolved is None:
            return
        if not isinstance(resolved["payload"].get("query"), str):
            await self.send_message(error(_bad_request("No GraphQL query found in the request")))
            return
        chosen = _operation_of(resolved["payload"])
        if isinstance(chosen, dict):
            await self.send_message(error(chosen))
            return
        if chosen is not None and chosen.operation is not CoreOperationType.SUBSCRIPTION:
            # graphql-ws serves subscriptions only; Strawberry answered a query "Unexpected
            # error." and logged it as an incident.
            await self.send_message(error(_bad_request(LEGACY_WS_SUBSCRIPTIONS_ONLY)))
            return
        await super().handle_start(resolved)


LEGACY_WS_SUBSCRIPTIONS_ONLY = (
    "graphql-ws serves subscriptions only: send queries and mutations over HTTP, or all three"
    " over graphql-transport-ws."
)


def _bad_request(message: str) -> dict[str, Any]:
    """The GraphQL error of a WebSocket message of the wrong shape, as HTTP's 400 words it."""
    return {"message": message, "extensions": {"code": "BAD_REQUEST"}}


def _operation_of(payload: dict[str, Any]) -> OperationDefinitionNode | dict[str, Any] | None:
    """The operation a subscribe (start) payload names, by the spec's GetOperation; else the
    GraphQL error refusing it (a document that does not parse, no operation, several and no
    name, a name none has), as HTTP words each; None when it is for validation to tell (no
    text, or several operations of the name asked: "only one operation named").

    Asked before Strawberry runs it. Strawberry raises for a name no operation has (or none at
    all), which its socket handlers answered "Unexpected error." with an incident's trace; it
    runs the first of several operations when none is named, where the spec refuses; and over
    graphql-transport-ws it closes the whole socket (4400) on a syntax error, or on a document
    past the token limit, ending every other subscription of the socket.
    """
    query = payload.get("query")
    if not isinstance(query, str):
        return None
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as refused:
        return coded_parse_error(refused).formatted  # type: ignore[return-value]
    name = payload.get("operationName")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) > 1:
            return _bad_request(MULTIPLE_OPERATIONS)
        return operations[0] if operations else _bad_request(NO_OPERATION)
    chosen = [o for o in operations if o.name and o.name.value == name]
    if not chosen:
        return _bad_request(f'Unknown operation named "{name}".')
    return chosen[0] if len(chosen) == 1 else None


async def _still_authenticated(handler: Any, refusal: Any) -> bool:
    """Whether the socket's credentials still work, checked before each operation by the rule
    that re-checks live subscriptions (``events.credentials_work``); when they stopped working
    (logged out, revoked, expired) the operation is refused with ``refusal`` and the socket
    closed as a revoked subscription's is (4401), ending every operation of it."""
    if await events.credentials_work(handler.context):
        return True
    log.info("WebSocket operation refused: the connection's credentials no longer work")
    with contextlib.suppress(Exception):
        await handler.send_message(refusal)
    await events.end_revoked(handler.context)
    return False


# What HTTP answers a document without an operation (Strawberry's words for it).
NO_OPERATION = "Can't get GraphQL operation type"


async def _with_document(handler: Any, message: Any, error: Callable[[dict[str, Any]], Any]) -> Any:
    """The message with the document its payload names, or None once its refusal is sent."""
    if not handler.connection_acknowledged:
        return message  # Strawberry refuses it (4401)
    payload = message.get("payload")
    malformed = _malformed(payload)
    if malformed is not None:
        # Refused here as HTTP refuses the same shapes (400 BAD_REQUEST): Strawberry would run
        # the query without the safelist and size checks below (a non-object ``extensions``),
        # or fail on it with a trace (a non-object payload or ``variables``, a ``query`` that
        # is no text).
        await handler.send_message(error(_bad_request(malformed)))
        return None
    query = payload.get("query")
    extensions = payload.get("extensions")
    variables = payload.get("variables")
    try:
        query = await handler.view.documents.document(
            query,
            extensions,
            variables if isinstance(variables, dict) else None,
            handler.context,
            schema._schema,
        )
    except DocumentRefused as refused:
        await handler.send_message(error(refused.error))
        return None
    if query is None:
        return message  # no document: Strawberry's own refusal
    return {**message, "payload": {**payload, "query": query}}


# What a subscribe (start) payload's members must be, as graphql-over-HTTP has them.
_PAYLOAD_MEMBERS = (
    ("query", str, "a string"),
    ("variables", dict, "an object"),
    ("operationName", str, "a string"),
    ("extensions", dict, "an object"),
)


def _malformed(payload: Any) -> str | None:
    """What is wrong with a subscribe payload's shape, or None when it has the right one."""
    if not isinstance(payload, dict):
        return "The subscribe message's payload must be a JSON object."
    for name, kind, spelled in _PAYLOAD_MEMBERS:
        value = payload.get(name)
        if value is not None and not isinstance(value, kind):
            return f"The GraphQL operation's `{name}` must be {spelled} or null, if provided."
    return None


def _headers_only(send: Send) -> Send:
    """``send``, every body chunk emptied (the headers, Content-Length included, stay GET's)."""

    async def headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return headers_only


class DebtgraphGraphQL(GraphQL):  # type: ignore[type-arg]
    """Strawberry's ASGI app, using the Context the server middleware built for the request."""

    websocket_adapter_class = _WebSocketAdapter
    # Persisted queries resolved, then events rendered once per socket (schema/live.py).
    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _WSHandler

    def __init__(
        self,
        *,
        graphiql: bool,
        settings: Settings | None = None,
        documents: PersistedQueries | None = None,
    ) -> None:
        settings = settings or Settings()
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            multipart_uploads_enabled=True,
            keep_alive=True,
            keep_alive_interval=15,
            connection_init_wait_timeout=timedelta(
                seconds=settings.ws_connection_init_timeout_seconds
            ),
            max_subscriptions_per_connection=settings.ws_max_subscriptions_per_connection,
        )
        self.max_connections = settings.ws_max_connections_per_principal
        self.documents = documents or PersistedQueries.from_settings(
            settings,
            schema._schema,
            MemoryHashStore(settings.graphql_apq_max_entries, settings.graphql_apq_ttl_seconds),
        )
        # Open sockets per caller in this process (one event loop: no lock needed).
        self.connections: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry's app, HEAD answered as GET without the body (RFC 9110 §9.3.2): the
        route admits HEAD with GET, and Strawberry, knowing only GET and POST, refused it with
        a 405 that named no allowed method."""
        if scope["type"] == "http" and scope["method"] == "HEAD":
            await super().__call__({**scope, "method": "GET"}, receive, _headers_only(send))
            return
        await super().__call__(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        """orjson, refusing nesting deeper than PRODUCT.md §12 allows (json.loads would recurse
        until RecursionError on a deeply nested body, a 500)."""
        value = orjson.loads(data)  # its JSONDecodeError is json's
        if json_depth_exceeds(value, MAX_JSON_DEPTH):
            # Strawberry answers any JSONDecodeError with its 400 "Unable to parse request body".
            raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", "", 0)
        return value

    def encode_json(self, data: object) -> str:
        """orjson; the standard encoder for anything orjson refuses. Always text: WebSocket
        protocols send text frames."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """Strawberry's response, its body orjson's bytes as they are: a page of a hundred
        nodes is some hundred kilobytes that text would decode and the response encode again."""
        try:
            body = orjson.dumps(response_data)
        except TypeError:
            body = self.encode_json(response_data).encode()
        # What Strawberry's create_response does with the body it encodes.
        response = Response(body, status_code=200, media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's view, its plain-text refusals (batches, bad bodies) as GraphQL errors."""
        if isinstance(request, WebSocket):
            try:
                return await super().run(request, context, root_value)
            finally:
                self._release(request)
        try:
            return await super().run(request, context, root_value)
        except DocumentRefused as refused:
            return JSONResponse({"data": None, "errors": [refused.error]}, refused.status)
        except HTTPException as exc:
            if isinstance(request, WebSocket):
                raise
            body = {
                "data": None,
                "errors": [
                    {
                        "message": exc.reason,
                        "extensions": {"code": _HTTP_CODES.get(exc.status_code, "BAD_REQUEST")},
                    }
                ],
            }
            return JSONResponse(body, status_code=exc.status_code)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """Not for a GET that names a persisted query by hash (it has no ``query``)."""
        return super().should_render_graphql_ide(request) and not request.query_params.get(
            "extensions"
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        """Strawberry's, refusing (400) a JSON body that is neither an operation nor a batch
        (a string, a number, null), which it would index into blindly (a 500)."""
        # Strawberry's own test for a JSON body (a substring of the content type).
        if request.method != "GET" and "application/json" in (request.content_type or ""):
            body = await request.get_body()
            # JSON text that is an object or an array starts with its bracket (after blanks):
            # only another start is parsed here, to tell a scalar from no JSON at all (whose
            # refusal, "Unable to parse request body as JSON", stays Strawberry's).
            if body.lstrip(b" \t\r\n")[:1] not in (b"{", b"["):
                try:
                    self.decode_json(body)
                except ValueError:
                    pass
                else:
                    raise HTTPException(400, NOT_AN_OPERATION)
        return await super().parse_http_body(request)

    def _validate_batch_request(self, request_data: Any, protocol: Any) -> None:
        """Strawberry's hook for a JSON array body: refused whatever its length, before any of
        its operations is looked at (PRODUCT.md §12)."""
        raise HTTPException(400, BATCHES_REFUSED)

    async def execute_operation(
        self,
        request: Any,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Any,
        root_value: Any,
        sub_response: Any,
    ) -> Any:
        """Strawberry's, on the document the request names: its text or its persisted-query
        hash (schema/persisted.py), held to the document size limit before it is parsed."""
        if isinstance(request_data, GraphQLRequestData):
            # Strawberry checks the other members' types; a number as operationName was looked
            # up as a name ('Unknown operation named "5".'), where the WebSocket faces refuse it
            # by its type: one rule for the payload's shape, both faces.
            wrong = _malformed({"operationName": request_data.operation_name})
            if wrong is not None:
                raise HTTPException(400, wrong)
            query = await self.documents.document(
                request_data.query,
                request_data.extensions,
                request_data.variables,
                context,
                schema._schema,
            )
            request_data = dataclasses.replace(request_data, query=query)
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def execute_single(
        self,
        request: Any,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, without subscriptions: over plain HTTP it would run one as a query and
        fail on the stream (a masked "Unexpected error."); they are served over WebSocket."""
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, SUBSCRIPTIONS_OVER_WEBSOCKET) from exc
            raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        """The GraphQL multipart request, refusing (400) an ``operations`` or ``map`` of the
        wrong shape that Strawberry would index into blindly (a 500)."""
        try:
            form_data = await request.get_form_data()
        except (ValueError, StarletteHTTPException) as exc:
            # Starlette raises its HTTPException for a bad boundary; left alone it would reach
            # the app's handler and answer in the /v1 error shape.
            raise HTTPException(400, "Unable to parse the multipart body") from exc
        operations = form_data.form.get("operations", "{}")
        files_map = form_data.form.get("map", "{}")
        if isinstance(operations, bytes | str):
            operations = self.parse_json(operations)
        if isinstance(files_map, bytes | str):
            files_map = self.parse_json(files_map)
        if isinstance(operations, list):
            raise HTTPException(400, BATCHES_REFUSED)
        if not isinstance(operations, dict):
            raise HTTPException(400, NOT_AN_OPERATION)
        if not isinstance(files_map, dict) or not all(
            isinstance(paths, list) and all(isinstance(p, str) for p in paths)
            for paths in files_map.values()
        ):
            raise HTTPException(
                400, "The map field must be a JSON object of file names to lists of paths."
            )
        for name, paths in files_map.items():
            if name not in form_data.files:
                raise HTTPException(400, "File(s) missing in form data")
            for path in paths:
                if not _is_placeholder(operations, path):
                    raise HTTPException(
                        400, f"The map path {path!r} names no variable of the operations."
                    )
        return replace_placeholders_with_files(operations, files_map, form_data.files)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Any:
        ctx = request.scope.get("state", {}).get("ctx")
        if ctx is None:
            raise RuntimeError("no Context on the request: is the context middleware installed?")
        if isinstance(response, WebSocket):
            ctx.end_stream = _Closer(response)
        return ctx

    async def create_websocket_response(self, request: WebSocket, subprotocol: str | None) -> Any:
        """Strawberry's (the upgrade accepted), the socket then counted under its client address
        until its connection_init moves it to its caller's count (``_hold``): a client that
        never sends connection_init is held to WS_MAX_CONNECTIONS_PER_PRINCIPAL too. Past it
        the socket is closed at once with 4429, as a refused connection_init is."""
        response = await super().create_websocket_response(request, subprotocol)
        state = request.scope.setdefault("state", {})
        ctx: Context | None = state.get("ctx")
        if ctx is None or subprotocol is None:
            return response  # no Context: get_context refuses it; no protocol: closed with 4406
        header = request.headers.get("authorization") or ""
        # The middleware resolved the header into ctx.principal, or left None for a bad one.
        state[_BAD_HEADER] = bool(header.strip()) and ctx.principal is None
        key = _address_key(ctx)
        if self.connections[key] >= self.max_connections:
            log.info("WebSocket refused: %s holds %d connections", key, self.connections[key])
            with contextlib.suppress(RuntimeError):
                await request.close(code=TOO_MANY_CONNECTIONS, reason=self._too_many_reason())
            return response
        self.connections[key] += 1
        state[_SLOT] = key
        return response

    def _too_many_reason(self) -> str:
        # The close reason names the limit too (graphql-transport-ws gets only the close).
        return f"Too many connections (at most {self.max_connections})"

    def _hold(self, ctx: Context) -> None:
        """Move the socket's count to its caller, refusing it past WS_MAX_CONNECTIONS_PER_PRINCIPAL
        (anonymous sockets stay counted per client address, as before connection_init)."""
        closer = ctx.end_stream
        if not isinstance(closer, _Closer):
            return
        state = closer.websocket.scope.setdefault("state", {})
        key = ctx.principal.key if ctx.principal else _address_key(ctx)
        if state.get(_SLOT) == key:  # anonymous, or graphql-ws repeating connection_init
            return
        if self.connections[key] >= self.max_connections:
            state[_REFUSAL] = (TOO_MANY_CONNECTIONS, self._too_many_reason())
            log.info("WebSocket refused: %s holds %d connections", key, self.connections[key])
            raise ConnectionRejectionError(
                {
                    "message": f"Too many connections for this caller: at most "
                    f"{self.max_connections} open sockets (WS_MAX_CONNECTIONS_PER_PRINCIPAL).",
                    "code": "TOO_MANY_CONNECTIONS",
                    "limit": "WS_MAX_CONNECTIONS_PER_PRINCIPAL",
                    "max": self.max_connections,
                }
            )
        self._release(closer.websocket)  # the address's place (or an earlier caller's)
        self.connections[key] += 1
        state[_SLOT] = key

    def _release(self, websocket: WebSocket) -> None:
        key = websocket.scope.get("state", {}).pop(_SLOT, None)
        if key is not None:
            self.connections[key] -= 1
            if self.connections[key] <= 0:
                del self.connections[key]

    async def on_ws_connect(self, context: Any) -> Any:
        """Authenticate a socket by ``connection_params`` (browsers cannot set headers) or the
        upgrade request's Authorization header; a bad token in either is refused."""
        ctx: Context = context
        params = ctx.connection_params or {}
        if not isinstance(params, dict):
            raise ConnectionRejectionError({"message": "connection_params must be an object"})
        closer = ctx.end_stream
        if isinstance(closer, _Closer) and closer.websocket.scope.get("state", {}).get(_BAD_HEADER):
            raise ConnectionRejectionError({"message": "Unauthenticated."})
        token = params.get("Authorization") or params.get("authorization")
        if token is None and params.get("authToken"):
            token = f"Bearer {params['authToken']}"
        if token is not None:
            principal = await auth.authenticate(ctx, str(token))
            if principal is None:
                raise ConnectionRejectionError({"message": "Unauthenticated."})
            ctx.principal = principal
        await ctx.uow.close()
        self._hold(ctx)
        return None


BATCHES_REFUSED = (
    "Batches are not accepted: send one operation per request "
    "(the body, or a multipart operations field, must be a JSON object)."
)
NOT_AN_OPERATION = "The GraphQL request must be a JSON object (query, variables, operationName)."
SUBSCRIPTIONS_OVER_WEBSOCKET = (
    "Subscriptions are served over WebSocket at /graphql "
    "(protocols graphql-transport-ws and graphql-ws), not over HTTP."
)
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def _is_placeholder(operations: dict[str, Any], path: str) -> bool:
    """Whether ``path`` (``variables.file`` or ``variables.files.0``) names a slot that exists."""
    keys = path.split(".")
    if len(keys) < 2 or keys[0] != "variables":
        return False
    target: Any = operations
    for key in keys:
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif (
            isinstance(target, list) and key.isascii() and key.isdigit() and int(key) < len(target)
        ):
            target = target[int(key)]
        else:
            return False
    return True
