"""Reading users within the caller's reach."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select

from debtgraph.domain.creditors.models import User
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.permissions import USERS_READ, require_scope, user_reach
from debtgraph.resolvers.principal import Principal


def user_visible_condition(principal: Principal, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition for the users over whom a caller may use ``scope`` (PRODUCT.md §1)."""
    return user_reach(principal, scope, now)


async def visible_users_by_public_id(ctx: Context, public_ids: Iterable[str]) -> dict[str, User]:
    """Users among ``public_ids`` that the caller may read, keyed by public id."""
    principal = ctx.principal
    ids = list(public_ids)
    if principal is None or not ids or not principal.has_scope(USERS_READ):
        return {}
    condition = user_visible_condition(principal, USERS_READ, ctx.clock.now())
    async with ctx.uow.session() as session:
        rows = (await session.scalars(select(User).where(User.public_id.in_(ids), condition))).all()
    return {u.public_id: u for u in rows}


async def readable_user(ctx: Context, user_id: int) -> User | None:
    """A user by database id if the caller may read it (``users:read``), batched per request.

    MissingScope when the caller lacks ``users:read`` altogether; None when the user is out of
    that scope's reach.
    """
    principal = require_scope(ctx, USERS_READ)
    now = ctx.clock.now()

    async def batch(keys: Sequence[int]) -> list[User | None]:
        condition = user_visible_condition(principal, USERS_READ, now)
        async with ctx.uow.session() as session:
            rows = (await session.scalars(select(User).where(User.id.in_(keys), condition))).all()
        found = {u.id: u for u in rows}
        return [found.get(k) for k in keys]

    return await ctx.loaders.custom("readable_users", batch).load(user_id)  # type: ignore[no-any-return]
