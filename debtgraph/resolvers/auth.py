"""Authentication use cases: bearer tokens into a Principal; operator login, logout and "me"."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from debtgraph.domain.core.database import read_connection
from debtgraph.domain.core.secrets import (
    hash_token,
    random_string,
    tokens_equal,
    verify_password,
)
from debtgraph.domain.creditors.models import AccessToken, Role, User, UserStatus
from debtgraph.domain.creditors.operators import is_sign_in_email
from debtgraph.domain.oauth.models import ALL_SCOPES, ApiKey, OAuthToken, Platform
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import (
    FieldError,
    InputError,
    MissingScope,
    Throttled,
    Unauthenticated,
)
from debtgraph.resolvers.pagination import db_id
from debtgraph.resolvers.permissions import USERS_READ, require_principal
from debtgraph.resolvers.principal import Principal, PrincipalKind, platform_principal

# Syntax only: the server never makes DNS lookups to validate input (PRODUCT.md §11).
BAD_CREDENTIALS = "The provided credentials are incorrect."


async def authenticate(ctx: Context, authorization: str | None) -> Principal | None:
    """Turn an ``Authorization: Bearer …`` value into a Principal; None when absent or invalid.

    The lookup runs in a session of its own, closed before returning: the request's unit of work
    opens its connection only when the request uses it, after its body has arrived, so a client
    that sends slowly (or a bogus token) holds no pooled connection while it sends.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    # Only reads of one statement each: no transaction around them (every request pays this).
    async with read_connection(ctx.services.engine) as conn:
        if "|" in token and not token.startswith(("sk_live_", "sk_test_")):
            return await _operator_token(ctx, conn, token)
        async with ctx.services.session_factory(bind=conn) as session:
            if token.startswith(("sk_live_", "sk_test_")):
                return await _platform_key(session, token)
            return await _oauth_token(ctx, session, token)


# What signing in with an operator token reads: the token and its user, in one statement.
_OPERATOR_TOKEN = (
    select(
        AccessToken.id,
        AccessToken.token_hash,
        AccessToken.is_active,
        AccessToken.revoked_at,
        AccessToken.created_at,
        User.id.label("user_id"),
        User.deleted_at,
        User.role,
    )
    .join(User, User.id == AccessToken.user_id)
    .where(AccessToken.id == bindparam("key"))
)


async def _operator_token(ctx: Context, conn: AsyncConnection, token: str) -> Principal | None:
    token_id, _, secret = token.partition("|")
    key = db_id(token_id)
    if key is None or not secret:
        return None
    row = (await conn.execute(_OPERATOR_TOKEN, {"key": key})).first()
    if row is None or not row.is_active or not tokens_equal(row.token_hash, hash_token(secret)):
        return None
    if row.revoked_at is not None or operator_token_expired(ctx, row.created_at):
        return None
    if row.deleted_at is not None or row.role != Role.ADMIN:
        return None
    return Principal(PrincipalKind.OPERATOR, user_id=row.user_id, token_id=row.id)


def operator_token_expired(ctx: Context, issued_at: datetime) -> bool:
    """Operator tokens live ``OPERATOR_TOKEN_TTL`` from issue (PRODUCT.md §1)."""
    ttl = timedelta(seconds=ctx.settings.operator_token_ttl_seconds)
    return issued_at + ttl <= ctx.clock.now()


async def _platform_key(session: AsyncSession, token: str) -> Principal | None:
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    platform = await session.get(Platform, row.platform_id)
    if platform is None:
        return None
    # A key holds the scopes its platform is allowed, no more (PRODUCT.md §1).
    return platform_principal(row.platform_id, platform.allowed_scopes or ALL_SCOPES, key_id=row.id)


async def _oauth_token(ctx: Context, session: AsyncSession, token: str) -> Principal | None:
    row = await session.scalar(
        select(OAuthToken).where(OAuthToken.access_token_hash == hash_token(token))
    )
    if row is None or row.revoked_at is not None or row.expires_at <= ctx.clock.now():
        return None
    user = await session.get(User, row.user_id)
    if user is None or not can_use_tokens(user):
        return None
    return Principal(
        PrincipalKind.CREDITOR,
        user_id=row.user_id,
        platform_id=row.platform_id,
        scopes=frozenset(row.scope.split()),
        token_id=row.id,
    )


