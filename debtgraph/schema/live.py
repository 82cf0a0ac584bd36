"""Subscription results computed once for every subscriber handed the same event.

The dispatcher (``resolvers/events.py``) hands one loaded value per event and audience to all
matching subscribers. Here the face shapes that value once (:func:`shaped`).

On both WebSocket protocols a subscription field written with :func:`nodes` goes further: the
socket's handler gives its stream a :class:`_WireSink`, the dispatcher has it execute the
document on the event once per (document, variables, audience) and encode the payload of the
protocol message once, and each subscriber's task only splices its operation id in and writes
the frame. Nothing of Strawberry's per-event machinery (the generator chain, an execution, the
extension hooks, a JSON encoding) runs per subscriber; the result is the one Strawberry would
have sent, as it comes from executing the same document on the same root value.

Elsewhere (a field not written with :func:`nodes`) :class:`SharedEventExecutor` still executes
each distinct selection once per audience and hands later subscribers a copy of the result.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import orjson
from graphql import ExecutionResult, OperationType
from starlette.websockets import WebSocketDisconnect
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.graphql import OperationType as StrawberryOperationType

from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.permissions import event_audience

log = logging.getLogger(__name__)

T = TypeVar("T")
V = TypeVar("V")


def shaped(value: V, factory: Callable[[V], T]) -> T:
    """``factory(value)``, built once for every subscriber handed this same value."""
    memo = events.shared_memo(value)
    if memo is None:
        return factory(value)
    node: T | None = memo.get(factory)
    if node is None:
        node = factory(value)
        memo[factory] = node
        events.share_memo(node, memo)
    return node


def _copy(result: ExecutionResult) -> ExecutionResult:
    # Extensions may replace a result's errors (masking): each subscriber gets its own list.
    return ExecutionResult(
        data=result.data,
        errors=list(result.errors) if result.errors is not None else None,
        extensions=result.extensions,
    )


async def _awaited_copy(task: asyncio.Future[ExecutionResult]) -> ExecutionResult:
    # Shielded: a subscriber leaving must not cancel the execution the others wait for.
    return _copy(await asyncio.shield(task))


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, executing a shared subscription event once per selection and
    audience and handing each later subscriber a copy of that result."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        """Run the operation, or reuse the run of an identical subscription on this event."""
        memo = (
            events.shared_memo(self.root_value)
            if self.operation.operation is OperationType.SUBSCRIPTION
            else None
        )
        ctx = self.context_value
        if memo is None or not isinstance(ctx, Context) or ctx.principal is None:
            return super().execute_operation(serially)
        key = (
            "execution",
            self.operation.loc.source.body if self.operation.loc else id(self.operation),
            self.operation.name.value if self.operation.name else None,
            repr(sorted(self.variable_values.coerced.items())),
            event_audience(ctx.principal),
        )
        shared = memo.get(key)
        if shared is None:
            result = super().execute_operation(serially)
            if not self.is_awaitable(result):
                memo[key] = result
                return _copy(cast(ExecutionResult, result))
            shared = asyncio.ensure_future(result)  # type: ignore[arg-type]
            memo[key] = shared
        if isinstance(shared, ExecutionResult):
            return _copy(shared)
        awaitable: Awaitable[ExecutionResult] = _awaited_copy(shared)
        return awaitable


# --- Direct delivery on WebSockets ---------------------------------------------------------------


class _WireSink:
    """One subscription's direct line: renders a result into the payload of a protocol message
    (once per key and audience, by the dispatcher), and writes it out with this operation's id.
    """

    def __init__(
        self,
        handler: Any,
        query: str,
        variables: dict[str, object] | None,
        operation_name: str | None,
        head: str,
        is_open: Callable[[], bool] = lambda: True,
    ) -> None:
        self._schema: BaseSchema = handler.schema
        self._encode: Callable[[object], str] = handler.view.encode_json
        # ASGIWebSocketAdapter's socket: the frame is text already, not a message to encode.
        self._send_text: Callable[[str], Awaitable[None]] = handler.websocket.ws.send_text
        self._query = query
        self._variables = variables
        self._operation_name = operation_name
        self._head = head
        self._is_open = is_open
        self._factory: Callable[[Any], Any] | None = None
        # The task finishing a write that had to wait for the socket (None: none waits).
        self._writing: asyncio.Future[Any] | None = None
        try:
            variables_key: object = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            variables_key = repr(variables)
        self.key: Hashable = (query, operation_name, variables_key)

    def bind(self, factory: Callable[[Any], Any]) -> _WireSink:
        """This sink for a field whose results ``factory`` shapes into its node."""
        self._factory = factory
        return self

    async def render(self, ctx: Context, result: Any) -> str:
        """The message payload for ``result``: the document executed on its node, as Strawberry
        would send it (errors masked and logged by the schema's extensions)."""
        assert self._factory is not None
        executed = await self._schema.execute(
            self._query,
            variable_values=self._variables,
            context_value=ctx,
            root_value=shaped(result, self._factory),
            operation_name=self._operation_name,
            allowed_operation_types=(StrawberryOperationType.SUBSCRIPTION,),
        )
        payload: dict[str, object] = {"data": executed.data}
        if executed.errors:
            payload["errors"] = [error.formatted for error in executed.errors]
        if executed.extensions:
            payload["extensions"] = executed.extensions
        return self._encode(payload)

    def write_now(self, rendered: str) -> bool:
        """Start writing the message at once, from the caller's task; False when an earlier
        write is still waiting for the socket."""
        if self._writing is not None:
            return False
        self._writing = _start_eagerly(self._write(rendered))
        if self._writing is not None:
            self._writing.add_done_callback(self._written)
        return True

    async def send(self, rendered: str) -> None:
        """Write the message after any write under way."""
        while self._writing is not None:
            await asyncio.wait({self._writing})
        self._writing = asyncio.current_task()
        try:
            await self._write(rendered)
        finally:
            self._writing = None

    def _written(self, task: asyncio.Future[None]) -> None:
        if self._writing is task:
            self._writing = None

    async def _write(self, rendered: str) -> None:
        # A socket already gone is left to its handler to clean up; nothing here may raise
        # into the dispatcher, which writes to every other subscriber too.
        if not self._is_open():
            return
        try:
            await self._send_text(f"{self._head}{rendered}}}")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        except Exception:
            log.exception("writing a subscription event failed")


def _start_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None] | None:
    """Run ``coro`` now, in the caller's task, up to its first wait; a task finishes it if it
    waits (returned), None when it is done already. Writing to a socket that takes the bytes
    does not wait, so a thousand writes cost no task and no trip through the event loop each.
    Python 3.12's eager tasks do this; 3.11 has them not, hence the loop of ``_finish``."""
    if sys.version_info >= (3, 12):
        task = asyncio.Task(coro, eager_start=True)  # type: ignore[call-arg]
        return None if task.done() else task
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(coro, waiting))


