"""OAuth 2.0 authorization-code flow on authlib's primitives, with state kept by the domain.

authlib's ``AuthorizationServer`` is synchronous and wants a sync session; instead its protocol
primitives (errors with RFC 6749 bodies, Basic client credentials, scope lists, PKCE S256) drive
data loaded asynchronously, so nothing blocks the event loop. argon2 runs in a thread.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization, list_to_scope, scope_to_list
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from sqlalchemy import select

from debtgraph.domain.core.secrets import hash_token, tokens_equal, verify_password
from debtgraph.domain.creditors.models import Role, User, UserStatus
from debtgraph.domain.oauth import grants as oauth_flow
from debtgraph.domain.oauth.models import ALL_SCOPES, Platform
from debtgraph.resolvers.auth import acquire_sign_in
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import ExpectedError

__all__ = ["OAuth2Error"]

# RFC 7636 §4.1: 43..128 unreserved characters, for both verifier and (S256) challenge.
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_MAX_STATE = 500
# The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3): each at most once
# (RFC 6749 §3.1); any other parameter is ignored, repeated or not.
_AUTHORIZE_PARAMETERS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


class AuthorizeFailure(ExpectedError):
    """A request that must not be redirected anywhere (unknown client, unregistered URI)."""

    code = "invalid_request"


class AuthorizeRedirect(ExpectedError):
    """An RFC 6749 §4.1.2.1 error to send back to the (validated) redirect URI."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None) -> None:
        super().__init__(description)
        self.code = error
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state


class BadCredentials(ExpectedError):
    """Wrong email or password on the consent page (or an account that cannot sign in)."""

    code = "invalid_credentials"

    def __init__(
        self, message: str = "The email or password is incorrect, or the account is suspended."
    ) -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated ``/oauth/authorize`` request, carried signed through the consent page."""

    client_id: str
    platform_name: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str | None = None
    code_challenge_method: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (to sign into the consent form)."""
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": list(self.scopes),
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
        }


async def _platform(ctx: Context, client_id: str | None) -> Platform | None:
    # A NUL cannot be in any client_id (and PostgreSQL text cannot even compare with one).
    if not client_id or not isinstance(client_id, str) or "\x00" in client_id:
        return None
    async with ctx.uow.session() as session:
        return await session.scalar(select(Platform).where(Platform.client_id == client_id))


async def validate_authorization(
    ctx: Context, params: Mapping[str, Any], *, repeated: Collection[str]
) -> AuthorizationRequest:
    """Check an authorization request in RFC 6749 order: client and redirect URI first.

    ``repeated``: the names the request gives more than once. A parameter of the request named
    twice is refused (RFC 6749 §3.1): told to the user when it is the client or the redirect
    URI (which of the two values to trust is unknown), else sent back to the client.
    """
    twice = [name for name in _AUTHORIZE_PARAMETERS if name in repeated]
    if "client_id" in twice:
        raise AuthorizeFailure("The client_id parameter is given more than once.")
    client_id = params.get("client_id")
    platform = await _platform(ctx, client_id)
    if platform is None:
        raise AuthorizeFailure("The client_id is unknown.")
    if "redirect_uri" in twice:
        raise AuthorizeFailure("The redirect_uri parameter is given more than once.")
    redirect_uri = params.get("redirect_uri") or ""
    # Exact string match against the registered list: no prefix or pattern matching.
    if redirect_uri not in platform.redirect_uris:
        raise AuthorizeFailure("The redirect_uri is not registered for this client.")
    # A state given twice is not sent back: neither value is known to be the client's.
    state = None if "state" in twice else params.get("state") or None

    def fail(error: str, description: str) -> AuthorizeRedirect:
        return AuthorizeRedirect(error, description, redirect_uri, state)

    if twice:
        raise fail("invalid_request", f"The {twice[0]} parameter is given more than once.")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code.")
    if state is None:
        raise fail("invalid_request", "The state parameter is required.")
    if len(state) > _MAX_STATE:
        raise fail("invalid_request", f"state must be at most {_MAX_STATE} characters.")
    scopes = scope_to_list(params.get("scope") or "") or []
    if not scopes:
        raise fail("invalid_scope", "The scope parameter is required.")
    allowed = set(platform.allowed_scopes or ALL_SCOPES)
    unknown = [s for s in scopes if s not in allowed]
    if unknown:
        raise fail("invalid_scope", f"Scopes not allowed for this client: {' '.join(unknown)}.")
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is None and method is not None:
        raise fail("invalid_request", "code_challenge_method without code_challenge.")
    if challenge is not None:
        if method != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256.")
        if not _PKCE_VALUE.fullmatch(challenge):
            raise fail("invalid_request", "code_challenge is malformed.")
    return AuthorizationRequest(
        client_id=platform.client_id,
        platform_name=platform.name,
        redirect_uri=redirect_uri,
        scopes=tuple(dict.fromkeys(scopes)),
        state=state,
        code_challenge=challenge,
        code_challenge_method=method,
    )


