"""``/oauth/authorize``, the hosted consent page, ``/oauth/token`` and ``/oauth/revoke``.

The token and revocation endpoints answer RFC 6749 error JSON (``{"error", "error_description"}``)
with ``Cache-Control: no-store``, not the Cleavr error shape. Authorization errors go back to the
client's redirect URI only once the client and that URI are known to match; otherwise the user
sees an error page and is never redirected.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from debtgraph.resolvers import oauth
from debtgraph.resolvers.errors import Throttled
from debtgraph.rest_compat import hosted_pages
from debtgraph.rest_compat.common import JSONResponse, context

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_REQUEST_PURPOSE = "oauth-authorize"
_CSRF_PURPOSE = "oauth-consent"
# The consent page must be submitted within this time after /oauth/authorize.
CONSENT_MAX_AGE = 30 * 60
SCOPE_LABELS = {
    "users:read": "See your account and onboarding status",
    "users:write": "Manage your account",
    "receivables:read": "See your receivables and their recovery",
    "receivables:write": "Submit receivables and act on them",
    "webhooks:read": "See webhook endpoints",
    "webhooks:write": "Manage webhook endpoints",
    "reports:read": "See recovery statistics",
}


def with_params(uri: str, params: dict[str, str | None]) -> str:
    """``uri`` with extra query parameters (keeping the ones it already has)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error_page(message: str, status_code: int = 400) -> Response:
    return hosted_pages.message_page("Authorization failed", message, status_code)


async def authorize(request: Request) -> Response:
    """Validate the request, then send the browser to the hosted consent page."""
    ctx = context(request)
    try:
        query = request.query_params
        repeated = {name for name in query if len(query.getlist(name)) > 1}
        validated = await oauth.validate_authorization(ctx, dict(query), repeated=repeated)
    except oauth.AuthorizeFailure as exc:
        return _error_page(exc.message)
    except oauth.AuthorizeRedirect as exc:
        return RedirectResponse(
            with_params(
                exc.redirect_uri,
                {"error": exc.error, "error_description": exc.description, "state": exc.state},
            ),
            status_code=302,
        )
    signed = hosted_pages.sign(
        ctx.settings.secret_key,
        _REQUEST_PURPOSE,
        validated.as_dict(),
        now=ctx.clock.now().timestamp(),
    )
    location = f"{ctx.public_base_url}/oauth/consent?{urlencode({'request': signed})}"
    return RedirectResponse(location, status_code=302)


async def _request_of(request: Request, signed: str) -> oauth.AuthorizationRequest | None:
    ctx = context(request)
    payload = hosted_pages.unsign(
        ctx.settings.secret_key,
        _REQUEST_PURPOSE,
        signed,
        max_age=CONSENT_MAX_AGE,
        now=ctx.clock.now().timestamp(),
    )
    if payload is None:
        return None
    # Re-validate against the client as it is now (its redirect URIs may have changed).
    params = {
        "client_id": payload.get("client_id"),
        "redirect_uri": payload.get("redirect_uri"),
        "response_type": "code",
        "scope": " ".join(payload.get("scope") or []),
        "state": payload.get("state"),
        "code_challenge": payload.get("code_challenge"),
        "code_challenge_method": payload.get("code_challenge_method"),
    }
    try:
        # Values of a request this server signed: one each.
        return await oauth.validate_authorization(ctx, params, repeated=())
    except (oauth.AuthorizeFailure, oauth.AuthorizeRedirect):
        return None


def _consent_page(
    request: Request,
    validated: oauth.AuthorizationRequest,
    signed: str,
    *,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = context(request)
    nonce, fresh = hosted_pages.csrf_nonce(request)
    scopes = "".join(
        f"<li>{hosted_pages.escape(SCOPE_LABELS.get(s, s))} (<code>{hosted_pages.escape(s)}</code>)"
        "</li>"
        for s in validated.scopes
    )
    errors = f'<div class="errors">{hosted_pages.escape(error)}</div>' if error else ""
    return hosted_pages.render(
        "consent.html",
        f"Connect {validated.platform_name}",
        status_code=status_code,
        raw={"scopes": scopes, "errors": errors},
        cookie_nonce=nonce if fresh else None,
        secure_cookie=ctx.public_base_url.startswith("https://"),
        redirects_to=validated.redirect_uri,
        platform=validated.platform_name,
        request=signed,
        email=email,
        csrf_token=hosted_pages.csrf_token(ctx.settings.secret_key, _CSRF_PURPOSE, nonce, signed),
    )


_EXPIRED = "This authorization request is invalid or has expired. Start again from the application."


async def consent_page(request: Request) -> Response:
    """The hosted sign-in and consent form."""
    signed = request.query_params.get("request", "")
    validated = await _request_of(request, signed)
    if validated is None:
        return _error_page(_EXPIRED)
    return _consent_page(request, validated, signed)


async def consent_submit(request: Request) -> Response:
    """Approve (after sign-in) or deny, then go back to the client with a code or an error."""
    ctx = context(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    signed = values.get("request", "")
    if not hosted_pages.csrf_valid(
        request, ctx.settings.secret_key, _CSRF_PURPOSE, signed, values.get("csrf_token", "")
    ):
        return _error_page("This form has expired. Reload the page and try again.", 403)
    validated = await _request_of(request, signed)
    if validated is None:
        return _error_page(_EXPIRED)
    if values.get("decision") != "approve":
        return RedirectResponse(
            with_params(
                validated.redirect_uri, {"error": "access_denied", "state": validated.state}
            ),
            status_code=302,
        )
    email = values.get("email", "")
    try:
        code = await oauth.approve(ctx, validated, email, values.get("password", ""))
    except oauth.BadCredentials as exc:
        return _consent_page(
            request, validated, signed, email=email, error=exc.message, status_code=401
        )
    except Throttled as exc:
        refused = _consent_page(
            request, validated, signed, email=email, error=exc.message, status_code=429
        )
        # As every other 429 of the service: when to try again, for a client reading headers.
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except oauth.AuthorizeFailure as exc:
        return _error_page(exc.message)
    return RedirectResponse(
        with_params(validated.redirect_uri, {"code": code, "state": validated.state}),
        status_code=302,
    )


def _oauth_error(exc: oauth.OAuth2Error) -> Response:
    body: dict[str, Any] = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = dict(_NO_STORE)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="debtgraph"'
    return JSONResponse(body, status_code=exc.status_code or 400, headers=headers)


def _repeated(form: Any) -> set[str]:
    """The names a form gives more than once."""
    counted = Counter(name for name, _value in form.multi_items())
    return {name for name, times in counted.items() if times > 1}


async def token(request: Request) -> Response:
    """Exchange a code or a refresh token for a TokenResponse."""
    ctx = context(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        body = await oauth.token(ctx, values, request.headers, repeated=_repeated(form))
    except oauth.OAuth2Error as exc:
        return _oauth_error(exc)
    return JSONResponse(body, headers=_NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009: revoke a token; 200 even when the token is unknown."""
    ctx = context(request)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        await oauth.revoke(ctx, values, request.headers, repeated=_repeated(form))
    except oauth.OAuth2Error as exc:
        return _oauth_error(exc)
    return JSONResponse({}, headers=_NO_STORE)


routes = [
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/consent", consent_page, methods=["GET"]),
    Route("/oauth/consent", consent_submit, methods=["POST"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
]
