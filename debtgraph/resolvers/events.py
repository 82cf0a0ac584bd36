"""Live event streams for subscriptions, filtered to what the caller may see while it may.

Decisions (PRODUCT.md §1, "on every face"):

- Each event is checked against the caller's scopes and reach as they are when it arrives: an
  event about a receivable needs ``receivables:read`` over its creditor, one about a user
  ``users:read``; other object types (uploads, debtors) are for operators only. A platform
  also sees events it raised that name no creditor.
- The caller's credentials are checked again before each event is delivered and every
  ``subscription_recheck_seconds`` while idle. Once they no longer work (token revoked or
  expired, operator logged out or password reset, creditor suspended or deleted, API key
  revoked) the stream ends: :data:`REVOKED_CLOSE_CODE` on a WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection

from sqlalchemy import select

from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.creditors.models import User
from debtgraph.resolvers.auth import principal_is_live
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.creditors import user_visible_condition
from debtgraph.resolvers.errors import Unauthenticated
from debtgraph.resolvers.permissions import event_scope, require_principal
from debtgraph.resolvers.principal import Principal, PrincipalKind

# Like HTTP 401 in the 4000-4999 range graphql-transport-ws leaves to applications (4401 is
# also what the protocol uses for "Unauthorized").
REVOKED_CLOSE_CODE = 4401
REVOKED_REASON = "Unauthorized: the credentials of this connection no longer work"
_CLOSE_GRACE_SECONDS = 30


class Visibility:
    """Whether a caller may see an event now (scopes and reach are read per event)."""

    def __init__(self, ctx: Context, principal: Principal) -> None:
        self._ctx = ctx
        self._principal = principal

    async def allows(self, message: BusMessage) -> bool:
        """Decide for one message."""
        principal = self._principal
        if principal.is_operator:
            return True
        scope = event_scope(message.object_type)
        if scope is None or not principal.has_scope(scope):
            return False
        if principal.kind is PrincipalKind.CREDITOR:
            return message.user_id is not None and message.user_id == principal.user_id
        if message.user_id is None:
            return message.platform_id is not None and message.platform_id == principal.platform_id
        # Not cached: a grant revoked a moment ago must hide the very next event.
        async with self._ctx.uow.session() as session:
            found = await session.scalar(
                select(User.id).where(
                    User.id == message.user_id,
                    user_visible_condition(principal, scope, self._ctx.clock.now()),
                )
            )
        return found is not None


async def _end_stream(ctx: Context) -> None:
    await ctx.uow.close()
    if ctx.end_stream is not None:
        await ctx.end_stream(REVOKED_CLOSE_CODE, REVOKED_REASON)
        # The face cancels this stream once the peer has gone: write nothing to a closed socket.
        await asyncio.sleep(_CLOSE_GRACE_SECONDS)
    raise Unauthenticated("The credentials of this subscription no longer work.")


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
    interval = max(ctx.settings.subscription_recheck_seconds, 1)
    # Hold no connection while waiting: a dashboard may idle for hours.
    await ctx.uow.close()
    stream = ctx.services.bus.subscribe()
    pending: asyncio.Future[BusMessage] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(stream))
            # Waiting does not cancel the read, so no message is lost to a re-check.
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                live = await principal_is_live(ctx, principal)
                await ctx.uow.close()
                if not live:
                    await _end_stream(ctx)
                continue
            message = pending.result()
            pending = None
            if wanted and message.type not in wanted:
                continue
            if object_type is not None and message.object_type != object_type:
                continue
            if object_id is not None and message.object_id != object_id:
                continue
            if not await principal_is_live(ctx, principal):
                await _end_stream(ctx)
            allowed = await visibility.allows(message)
            await ctx.uow.close()
            if not allowed:
                continue
            ctx.refresh()
            yield message
            await ctx.uow.close()
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
