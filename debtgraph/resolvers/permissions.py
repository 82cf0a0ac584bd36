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

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth import grants
from debtgraph.domain.oauth.models import (
    RECEIVABLES_READ,
    RECEIVABLES_WRITE,
    REPORTS_READ,
    USERS_READ,
    USERS_WRITE,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
)
from debtgraph.domain.receivables.models import Receivable
from debtgraph.domain.webhooks.models import Webhook
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import Conflict, MissingScope, OperatorOnly, Unauthenticated
from debtgraph.resolvers.principal import Principal, PrincipalKind

# Re-exported: the faces name the scope they check through this module (the one place for checks).
__all__ = [
    "RECEIVABLES_READ",
    "RECEIVABLES_WRITE",
    "REPORTS_READ",
    "USERS_READ",
    "USERS_WRITE",
    "WEBHOOKS_READ",
    "WEBHOOKS_WRITE",
]


def require_principal(ctx: Context) -> Principal:
    """The caller, or Unauthenticated."""
    if ctx.principal is None:
        raise Unauthenticated()
    return ctx.principal


def require_operator(ctx: Context) -> Principal:
    """An operator, else Unauthenticated (anonymous) or OperatorOnly (another caller).

    The one check of every operator operation, on both faces: ``/api/*`` runs it before reading
    a body, the use cases run it again (GraphQL reaches them directly).
    """
    principal = require_principal(ctx)
    if not principal.is_operator:
        raise OperatorOnly()
    return principal


# What reading a node of each GraphQL type needs: a scope, or being an operator (None). A type
# missing here is an operator's: a new node type is closed until someone decides who may read it.
NODE_SCOPES: dict[str, str | None] = {
    "User": USERS_READ,
    "Receivable": RECEIVABLES_READ,
    "Contact": RECEIVABLES_READ,
    "ReceivableEvent": RECEIVABLES_READ,
    "Evidence": RECEIVABLES_READ,
    "ExtractionResult": RECEIVABLES_READ,
    "Upload": None,
    "Debtor": None,
    "BillingAttempt": None,
    "VopLog": None,
    "BlacklistEntry": None,
    "Webhook": WEBHOOKS_READ,
    "WebhookDelivery": WEBHOOKS_READ,
}


def require_node_access(ctx: Context, type_name: str) -> Principal:
    """May the caller read objects of ``type_name`` at all (reach is the fetch's own)?

    Anonymous: Unauthenticated; a token missing the type's scope: MissingScope; a non-operator on
    an operator type: OperatorOnly. So ``node(id)`` answers as REST's ``GET`` of the same object
    does (401/403), and only what is absent or out of reach is a plain not-found.
    """
    require_principal(ctx)
    scope = NODE_SCOPES.get(type_name)
    if scope is None:
        return require_operator(ctx)
    return require_scope(ctx, scope)


def require_scope(ctx: Context, scope: str) -> Principal:
    """The caller, holding ``scope``; Unauthenticated or MissingScope before anything runs."""
    if ctx.principal is None:
        raise Unauthenticated()
    ctx.required_scopes.add(scope)
    if not ctx.principal.has_scope(scope):
        raise MissingScope(scope)
    return ctx.principal


def note_reach(ctx: Context, kind: str, user_id: int, scope: str) -> None:
    """Record that the request reached creditor ``user_id`` with ``scope`` for an object of
    ``kind`` (what its NotFound names): an idempotent replay asks it again."""
    ctx.reached.add((kind, user_id, scope))


async def still_reaches(ctx: Context, user_id: int, scope: str) -> bool:
    """Whether the caller reaches creditor ``user_id`` with ``scope`` now."""
    principal = require_principal(ctx)
    async with ctx.uow.session() as session:
        found = await session.scalar(
            select(User.id).where(User.id == user_id, user_reach(principal, scope, ctx.clock.now()))
        )
    return found is not None


def user_reach(principal: Principal, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition on ``User``: the users over whom the caller may use ``scope``."""
    alive = User.deleted_at.is_(None)
    if not principal.has_scope(scope):
        return false()
    if principal.is_operator:
        return alive
    if principal.kind is PrincipalKind.PLATFORM:
        assert principal.platform_id is not None
        # The one rule, in the domain, so webhook deliveries (jobs) apply it too.
        return grants.platform_reach(principal.platform_id, scope, now)
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
    return grants.event_scope(object_type)


def webhook_reach(principal: Principal, scope: str) -> ColumnElement[bool]:
    """SQL condition on ``Webhook``: the webhooks the caller may use ``scope`` on.

    A platform key: its platform's; a creditor token: those it registered for its platform;
    an operator: every one (read and delete, as everything else).
    """
    if not principal.has_scope(scope):
        return false()
    if principal.is_operator:
        return true()
    if principal.kind is PrincipalKind.PLATFORM:
        return Webhook.platform_id == principal.platform_id
    return (Webhook.platform_id == principal.platform_id) & (Webhook.user_id == principal.user_id)


def webhook_owner(principal: Principal) -> tuple[int, int | None]:
    """The (platform, creditor) a new webhook belongs to; Conflict for an operator."""
    if principal.is_operator or principal.platform_id is None:
        raise Conflict(
            "platform_required",
            "Webhooks belong to a platform: register them with its API key or a creditor's "
            "OAuth token.",
        )
    user_id = principal.user_id if principal.kind is PrincipalKind.CREDITOR else None
    return principal.platform_id, user_id


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
