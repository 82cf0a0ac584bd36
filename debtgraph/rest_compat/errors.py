"""Every failure rendered in its family's documented shape, never with a stack trace.

Tether (``/api/*``): ``{"message", "status"}``, and 422 ``{"message", "errors": {field: [..]}}``.
Cleavr (``/v1/*``, ``/oauth/*``): ``{"error": {"code", "message"}}``, validation adds ``field`` and
``details``.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from debtgraph.domain.core.database import UNAVAILABLE_MESSAGE, is_unavailable
from debtgraph.resolvers.errors import (
    Conflict,
    DomainValidationError,
    ExpectedError,
    InvalidTransition,
    MissingScope,
    NotFound,
    Throttled,
    Unauthenticated,
)
from debtgraph.rest_compat.common import Family, JSONResponse, family_of

log = logging.getLogger("debtgraph.rest")

CLEAVR_UNAUTHENTICATED = "Missing or invalid credentials."
# RFC 6750 §3: a bearer-protected resource answers its 401 and 403 with the challenge, so that an
# OAuth client library knows which scheme (and, for a 403, which scope) the request lacked.
BEARER_CHALLENGE = 'Bearer realm="debtgraph"'


def insufficient_scope_challenge(scope: str) -> str:
    """The challenge of a token that lacks ``scope`` (RFC 6750 §3.1)."""
    return f'{BEARER_CHALLENGE}, error="insufficient_scope", scope="{scope}"'


def tether_message(errors: dict[str, list[str]]) -> str:
    """Laravel's summary: the first message, and how many more there are."""
    messages = [m for msgs in errors.values() for m in msgs]
    if not messages:
        return "The given data was invalid."
    extra = len(messages) - 1
    if extra == 0:
        return messages[0]
    return f"{messages[0]} (and {extra} more error{'s' if extra > 1 else ''})"


def tether_status(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"message", "status"}``."""
    return JSONResponse({"message": message, "status": status}, status_code=status, headers=headers)


def cleavr_error(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    details: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``{"error": {"code", "message", …}}``."""
    error: dict[str, object] = {"code": code, "message": message}
    # The seed types ``field`` as a string: an error about no field leaves it out, never null.
    if field is not None:
        error["field"] = field
    if field is not None or details is not None:
        error["details"] = details or {}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def render_use_case_error(family: Family, exc: Exception) -> Response:
    """The response for an expected failure of a use case."""
    if family is Family.TETHER:
        return _tether(exc)
    return _cleavr(exc)


def _tether(exc: Exception) -> Response:
    if isinstance(exc, DomainValidationError):
        errors: dict[str, list[str]] = defaultdict(list)
        for e in exc.errors:
            errors[e.field or "body"].append(e.message)
        return JSONResponse(
            {"message": tether_message(errors), "errors": dict(errors)}, status_code=422
        )
    if isinstance(exc, Unauthenticated):
        return tether_status(401, "Unauthenticated.")
    if isinstance(exc, NotFound):
        return tether_status(404, exc.message)
    if isinstance(exc, Throttled):
        return tether_status(429, exc.message, {"Retry-After": str(exc.retry_after)})
    if isinstance(exc, MissingScope):
        return tether_status(403, exc.message)
    if isinstance(exc, InvalidTransition):
        return tether_status(409, exc.message)
    if isinstance(exc, Conflict):
        return tether_status(422 if exc.code == "unprocessable" else 409, exc.message)
    raise exc


def _detail(error: dict[str, str]) -> dict[str, str]:
    """One error of ``details.errors``; like the top level, one about no field omits ``field``."""
    if not error.get("field"):
        error.pop("field", None)
    return error


def _cleavr(exc: Exception) -> Response:
    if isinstance(exc, DomainValidationError):
        first = exc.first
        return cleavr_error(
            400,
            first.code,
            first.message,
            field=first.field or None,
            details={"errors": [_detail(e.as_dict()) for e in exc.errors]},
        )
    if isinstance(exc, Unauthenticated):
        return cleavr_error(
            401,
            "unauthenticated",
            CLEAVR_UNAUTHENTICATED,
            headers={"WWW-Authenticate": BEARER_CHALLENGE},
        )
    if isinstance(exc, NotFound):
        return cleavr_error(404, "not_found", exc.message)
    if isinstance(exc, MissingScope):
        return cleavr_error(
            403,
            "insufficient_scope",
            exc.message,
            headers={"WWW-Authenticate": insufficient_scope_challenge(exc.scope)},
        )
    if isinstance(exc, Throttled):
        return cleavr_error(
            429, "rate_limited", exc.message, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, ExpectedError):
        # Any other refusal (a transition, a conflict): the state does not allow it.
        return cleavr_error(409, exc.code, exc.message)
    raise exc


async def handle_use_case_error(request: Request, exc: Exception) -> Response:
    """Starlette handler for expected failures raised by route functions."""
    return render_use_case_error(family_of(request.url.path), exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Unknown paths (404) and wrong methods (405) in the family's shape."""
    assert isinstance(exc, HTTPException)
    family = family_of(request.url.path)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 405:
        allowed = _allowed_methods(request) or headers.get("Allow", "")
        headers["Allow"] = allowed
        message = (
            f"The {request.method} method is not supported for this route. "
            f"Supported methods: {allowed}."
        )
        if family is Family.TETHER:
            return tether_status(405, message, headers)
        return cleavr_error(405, "method_not_allowed", message, headers=headers)
    if status == 404:
        if family is Family.TETHER:
            return tether_status(404, "Not Found")
        return cleavr_error(404, "not_found", "The requested resource does not exist.")
    if family is Family.TETHER:
        return tether_status(status, str(exc.detail), headers)
    return cleavr_error(status, "http_error", str(exc.detail), headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method any route serves at this path: Starlette names only the first route's."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE and isinstance(getattr(route, "methods", None), set):
            methods |= route.methods
    return ", ".join(sorted(methods))


# How long a client is asked to wait when the database cannot serve (seconds): the pool timeout
# already made it wait, so a short pause before the retry is enough.
UNAVAILABLE_RETRY_AFTER = "1"


async def handle_server_error(request: Request, exc: Exception) -> Response:
    """500 without a stack trace; the trace goes to the log with the request id.

    A database that cannot serve now (a full pool, a locked SQLite file, a lost server) answers
    503 with ``Retry-After`` instead: the request was fine and a retry will likely succeed.
    """
    if is_unavailable(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        headers = {"Retry-After": UNAVAILABLE_RETRY_AFTER}
        if family_of(request.url.path) is Family.TETHER:
            return tether_status(503, "Service Unavailable", headers)
        return cleavr_error(
            503,
            "service_unavailable",
            UNAVAILABLE_MESSAGE,
            headers=headers,
        )
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if family_of(request.url.path) is Family.TETHER:
        return tether_status(500, "Server Error")
    return cleavr_error(500, "internal_error", "An unexpected error occurred.")
