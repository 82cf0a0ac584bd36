"""Reading users within the caller's reach."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select

from debtgraph.domain.oauth import PlatformConnection
from debtgraph.domain.users import User
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.principal import Principal, PrincipalKind


def user_visible_condition(principal: Principal):  # type: ignore[no-untyped-def]
    """SQL condition for the users a caller may see (PRODUCT.md §1)."""
    if principal.is_operator:
        return User.deleted_at.is_(None)
    if principal.kind is PrincipalKind.PLATFORM:
        connected = select(PlatformConnection.user_id).where(
            PlatformConnection.platform_id == principal.platform_id
        )
        return User.deleted_at.is_(None) & or_(
            User.platform_id == principal.platform_id, User.id.in_(connected)
        )
    return User.deleted_at.is_(None) & (User.id == principal.user_id)


async def visible_users_by_public_id(ctx: Context, public_ids: Iterable[str]) -> dict[str, User]:
    """Users among ``public_ids`` that the caller may see, keyed by public id."""
    principal = ctx.principal
    ids = list(public_ids)
    if principal is None or not ids:
        return {}
    async with ctx.uow.session() as session:
        rows = (
            await session.scalars(
                select(User).where(User.public_id.in_(ids), user_visible_condition(principal))
            )
        ).all()
    return {u.public_id: u for u in rows}
