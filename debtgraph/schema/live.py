"""Subscription results computed once for every subscriber handed the same event.

The dispatcher (``resolvers/events.py``) hands one loaded value per event and audience to all
matching subscribers. Here the face shapes that value once (:func:`shaped`) and executes each
distinct selection once per audience (:class:`SharedEventExecutor`): a thousand identical
``uploadProgress`` subscriptions cost one execution, each subscriber getting its own copy of
the result (errors are masked and logged per subscriber by the schema's extensions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from graphql import ExecutionResult, OperationType
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.permissions import event_audience

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