async def approve(ctx: Context, request: AuthorizationRequest, email: str, password: str) -> str:
    """Sign the creditor in and issue a code for the request; BadCredentials otherwise."""
    platform = await _platform(ctx, request.client_id)
    if platform is None or request.redirect_uri not in platform.redirect_uris:
        raise AuthorizeFailure("The client or its redirect_uri is no longer valid.")
    email_n = (email or "").strip().lower()
    key = f"consent:{email_n}|{ctx.client_ip}"
    await acquire_sign_in(ctx, f"consent:{email_n}", key)
    user = None
    if "\x00" not in email_n:  # no such email can exist, and PostgreSQL text cannot hold it
        async with ctx.uow.session() as session:
            user = await session.scalar(
                select(User).where(
                    User.email == email_n,
                    User.role == Role.CREDITOR.value,
                    User.deleted_at.is_(None),
                )
            )
    stored = user.password_hash if user is not None else None
    # argon2 is CPU-bound by design: keep it off the event loop.
    ok = await asyncio.to_thread(verify_password, stored, password or "")
    # A suspended account fails exactly like a wrong password (same message, same throttle), so
    # the page never confirms that a password is right for an account that cannot sign in.
    if user is None or not ok or user.status == UserStatus.SUSPENDED:
        raise BadCredentials()
    await ctx.services.throttle.clear(key)
    async with ctx.uow.session() as session:
        code = await oauth_flow.issue_code(
            session,
            ctx.clock,
            platform_id=platform.id,
            user_id=user.id,
            redirect_uri=request.redirect_uri,
            scope=list_to_scope(list(request.scopes)),
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
        )
        await oauth_flow.connect(session, ctx.clock, platform.id, user.id, list(request.scopes))
    await ctx.uow.commit()
    return code


# The parameters of a token request (RFC 6749 §4.1.3, §6, RFC 7636 §4.5, client authentication
# §2.3.1) and of a revocation (RFC 7009 §2.1): each at most once (RFC 6749 §3.2).
_TOKEN_PARAMETERS = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
)
_REVOKE_PARAMETERS = ("token", "token_type_hint", "client_id", "client_secret")


def _refuse_repeated(known: Sequence[str], repeated: Collection[str]) -> None:
    # Which of two codes or secrets is meant is unknown: a request naming one twice is refused
    # before either is looked at (the last one used to win).
    for name in known:
        if name in repeated:
            raise InvalidRequestError(f"The {name} parameter is given more than once.")


def _refuse_nul(form: Mapping[str, Any]) -> None:
    # No parameter of these endpoints can hold U+0000; say so rather than look anything up.
    for name, value in form.items():
        if "\x00" in name:
            raise InvalidRequestError("Parameter names must not contain the NUL character.")
        if isinstance(value, str) and "\x00" in value:
            # RFC 6749 allows only printable ASCII but '"' and '\\' in error_description.
            safe = name.isascii() and name.isprintable() and not set(name) & {'"', "\\"}
            shown = name if safe else "A parameter"
            raise InvalidRequestError(f"{shown} must not contain the NUL character.")


async def authenticate_client(
    ctx: Context, form: Mapping[str, Any], headers: Mapping[str, str]
) -> Platform:
    """client_secret_basic or client_secret_post (not both); invalid_client (401) otherwise."""
    try:
        basic_id, basic_secret = extract_basic_authorization(headers)
    except UnicodeDecodeError:
        # Basic credentials that are no UTF-8 name no client (authlib lets the decode fail:
        # a 500 and a trace for one anonymous request, at will).
        raise InvalidClientError(
            description="Client authentication failed.", status_code=401
        ) from None
    post_id, post_secret = form.get("client_id"), form.get("client_secret")
    if basic_id is not None and post_secret is not None:
        raise InvalidRequestError("Use one client authentication method, not two.")
    if basic_id is not None:
        client_id, secret = basic_id, basic_secret
        if post_id is not None and post_id != basic_id:
            raise InvalidRequestError("client_id does not match the Authorization header.")
    else:
        client_id, secret = post_id, post_secret
    platform = await _platform(ctx, client_id)
    supplied = hash_token(secret or "")
    expected = platform.client_secret_hash if platform is not None else hash_token("")
    if platform is None or not secret or not tokens_equal(expected, supplied):
        raise InvalidClientError(description="Client authentication failed.", status_code=401)
    return platform