async def _finish(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Go on with a coroutine started by hand, as a task would: resume it each time the future
    it yielded is done (a bare yield: on the next turn of the loop)."""
    try:
        while True:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait({waiting})
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
    except BaseException:
        coro.close()
        raise


_WIRE: ContextVar[_WireSink | None] = ContextVar("debtgraph_wire_sink", default=None)


async def nodes(source: AsyncIterator[V], factory: Callable[[V], T]) -> AsyncIterator[T]:
    """A subscription field's stream: ``factory`` of each result of ``source`` (shaped once for
    every subscriber). On a socket whose handler delivers directly, the results go out through
    the dispatcher instead and this yields nothing, but it ends as the source does."""
    wire = _WIRE.get()
    if wire is not None:
        _WIRE.set(None)
        events.SINK.set(wire.bind(factory))
    async for value in source:
        yield shaped(value, factory)


def _id_json(operation_id: str) -> str:
    return orjson.dumps(operation_id).decode()


class DirectTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """Strawberry's graphql-transport-ws handler, its subscriptions delivered directly."""

    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        """Strawberry's, with the operation's sink set for its stream (this task only)."""
        _WIRE.set(
            _WireSink(
                self,
                operation.query,
                operation.variables,
                operation.operation_name,
                f'{{"id":{_id_json(operation.id)},"type":"next","payload":',
                # Nothing after the operation's complete or error, or the client's complete.
                lambda: not operation.completed and self.operations.get(operation.id) is operation,
            )
        )
        await super().run_operation(operation)


class DirectLegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
    """Strawberry's graphql-ws handler, its subscriptions delivered directly."""

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """Strawberry's, with the operation's sink set for its stream (this task only)."""
        task = asyncio.current_task()
        _WIRE.set(
            _WireSink(
                self,
                query,
                variables,
                operation_name,
                f'{{"type":"data","id":{_id_json(operation_id)},"payload":',
                # Nothing after the client's stop (or a start reusing the id).
                lambda: self.tasks.get(operation_id) is task,
            )
        )
        await super().handle_async_results(operation_id, query, operation_name, variables)
