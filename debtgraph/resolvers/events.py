"""Live event streams for subscriptions, filtered to what the caller may see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

from sqlalchemy import select

from debtgraph.domain.eventbus import BusMessage
from debtgraph.domain.users import User
from debtgraph.resolvers.auth import require_principal
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.principal import Principal, PrincipalKind
from debtgraph.resolvers.users import user_visible_condition


class Visibility:
    """Whether a caller may see an event, with the reach of a platform cached per stream.

    A platform sees events it raised and events about users within its reach (created by it
    or connected to it), whichever platform submitted the object; an operator sees all, a
    creditor its own.
    """

    def __init__(self, ctx: Context, principal: Principal) -> None:
        self._ctx = ctx
        self._principal = principal
        self._users: dict[int, bool] = {}

    async def allows(self, message: BusMessage) -> bool:
        """Decide for one message."""
        principal = self._principal
        if principal.is_operator:
            return True
        if principal.kind is PrincipalKind.CREDITOR:
            return message.user_id is not None and message.user_id == principal.user_id
        if message.platform_id is not None and message.platform_id == principal.platform_id:
            return True
        if message.user_id is None:
            return False
        if message.user_id not in self._users:
            async with self._ctx.uow.session() as session:
                found = await session.scalar(
                    select(User.id).where(
                        User.id == message.user_id, user_visible_condition(principal)
                    )
                )
            self._users[message.user_id] = found is not None
        return self._users[message.user_id]


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
    visibility = Visibility(ctx, principal)
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
        allowed = await visibility.allows(message)
        await ctx.uow.close()
        if not allowed:
            continue
        ctx.refresh()
        yield message
        await ctx.uow.close()