def _ttls(ctx: Context) -> tuple[timedelta, timedelta]:
    settings = ctx.settings
    return (
        timedelta(seconds=settings.access_token_ttl_seconds),
        timedelta(seconds=settings.refresh_token_ttl_seconds),
    )


def _response(issued: oauth_flow.IssuedTokens) -> dict[str, Any]:
    return {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
        "scope": issued.scope,
    }


async def token(
    ctx: Context,
    form: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    repeated: Collection[str],
) -> dict[str, Any]:
    """``POST /oauth/token``: authorization_code and refresh_token grants (TokenResponse).

    ``repeated``: the names the request gives more than once (refused, RFC 6749 §3.2)."""
    _refuse_nul(form)
    _refuse_repeated(_TOKEN_PARAMETERS, repeated)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequestError("grant_type is required.")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise UnsupportedGrantTypeError(grant_type)
    platform = await authenticate_client(ctx, form, headers)
    access_ttl, refresh_ttl = _ttls(ctx)
    if grant_type == "authorization_code":
        return await _code_grant(ctx, platform, form, access_ttl, refresh_ttl)
    refresh_token = form.get("refresh_token")
    if not refresh_token:
        raise InvalidRequestError("refresh_token is required.")
    requested = scope_to_list(form.get("scope")) if form.get("scope") else None
    try:
        async with ctx.uow.session(keep_changes_on=(oauth_flow.GrantError,)) as session:
            issued = await oauth_flow.rotate(
                session,
                ctx.clock,
                platform,
                refresh_token,
                scope=requested,
                access_ttl=access_ttl,
                refresh_ttl=refresh_ttl,
            )
    except oauth_flow.GrantError as exc:
        # Commit what the refusal changed (a revoked family must stay revoked).
        await ctx.uow.commit()
        if requested is not None and "scope" in exc.description:
            raise InvalidScopeError(exc.description) from None
        raise InvalidGrantError(exc.description) from None
    await ctx.uow.commit()
    return _response(issued)


async def _code_grant(
    ctx: Context,
    platform: Platform,
    form: Mapping[str, Any],
    access_ttl: timedelta,
    refresh_ttl: timedelta,
) -> dict[str, Any]:
    code = form.get("code")
    if not code:
        raise InvalidRequestError("code is required.")
    verifier = form.get("code_verifier")
    try:
        async with ctx.uow.session(keep_changes_on=(oauth_flow.GrantError,)) as session:
            row = await oauth_flow.redeem_code(
                session, ctx.clock, platform, code, form.get("redirect_uri")
            )
            if row.code_challenge is not None:
                if not verifier or not _PKCE_VALUE.fullmatch(verifier):
                    raise oauth_flow.GrantError("A valid code_verifier is required (PKCE).")
                if not compare_s256_code_challenge(verifier, row.code_challenge):
                    raise oauth_flow.GrantError("The code_verifier does not match (PKCE).")
            elif verifier:
                raise oauth_flow.GrantError("code_verifier sent for a code issued without PKCE.")
            issued = await oauth_flow.tokens_for_code(
                session, ctx.clock, row, access_ttl=access_ttl, refresh_ttl=refresh_ttl
            )
    except oauth_flow.GrantError as exc:
        # The code is spent and a replay's revocations must stick even though the call fails.
        await ctx.uow.commit()
        raise InvalidGrantError(exc.description) from None
    await ctx.uow.commit()
    return _response(issued)


async def revoke(
    ctx: Context,
    form: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    repeated: Collection[str],
) -> None:
    """RFC 7009 token revocation (the client must authenticate; unknown tokens are fine);
    ``repeated`` as for :func:`token`."""
    _refuse_nul(form)
    _refuse_repeated(_REVOKE_PARAMETERS, repeated)
    platform = await authenticate_client(ctx, form, headers)
    value = form.get("token")
    if not value:
        raise InvalidRequestError("token is required.")
    async with ctx.uow.session() as session:
        await oauth_flow.revoke_token(session, ctx.clock, platform, value)
    await ctx.uow.commit()
