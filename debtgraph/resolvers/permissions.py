"""Scopes and reach (PRODUCT.md §1): who may use which scope over which creditor, in one place.

- An operator holds every scope over everyone.
- A creditor token holds the scopes it was granted, over its own user only.
- A platform key holds the scopes the platform is allowed. Over the creditors it created it
  uses all of them; over a creditor that connected to it by OAuth only the scopes of a live
  grant: a token family of that (platform, user) pair, not revoked, whose refresh token (or,
  for a token without one, access token) has not expired, and whose scope includes the one
  asked for. Revoking the family, or suspending the creditor, ends the reach at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, false, func, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth.models import OAuthToken
from debtgraph.domain.receivables.models import Receivable
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import MissingScope, OperatorOnly, Unauthenticated
from debtgraph.resolvers.principal import Principal, PrincipalKind

USERS_READ = "users:read"
USERS_WRITE = "users:write"
RECEIVABLES_READ = "receivables:read"
RECEIVABLES_WRITE = "receivables:write"
WEBHOOKS_READ = "webhooks:read"
WEBHOOKS_WRITE = "webhooks:write"
REPORTS_READ = "reports:read"

# The scope that lets a caller see an event about an object of each type; the other object
# types (uploads, debtors, billing) belong to the operator API only.
_EVENT_SCOPES = {"receivable": RECEIVABLES_READ, "user": USERS_READ}


def require_principal(ctx: Context) -> Principal:
    """The caller, or Unauthenticated."""
    if ctx.principal is None:
        raise Unauthenticated()
    return ctx.principal


def require_operator(ctx: Context) -> Principal:
    """An operator, else Unauthenticated (anonymous) or OperatorOnly (another caller)."""
    principal = require_principal(ctx)
    if not principal.is_operator:
        raise OperatorOnly()
    return principal


def require_operator_token(ctx: Context) -> Principal:
    """An operator, else Unauthenticated: the operator API (``/api/*``) knows no other caller."""
    if ctx.principal is None or not ctx.principal.is_operator:
        raise Unauthenticated()
    return ctx.principal


def require_scope(ctx: Context, scope: str) -> Principal:
    """The caller, holding ``scope``; Unauthenticated or MissingScope before anything runs."""
    if ctx.principal is None:
        raise Unauthenticated()
    if not ctx.principal.has_scope(scope):
        raise MissingScope(scope)
    return ctx.principal


def granted_users(platform_id: int, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition: the user has a live OAuth grant to the platform that includes ``scope``."""
    live_until = func.coalesce(OAuthToken.refresh_expires_at, OAuthToken.expires_at)
    padded = literal(" ").concat(OAuthToken.scope).concat(" ")
    grants = select(OAuthToken.user_id).where(
        OAuthToken.platform_id == platform_id,
        OAuthToken.revoked_at.is_(None),
        live_until > now,
        # Scopes are stored space-separated; their names hold no LIKE wildcard.
        padded.like(f"% {scope} %"),
    )
    return User.id.in_(grants)


def user_reach(principal: Principal, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition on ``User``: the users over whom the caller may use ``scope``."""
    alive = User.deleted_at.is_(None)
    if not principal.has_scope(scope):
        return false()
    if principal.is_operator:
        return alive
    if principal.kind is PrincipalKind.PLATFORM:
        assert principal.platform_id is not None
        return alive & or_(
            User.platform_id == principal.platform_id,
            granted_users(principal.platform_id, scope, now),
        )
    return alive & (User.id == principal.user_id)


def receivable_reach(principal: Principal, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition on ``Receivable``: those of the users within ``scope``'s reach."""
    if not principal.has_scope(scope):
        return false()
    if principal.is_operator:
        return true()
    if principal.kind is PrincipalKind.CREDITOR:
        return Receivable.user_id == principal.user_id
    return Receivable.user_id.in_(select(User.id).where(user_reach(principal, scope, now)))


def event_scope(object_type: str) -> str | None:
    """The scope needed to see an event about this object type; None: operators only."""
    return _EVENT_SCOPES.get(object_type)


# Who sees the same events as a caller: every operator sees everything; a platform's view
# depends on its id and scopes, a creditor's on its user and scopes.
Audience = tuple[object, ...]


def event_audience(principal: Principal) -> Audience:
    """The audience a caller belongs to: callers of one audience may see exactly the same
    events, so an event is authorised (and its node loaded) once per audience."""
    if principal.is_operator:
        return ("operator",)
    if principal.kind is PrincipalKind.PLATFORM:
        return ("platform", principal.platform_id, principal.scopes)
    return ("creditor", principal.user_id, principal.scopes)


async def event_visible(
    session: AsyncSession, principal: Principal, message: BusMessage, now: datetime
) -> bool:
    """Whether a caller may see an event now (scopes and reach as they are at this moment).

    Operators see every event. Others need the object type's scope (:func:`event_scope`);
    a creditor sees events about itself, a platform those about users in that scope's reach
    and those it raised that name no user.
    """
    if principal.is_operator:
        return True
    scope = event_scope(message.object_type)
    if scope is None or not principal.has_scope(scope):
        return False
    if principal.kind is PrincipalKind.CREDITOR:
        return message.user_id is not None and message.user_id == principal.user_id
    if message.user_id is None:
        return message.platform_id is not None and message.platform_id == principal.platform_id
    # Not cached across events: a grant revoked a moment ago must hide the very next event.
    found = await session.scalar(
        select(User.id).where(User.id == message.user_id, user_reach(principal, scope, now))
    )
    return found is not None
