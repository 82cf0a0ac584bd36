"""Platforms (OAuth clients with API keys), their connections to creditors, codes and tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base

# The seed's scopes, named once: permissions check them, grants and keys store them.
USERS_READ = "users:read"
USERS_WRITE = "users:write"
RECEIVABLES_READ = "receivables:read"
RECEIVABLES_WRITE = "receivables:write"
WEBHOOKS_READ = "webhooks:read"
WEBHOOKS_WRITE = "webhooks:write"
REPORTS_READ = "reports:read"
ALL_SCOPES = (
    USERS_READ,
    USERS_WRITE,
    RECEIVABLES_READ,
    RECEIVABLES_WRITE,
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
    REPORTS_READ,
)


class Platform(Base):
    """A SaaS platform: an OAuth client that also calls the API with its secret key."""

    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret_hash: Mapped[str] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    allowed_scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]


class ApiKey(Base):
    """A platform secret key (``sk_live_…`` / ``sk_test_…``), stored hashed."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(10))
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class PlatformConnection(Base):
    """A creditor that authorised a platform through OAuth (or was created by it)."""

    __tablename__ = "platform_connections"
    __table_args__ = (UniqueConstraint("platform_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]


class AuthorizationCode(Base):
    """A single-use authorization code bound to client, redirect URI and PKCE challenge."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128), default=None)
    code_challenge_method: Mapped[str | None] = mapped_column(String(10), default=None)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    # The token family the code was exchanged for, so that a replayed code can revoke it.
    token_family_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime]


class OAuthToken(Base):
    """An access token with its refresh token; rotated refresh tokens share a family."""

    __tablename__ = "oauth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    family_id: Mapped[str] = mapped_column(String(40), index=True)
    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platforms.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(500))
    expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
