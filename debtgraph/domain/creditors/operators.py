"""Creating or resetting operators (the CLI's and the demo's entry point)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.errors import DomainValidationError, FieldError
from debtgraph.domain.core.secrets import hash_password, public_id
from debtgraph.domain.creditors.models import AccessToken, Role, User, UserStatus


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
