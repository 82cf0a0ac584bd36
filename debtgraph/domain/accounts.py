"""Creating operators and platforms (the CLI's and the demo's entry points)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.clock import Clock
from debtgraph.domain.errors import DomainValidationError, FieldError
from debtgraph.domain.oauth import ALL_SCOPES, ApiKey, Platform
from debtgraph.domain.secrets import hash_password, hash_token, public_id, random_string
from debtgraph.domain.users import AccessToken, Role, User, UserStatus


async def upsert_operator(
    session: AsyncSession, clock: Clock, email: str, password: str, name: str
) -> User:
    """Create an operator, or reset the password and name of an existing one.

    A reset revokes every token of the operator (PRODUCT.md §1): whoever held one must sign in
    with the new password.
    """
    email = email.strip().lower()
    if not password:
        raise DomainValidationError([FieldError("password", "required", "Password is required.")])
    user = await session.scalar(select(User).where(User.email == email))
    now = clock.now()
    if user is None:
        user = User(
            public_id=public_id("usr"),
            role=Role.ADMIN.value,
            email=email,
            name=name,
            status=UserStatus.ACTIVE.value,
            created_at=now,
            updated_at=now,
        )
        session.add(user)
    elif user.role != Role.ADMIN:
        raise DomainValidationError(
            [FieldError("email", "taken", "This email belongs to a creditor, not an operator.")]
        )
    else:
        await session.execute(
            update(AccessToken)
            .where(AccessToken.user_id == user.id, AccessToken.is_active.is_(True))
            .values(is_active=False, revoked_at=now)
        )
    user.password_hash = hash_password(password)
    user.name = name
    user.deleted_at = None
    user.updated_at = now
    await session.flush()
    return user


@dataclass(frozen=True, slots=True)
class RegisteredPlatform:
    """A new platform with its secrets, which exist in clear only here."""

    platform: Platform
    client_secret: str
    api_key: str


async def register_platform(
    session: AsyncSession,
    clock: Clock,
    name: str,
    redirect_uris: Sequence[str],
    scopes: Sequence[str] | None = None,
    *,
    mode: str = "test",
) -> RegisteredPlatform:
    """Create a platform (OAuth client) with a client secret and one ``sk_{mode}_`` API key."""
    errors: list[FieldError] = []
    if not name.strip():
        errors.append(FieldError("name", "required", "Name is required."))
    if not redirect_uris:
        errors.append(FieldError("redirect_uri", "required", "At least one redirect URI."))
    for i, uri in enumerate(redirect_uris):
        if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            errors.append(
                FieldError(f"redirect_uri[{i}]", "invalid", "Redirect URIs must use https.")
            )
    chosen = list(dict.fromkeys(scopes)) if scopes else list(ALL_SCOPES)
    unknown = [s for s in chosen if s not in ALL_SCOPES]
    if unknown:
        errors.append(FieldError("scope", "invalid", f"Unknown scopes: {', '.join(unknown)}."))
    if mode not in ("live", "test"):
        errors.append(FieldError("mode", "invalid", "Mode is live or test."))
    if errors:
        raise DomainValidationError(errors)
    client_secret = random_string(48)
    api_key = f"sk_{mode}_{random_string(40)}"
    platform = Platform(
        public_id=public_id("plt"),
        name=name.strip(),
        client_id=f"cl_{random_string(24)}",
        client_secret_hash=hash_token(client_secret),
        redirect_uris=list(redirect_uris),
        allowed_scopes=chosen,
        created_at=clock.now(),
    )
    session.add(platform)
    await session.flush()
    session.add(
        ApiKey(
            platform_id=platform.id,
            key_hash=hash_token(api_key),
            mode=mode,
            last4=api_key[-4:],
            created_at=clock.now(),
        )
    )
    await session.flush()
    return RegisteredPlatform(platform=platform, client_secret=client_secret, api_key=api_key)
