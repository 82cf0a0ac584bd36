"""Creating or resetting operators (the CLI's and the demo's entry point)."""

from __future__ import annotations

import re

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.errors import (
    INVALID_CHARACTER,
    NUL_MESSAGE,
    DomainValidationError,
    FieldError,
)
from debtgraph.domain.core.secrets import hash_password, public_id
from debtgraph.domain.creditors.models import NAME_LENGTH, AccessToken, Role, User, UserStatus

# What the operator sign-in (POST /api/login) takes for an email, as Laravel's rule reads it.
_SIGN_IN_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_sign_in_email(email: str) -> bool:
    """Whether the sign-in takes ``email`` (trimmed) as an email address."""
    return bool(_SIGN_IN_EMAIL.match(email.strip())) and len(email) <= 254


async def upsert_operator(
    session: AsyncSession, clock: Clock, email: str, password: str, name: str
) -> User:
    """Create an operator, or reset the password and name of an existing one.

    A reset revokes every token of the operator (PRODUCT.md §1): whoever held one must sign in
    with the new password.
    """
    # Refused here what the sign-in would refuse: an operator made with it could never sign in.
    if not is_sign_in_email(email):
        raise DomainValidationError(
            [FieldError("email", "invalid", "The email field must be a valid email address.")]
        )
    email = email.strip().lower()
    if not password:
        raise DomainValidationError([FieldError("password", "required", "Password is required.")])
    for field, value in (("password", password), ("name", name)):
        if "\x00" in value:
            raise DomainValidationError([FieldError(field, INVALID_CHARACTER, NUL_MESSAGE)])
    if len(name) > NAME_LENGTH:
        raise DomainValidationError(
            [FieldError("name", "too_long", f"The name must be at most {NAME_LENGTH} characters.")]
        )
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
