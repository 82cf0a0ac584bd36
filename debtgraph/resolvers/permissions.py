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

from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth import grants
from debtgraph.domain.receivables.models import Receivable
from debtgraph.domain.webhooks.models import Webhook
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import Conflict, MissingScope, OperatorOnly, Unauthenticated
from debtgraph.resolvers.principal import Principal, PrincipalKind

USERS_READ = "users:read"
USERS_WRITE = "users:write"
RECEIVABLES_READ = "receivables:read"
RECEIVABLES_WRITE = "receivables:write"
WEBHOOKS_READ = "webhooks:read"
WEBHOOKS_WRITE = "webhooks:write"
REPORTS_READ = "reports:read"


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
