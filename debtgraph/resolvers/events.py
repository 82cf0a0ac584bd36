"""Live event streams for subscriptions, filtered to what the caller may see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

from debtgraph.domain.eventbus import BusMessage
from debtgraph.resolvers.auth import require_principal
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.principal import Principal, PrincipalKind


def can_see(principal: Principal, message: BusMessage) -> bool:
    """Operators see every event; a platform its tenants'; a creditor its own."""
    if principal.is_operator:
        return True
    if principal.kind is PrincipalKind.PLATFORM:
        return message.platform_id is not None and message.platform_id == principal.platform_id
    return message.user_id is not None and message.user_id == principal.user_id


async def watch(
    ctx: Context,
    types: Collection[str] | None = None,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
) -> AsyncIterator[BusMessage]:
    """Events committed from now on that match the filters and the caller's reach.

    Each event starts with a fresh session and fresh loaders: a subscription outlives any
    single read, and must show the object as it is after this event.
    """
    principal = require_principal(ctx)
    wanted = set(types or ())
    # Hold no connection while waiting: a dashboard may idle for hours.
    await ctx.uow.close()
    async for message in ctx.services.bus.subscribe():
        if wanted and message.type not in wanted:
            continue
        if object_type is not None and message.object_type != object_type:
            continue
        if object_id is not None and message.object_id != object_id:
            continue
        if not can_see(principal, message):
            continue
        ctx.refresh()
        yield message
        await ctx.uow.close()
