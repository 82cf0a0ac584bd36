"""OAuth 2.0 state (PRODUCT.md §1): authorization codes, token families, rotation, revocation.

Pure storage and state rules; the HTTP protocol (parameter checks, client authentication, PKCE
comparison, error JSON) lives in ``resolvers/oauth.py`` on top of authlib's primitives.

Decisions:

- Codes live 10 minutes and work once. Redeeming a code a second time revokes every token issued
  from it (RFC 6749 §4.1.2), since the code has leaked.
- Every code exchange starts a token family; each refresh rotates the refresh token within the
  family. Presenting a refresh token that was already rotated revokes the whole family (the
  token leaked: whoever holds the newer one loses it too, and must sign in again).
- A rotated token's access token is revoked at once, so at most one access token per family works.
- A suspended or deleted creditor gets no tokens: suspension revokes its families and codes,
  and neither a code nor a refresh token is honoured for it afterwards.
- Refresh tokens live ``refresh_ttl`` (30 days by default) from issue; access tokens 1 hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

from sqlalchemy import ColumnElement, Select, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.concurrency import insert_unless_exists
from debtgraph.domain.core.errors import ExpectedError
from debtgraph.domain.core.secrets import hash_token, random_string
from debtgraph.domain.creditors.models import User, UserStatus
from debtgraph.domain.oauth.models import (
    AuthorizationCode,
    OAuthToken,
    Platform,
    PlatformConnection,
)

CODE_TTL = timedelta(minutes=10)
# A platform id, or a column holding one (set-wise checks over many platforms' rows).
PlatformRef: TypeAlias = ColumnElement[int] | QueryableAttribute[int] | int

# The scope that lets a platform see an event about an object of each type; the other object
# types (uploads, debtors, billing) belong to the operator API only.
EVENT_SCOPES = {"receivable": "receivables:read", "user": "users:read", "webhook": "webhooks:read"}
ACCESS_TOKEN_PREFIX = "dga_"
REFRESH_TOKEN_PREFIX = "dgr_"


def event_scope(object_type: str) -> str | None:
    """The scope needed to see an event about this object type; None: operators only."""
    return EVENT_SCOPES.get(object_type)


def live_grant_users(platform_id: PlatformRef, scope: str, now: datetime) -> Select:
    """SELECT of the users with a live OAuth grant to the platform that includes ``scope``.

    Live: a token family not revoked whose refresh token (or, for a token without one, access
    token) has not expired. ``platform_id`` may be a column, for set-wise use (webhooks).
    """
    live_until = func.coalesce(OAuthToken.refresh_expires_at, OAuthToken.expires_at)
    padded = literal(" ").concat(OAuthToken.scope).concat(" ")
    return (
        select(OAuthToken.user_id)
        .where(
            OAuthToken.platform_id == platform_id,
            OAuthToken.revoked_at.is_(None),
            live_until > now,
            # Scopes are stored space-separated; their names hold no LIKE wildcard.
            padded.like(f"% {scope} %"),
        )
        # A column ``platform_id`` belongs to a query this one is nested in, maybe two levels
        # up (webhooks: ``platform_reach`` inside an IN): implicit correlation reaches only
        # the enclosing SELECT and would join that table afresh here, every platform's grants
        # then counting for every webhook.
        .correlate_except(OAuthToken)
    )


def platform_reach(platform_id: PlatformRef, scope: str, now: datetime) -> ColumnElement[bool]:
    """SQL condition on ``User``: the creditors over whom the platform may use ``scope``.

    Those it created, and those with a live grant to it that includes the scope (PRODUCT.md
    §1). Whether the platform is allowed the scope at all is the caller's check.
    """
    return User.deleted_at.is_(None) & or_(
        User.platform_id == platform_id,
        User.id.in_(live_grant_users(platform_id, scope, now)),
    )


class GrantError(ExpectedError):
    """The grant cannot be honoured: RFC 6749 ``invalid_grant``."""

    code = "invalid_grant"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


async def issue_code(
    session: AsyncSession,
    clock: Clock,
    *,
    platform_id: int,
    user_id: int,
    redirect_uri: str,
    scope: str,
    code_challenge: str | None,
    code_challenge_method: str | None,
) -> str:
    """Store a new authorization code (hashed) and return it in clear."""
    code = random_string(48)
    now = clock.now()
    session.add(
        AuthorizationCode(
            code_hash=hash_token(code),
            platform_id=platform_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires_at=now + CODE_TTL,
            created_at=now,
        )
    )
    await session.flush()
    return code


async def connect(
    session: AsyncSession, clock: Clock, platform_id: int, user_id: int, scopes: list[str]
) -> None:
    """Record that the creditor authorised the platform (scopes accumulate across consents)."""
    # Insert-or-nothing, then merge under the row lock: concurrent consents neither trip the
    # unique (platform, user) constraint nor lose each other's scopes.
    created = await insert_unless_exists(
        session,
        PlatformConnection,
        {
            "platform_id": platform_id,
            "user_id": user_id,
            "scopes": scopes,
            "created_at": clock.now(),
        },
        ["platform_id", "user_id"],
    )
    if created is not None:
        return
    row = await session.scalar(
        select(PlatformConnection)
        .where(PlatformConnection.platform_id == platform_id, PlatformConnection.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # the insert found it there
    row.scopes = sorted(set(row.scopes) | set(scopes))
    await session.flush()


async def revoke_family(session: AsyncSession, clock: Clock, family_id: str) -> None:
    """Revoke every token of a family."""
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.family_id == family_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )


async def revoke_user_grants(session: AsyncSession, clock: Clock, user_id: int) -> None:
    """Revoke every token family and spend every unused code of a creditor (suspension)."""
    now = clock.now()
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.user_id == user_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.user_id == user_id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )


def connected_to(platform_id: int) -> ColumnElement[bool]:
    """SQL condition on ``User``: the creditors the platform created, or that gave it a grant
    (a consent record, or a token family, live or not)."""
    return or_(
        User.platform_id == platform_id,
        User.id.in_(
            select(PlatformConnection.user_id).where(PlatformConnection.platform_id == platform_id)
        ),
        User.id.in_(select(OAuthToken.user_id).where(OAuthToken.platform_id == platform_id)),
    )


async def disconnect(session: AsyncSession, clock: Clock, platform_id: int, user_id: int) -> None:
    """End every grant the creditor gave the platform (PRODUCT.md §1, "disconnecting"): its
    unused codes spent, its token families revoked, its consent record gone.

    Codes first: a redemption racing this one waits on the code's row and finds it spent. The
    tokens twice: a refresh that locked its token before the first update commits its new
    token before that update goes on, so the second (a statement of its own, seeing what is
    committed) revokes it; a later refresh waits on a token locked here and finds it revoked.
    """
    now = clock.now()
    await session.execute(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.platform_id == platform_id,
            AuthorizationCode.user_id == user_id,
            AuthorizationCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    live = update(OAuthToken).where(
        OAuthToken.platform_id == platform_id,
        OAuthToken.user_id == user_id,
        OAuthToken.revoked_at.is_(None),
    )
    await session.execute(live.values(revoked_at=now))
    await session.execute(live.values(revoked_at=now))
    await session.execute(
        delete(PlatformConnection).where(
            PlatformConnection.platform_id == platform_id, PlatformConnection.user_id == user_id
        )
    )


async def _refuse_blocked_user(session: AsyncSession, user_id: int) -> None:
    # Suspension revokes the grants already; this also covers a deleted creditor.
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None or user.status == UserStatus.SUSPENDED:
        raise GrantError("The user's account is suspended or closed.")


async def redeem_code(
    session: AsyncSession, clock: Clock, platform: Platform, code: str, redirect_uri: str | None
) -> AuthorizationCode:
    """The code, marked used, if it is live and bound to this client and redirect URI.

    A replay revokes the tokens already issued from the code (the caller must commit so that
    the revocation sticks even though the request fails).
    """
    digest, now = hash_token(code), clock.now()
    # Spend the code first, in one conditional statement: of concurrent redemptions exactly one
    # wins (PostgreSQL keeps the row locked until its commit; SQLite queues the writers).
    # Spent whatever happens next: a code never gets a second try.
    won = await session.scalar(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.code_hash == digest,
            AuthorizationCode.platform_id == platform.id,
            AuthorizationCode.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(AuthorizationCode.id)
        .execution_options(synchronize_session=False)
    )
    row = await session.scalar(
        select(AuthorizationCode)
        .where(AuthorizationCode.code_hash == digest)
        .execution_options(populate_existing=True)
    )
    if row is None or row.platform_id != platform.id:
        raise GrantError("The authorization code is invalid.")
    if won is None:
        if row.token_family_id is not None:
            await revoke_family(session, clock, row.token_family_id)
        raise GrantError("The authorization code was already used.")
    if row.expires_at <= now:
        raise GrantError("The authorization code has expired.")
    if redirect_uri != row.redirect_uri:
        raise GrantError("redirect_uri does not match the one of the authorization request.")
    return row


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """A token pair in clear (shown once) with its lifetime and scope."""

    access_token: str
    refresh_token: str
    expires_in: int
    scope: str


def _new_pair(
    session: AsyncSession,
    clock: Clock,
    *,
    platform_id: int,
    user_id: int,
    scope: str,
    family_id: str,
    access_ttl: timedelta,
    refresh_ttl: timedelta,
) -> IssuedTokens:
    access, refresh = (
        ACCESS_TOKEN_PREFIX + random_string(40),
        REFRESH_TOKEN_PREFIX + random_string(48),
    )
    now = clock.now()
    session.add(
        OAuthToken(
            access_token_hash=hash_token(access),
            refresh_token_hash=hash_token(refresh),
            family_id=family_id,
            platform_id=platform_id,
            user_id=user_id,
            scope=scope,
            expires_at=now + access_ttl,
            refresh_expires_at=now + refresh_ttl,
            created_at=now,
        )
    )
    return IssuedTokens(access, refresh, int(access_ttl.total_seconds()), scope)


async def tokens_for_code(
    session: AsyncSession,
    clock: Clock,
    code: AuthorizationCode,
    *,
    access_ttl: timedelta,
    refresh_ttl: timedelta,
) -> IssuedTokens:
    """Start a token family for a redeemed code."""
    await _refuse_blocked_user(session, code.user_id)
    family_id = random_string(32)
    code.token_family_id = family_id
    issued = _new_pair(
        session,
        clock,
        platform_id=code.platform_id,
        user_id=code.user_id,
        scope=code.scope,
        family_id=family_id,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
    )
    await session.flush()
    return issued


async def _reused(session: AsyncSession, clock: Clock, family_id: str) -> GrantError:
    """Revoke the family of a refresh token presented again; the error to raise."""
    await revoke_family(session, clock, family_id)
    return GrantError("The refresh token was already used; the session has been revoked.")


async def rotate(
    session: AsyncSession,
    clock: Clock,
    platform: Platform,
    refresh_token: str,
    *,
    scope: list[str] | None,
    access_ttl: timedelta,
    refresh_ttl: timedelta,
) -> IssuedTokens:
    """Exchange a live refresh token for a new pair; reuse of a rotated one revokes the family."""
    row = await session.scalar(
        select(OAuthToken).where(OAuthToken.refresh_token_hash == hash_token(refresh_token))
    )
    if row is None or row.platform_id != platform.id:
        raise GrantError("The refresh token is invalid.")
    now = clock.now()
    if row.rotated_at is not None:
        raise await _reused(session, clock, row.family_id)
    if row.revoked_at is not None:
        raise GrantError("The refresh token has been revoked.")
    if row.refresh_expires_at is not None and row.refresh_expires_at <= now:
        raise GrantError("The refresh token has expired.")
    await _refuse_blocked_user(session, row.user_id)
    granted = row.scope.split()
    if scope is not None and not set(scope) <= set(granted):
        raise GrantError("The requested scope exceeds the scope originally granted.")
    # The checks above read without a lock; this conditional write is the one that counts: of
    # concurrent rotations of one token exactly one gets the row, the others are reuses.
    won = await session.scalar(
        update(OAuthToken)
        .where(
            OAuthToken.id == row.id,
            OAuthToken.rotated_at.is_(None),
            OAuthToken.revoked_at.is_(None),
        )
        .values(rotated_at=now, revoked_at=now)
        .returning(OAuthToken.id)
        .execution_options(synchronize_session="fetch")
    )
    if won is None:
        await session.refresh(row)
        if row.rotated_at is not None:
            raise await _reused(session, clock, row.family_id)
        raise GrantError("The refresh token has been revoked.")
    issued = _new_pair(
        session,
        clock,
        platform_id=row.platform_id,
        user_id=row.user_id,
        # Narrowing applies to the new pair only; the family keeps its original grant.
        scope=" ".join(scope) if scope else row.scope,
        family_id=row.family_id,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
    )
    await session.flush()
    return issued


async def revoke_token(session: AsyncSession, clock: Clock, platform: Platform, token: str) -> None:
    """RFC 7009: revoke an access token, or a refresh token with its whole family.

    Unknown tokens and tokens of other clients are ignored (the endpoint answers 200 anyway).
    """
    digest = hash_token(token)
    row = await session.scalar(select(OAuthToken).where(OAuthToken.refresh_token_hash == digest))
    if row is not None and row.platform_id == platform.id:
        await revoke_family(session, clock, row.family_id)
        return
    row = await session.scalar(select(OAuthToken).where(OAuthToken.access_token_hash == digest))
    if row is not None and row.platform_id == platform.id and row.revoked_at is None:
        row.revoked_at = clock.now()
        await session.flush()
