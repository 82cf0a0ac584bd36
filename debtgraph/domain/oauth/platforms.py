"""Registering a platform (OAuth client) with its secrets, for the CLI and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.errors import DomainValidationError, FieldError
from debtgraph.domain.core.secrets import hash_token, public_id, random_string
from debtgraph.domain.oauth.models import ALL_SCOPES, ApiKey, Platform


@dataclass(frozen=True, slots=True)
class RegisteredPlatform:
    """A new platform with its secrets, which exist in clear only here."""

    platform: Platform
    client_secret: str
    api_key: str


# Plain http is for a client on the user's own machine only (RFC 8252 §7.3, §8.3): the code
# then never crosses a network.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def acceptable_redirect_uri(uri: str) -> bool:
    """Whether ``uri`` may be registered: https to any host, http to a loopback host only.

    Parsed, not compared by prefix: ``http://localhost@evil.example/cb`` (userinfo) and
    ``http://localhost.evil.example/cb`` began with ``http://localhost`` and were taken.
    """
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and host in _LOOPBACK_HOSTS


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
        if not acceptable_redirect_uri(uri):
            errors.append(
                FieldError(
                    f"redirect_uri[{i}]",
                    "invalid",
                    "Redirect URIs must use https (plain http only to localhost, 127.0.0.1 "
                    "or [::1]), with a host and no credentials or fragment.",
                )
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