def can_use_tokens(user: User) -> bool:
    """Suspended or deleted creditors' tokens stop working (PRODUCT.md §1)."""
    return user.deleted_at is None and user.status != UserStatus.SUSPENDED


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A new operator token (shown once) and its user."""

    token: str
    user: User


def _login_input(email: Any, password: Any) -> tuple[str, str]:
    errors: list[FieldError] = []
    if email is None or (isinstance(email, str) and not email.strip()):
        errors.append(FieldError("email", "required", "The email field is required."))
    elif not isinstance(email, str):
        errors.append(FieldError("email", "invalid", "The email field must be a string."))
    elif not is_sign_in_email(email):
        errors.append(
            FieldError("email", "invalid", "The email field must be a valid email address.")
        )
    if password is None or (isinstance(password, str) and password == ""):
        errors.append(FieldError("password", "required", "The password field is required."))
    elif not isinstance(password, str):
        errors.append(FieldError("password", "invalid", "The password field must be a string."))
    if errors:
        raise InputError(errors)
    return str(email).strip().lower(), str(password)


def sign_in_network(client_ip: str) -> str | None:
    """What the address cap counts a sign-in against: an IPv4 address, an IPv6 address's /64
    (one host is handed a whole /64, and would otherwise try from a new address each time);
    None when the request came with no address (a unix socket): capping that would make every
    caller share one count, and let one of them lock all the others out."""
    if not client_ip:
        return None
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip  # not an address (a test client's name): counted as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def acquire_sign_in(ctx: Context, email_key: str, address_key: str) -> None:
    """Count a sign-in attempt, before argon2 and atomically, against this address for any email
    and either face (LOGIN_MAX_ATTEMPTS_PER_ADDRESS), then the email from any address
    (LOGIN_MAX_ATTEMPTS_PER_EMAIL), then the email from this address; Throttled past any.

    A success clears only the last key: the others run out with their window, so guesses spread
    over many addresses, or over many emails from one address (each an argon2 check), stay
    capped even when someone signs in meanwhile. The address is counted first: a flood from one
    address stops there, without locking the emails it names out of their sign-in.
    """
    throttle = ctx.services.throttle
    settings = ctx.settings
    retry_after = None
    network = sign_in_network(ctx.client_ip)
    if network is not None:
        retry_after = await throttle.acquire(
            f"sign-in:{network}", settings.login_max_attempts_per_address
        )
    if retry_after is None:
        retry_after = await throttle.acquire(email_key, settings.login_max_attempts_per_email)
    if retry_after is None:
        retry_after = await throttle.acquire(address_key)
    if retry_after is not None:
        raise Throttled(retry_after)


async def login(ctx: Context, email: Any, password: Any) -> LoginResult:
    """Check operator credentials and issue a token; throttled per email and client address."""
    email_n, password_s = _login_input(email, password)
    key = f"login:{email_n}|{ctx.client_ip}"
    await acquire_sign_in(ctx, f"login:{email_n}", key)
    async with ctx.uow.session() as session:
        user = await session.scalar(
            select(User).where(User.email == email_n, User.deleted_at.is_(None))
        )
    # verify_password burns the same argon2 time when the user is unknown; argon2 is CPU work
    # of tens of milliseconds, so it runs off the event loop.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password_s)
    if user is None or not ok or user.role != Role.ADMIN:
        raise InputError([FieldError("email", "invalid_credentials", BAD_CREDENTIALS)])
    await ctx.services.throttle.clear(key)
    secret = random_string(40)
    async with ctx.uow.session() as session:
        row = AccessToken(
            user_id=user.id, token_hash=hash_token(secret), created_at=ctx.clock.now()
        )
        session.add(row)
        await session.flush()
        token = f"{row.id}|{secret}"
    await ctx.uow.commit()
    return LoginResult(token=token, user=user)


async def logout(ctx: Context) -> None:
    """Revoke the operator token the request came with."""
    principal = require_principal(ctx)
    if principal.kind is not PrincipalKind.OPERATOR or principal.token_id is None:
        raise Unauthenticated()
    async with ctx.uow.session() as session:
        await session.execute(
            update(AccessToken)
            .where(AccessToken.id == principal.token_id)
            .values(is_active=False, revoked_at=ctx.clock.now())
        )
    await ctx.uow.commit()


async def me(ctx: Context) -> User | None:
    """The signed-in user (operator or creditor); None for a platform key.

    A creditor token needs ``users:read`` to read its own user, as on ``GET /v1/users/{id}``.
    """
    principal = require_principal(ctx)
    if principal.user_id is None:
        return None
    if not principal.has_scope(USERS_READ):
        raise MissingScope(USERS_READ)
    user = await ctx.loaders.by(User.id).load(principal.user_id)
    if user is None or user.deleted_at is not None:
        raise Unauthenticated()
    return user


async def principal_is_live(ctx: Context, principal: Principal) -> bool:
    """Whether the credentials behind a principal still work now (long-lived streams)."""
    async with ctx.uow.session() as session:
        if principal.kind is PrincipalKind.PLATFORM:
            key = await session.get(ApiKey, principal.token_id) if principal.token_id else None
            return key is not None and key.revoked_at is None
        if principal.kind is PrincipalKind.OPERATOR:
            row = await session.get(AccessToken, principal.token_id or 0, populate_existing=True)
            if (
                row is None
                or not row.is_active
                or row.revoked_at is not None
                or operator_token_expired(ctx, row.created_at)
            ):
                return False
        else:
            token = await session.get(OAuthToken, principal.token_id or 0, populate_existing=True)
            if token is None or token.revoked_at is not None or token.expires_at <= ctx.clock.now():
                return False
        user = await session.get(User, principal.user_id or 0, populate_existing=True)
        if user is None or user.deleted_at is not None:
            return False
        return principal.is_operator or can_use_tokens(user)
