"""Server-rendered pages (OAuth consent, onboarding): templates, CSRF tokens and signed values.

CSRF protection is a signed double submit: the browser holds a random nonce in an HttpOnly,
SameSite=Lax cookie, and every form carries HMAC-SHA256(SECRET_KEY, purpose | nonce | binding),
where the binding is what the form acts on (the onboarding token, the authorization request).
A forged cross-site POST has neither the cookie's value nor the key to compute the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from functools import cache
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse
from starlette.types import Scope

CSRF_COOKIE = "dg_csrf"
_TEMPLATES = Path(__file__).with_name("templates")
# Pages that show credentials forms must never be framed or cached.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action {}; frame-ancestors 'none'"
# What may stand in a CSP source expression: anything else (";", ",", spaces, quotes) would
# end the directive or the policy.
_CSP_SOURCE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(//[A-Za-z0-9.\-\[\]:]+)?")


class FormTooLarge(Exception):
    """A hosted form's body is over its limit: raised from ``receive`` while the form is read.

    The page knows its caller by then, so it answers with its own form and the field at fault
    rather than a bare 413. Not a ValueError: form parsers turn those into "unparseable".
    """


@cache
def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))


def escape(value: Any) -> str:
    """HTML-escape a value (quotes too: values go into attributes), a NUL as U+FFFD: a form
    refused for holding one echoed it back into the page, where HTML allows none."""
    text = html.escape("" if value is None else str(value), quote=True)
    return text.replace("\x00", "\ufffd")


def base_url_of(scope: Scope) -> str:
    """``scheme://host[:port]`` (plus any root path) the request came to, for absolute links.

    uvicorn's ProxyHeadersMiddleware has already put a trusted proxy's X-Forwarded-Proto into
    the scope (and ignored it from anyone else); the host is the request's Host header.
    """
    base = str(HTTPConnection(scope).base_url).rstrip("/")
    # A GraphQL mutation may come over a WebSocket: its links are still for browsers.
    if base.startswith(("ws://", "wss://")):
        base = "http" + base[2:]
    return base


def redirect_source(uri: str) -> str | None:
    """The CSP source expression that lets a form's redirect reach ``uri`` (its origin)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        source = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    else:
        # A native app's private-use scheme (RFC 8252 §7.1): allow the scheme itself.
        source = f"{parts.scheme}:"
    return source if _CSP_SOURCE.fullmatch(source) else None


def render(
    name: str,
    title: str,
    *,
    status_code: int = 200,
    raw: dict[str, str] | None = None,
    cookie_nonce: str | None = None,
    secure_cookie: bool = False,
    redirects_to: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """Render ``templates/<name>`` inside the layout; ``values`` are escaped, ``raw`` are not.

    ``redirects_to`` is where the page's form answers with a redirect: Chromium and Safari
    apply ``form-action`` to every redirect that follows a form post, so that origin must be
    allowed next to ``'self'`` or the browser stops on our 302.
    """
    body = _template(name).substitute({**{k: escape(v) for k, v in values.items()}, **(raw or {})})
    page = _template("layout.html").substitute(title=escape(title), body=body)
    sources = ["'self'"]
    extra = redirect_source(redirects_to) if redirects_to else None
    if extra is not None:
        sources.append(extra)
    headers = {**_PAGE_HEADERS, "Content-Security-Policy": _CSP.format(" ".join(sources))}
    response = HTMLResponse(page, status_code=status_code, headers=headers)
    if cookie_nonce is not None:
        response.set_cookie(
            CSRF_COOKIE,
            cookie_nonce,
            httponly=True,
            samesite="lax",
            secure=secure_cookie,
            path="/",
        )
    return response


def message_page(title: str, message: str, status_code: int = 200) -> HTMLResponse:
    """A page that only says something (errors, confirmations)."""
    return render("message.html", title, status_code=status_code, message=message)


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """The browser's CSRF nonce, and whether it is new (then it must be set as a cookie)."""
    existing = request.cookies.get(CSRF_COOKIE, "")
    if 16 <= len(existing) <= 128 and existing.isalnum():
        return existing, False
    return secrets.token_hex(16), True


def csrf_token(secret_key: str, purpose: str, nonce: str, binding: str) -> str:
    """The form token for one purpose, browser nonce and bound value."""
    message = f"{purpose}|{nonce}|{binding}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def csrf_valid(
    request: Request, secret_key: str, purpose: str, binding: str, submitted: str
) -> bool:
    """Whether a submitted form token matches the cookie's nonce and the bound value."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not submitted:
        return False
    expected = csrf_token(secret_key, purpose, nonce, binding)
    return hmac.compare_digest(expected.encode(), submitted.encode())


def sign(secret_key: str, purpose: str, payload: dict[str, Any], now: float | None = None) -> str:
    """``payload`` as a URL-safe string signed with HMAC-SHA256, stamped with the time."""
    body = orjson.dumps(
        {"p": purpose, "t": int(now if now is not None else time.time()), **payload}
    )
    encoded = base64.urlsafe_b64encode(body).decode().rstrip("=")
    mac = hmac.new(secret_key.encode(), encoded.encode(), hashlib.sha256).hexdigest()
    return f"{encoded}.{mac}"


def unsign(
    secret_key: str, purpose: str, value: str, *, max_age: int, now: float | None = None
) -> dict[str, Any] | None:
    """The payload of a value made by :func:`sign`, or None when forged, mixed up or too old."""
    encoded, _, mac = (value or "").partition(".")
    expected = hmac.new(secret_key.encode(), encoded.encode(), hashlib.sha256).hexdigest()
    if not encoded or not hmac.compare_digest(expected.encode(), mac.encode()):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or payload.get("p") != purpose:
        return None
    issued = payload.get("t")
    current = now if now is not None else time.time()
    if not isinstance(issued, int) or not 0 <= current - issued <= max_age:
        return None
    return payload
