"""The request path's limits, checked before a route reads anything (PRODUCT.md §12).

* NUL characters in the path or the query string are refused in the family's shape, naming the
  parameter: PostgreSQL text cannot hold them, and no route should have to check.
* A request that needs a caller (every write under ``/v1`` and ``/api`` but ``/api/login``, and a
  multipart upload to ``/graphql``) is refused before its body is read when it has none.
* Bodies are counted as they arrive, declared (``Content-Length``) or chunked: past
  ``MAX_BODY_KB`` (``MAX_UPLOAD_MB`` plus framing for an upload) the request is answered at once
  and the rest is never read, so neither memory nor temporary files grow beyond the limit.
* The hosted onboarding form (multipart, with the representative's identity document) has the
  document's limit plus framing. Past it the form's read fails with ``FormTooLarge`` before the
  first byte (declared) or at the chunk that crosses it, and the page answers with its own form;
  the page looks its link up before reading, as other writes have their caller first.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debtgraph.domain.core.errors import INVALID_CHARACTER, NUL_MESSAGE
from debtgraph.resolvers import creditors, extraction, uploads
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import FieldError, InputError, Unauthenticated
from debtgraph.rest_compat.common import Family, JSONResponse, family_of
from debtgraph.rest_compat.errors import cleavr_error, render_use_case_error, tether_status
from debtgraph.rest_compat.hosted_pages import FormTooLarge

GRAPHQL_PATH = "/graphql"
# Routes that take a multipart file upload (and so MAX_UPLOAD_MB rather than MAX_BODY_KB). An
# invoice for extraction is at most 10 MB (PRODUCT.md §4); its route checks the rest.
CSV_UPLOAD_ROUTES = frozenset(
    {
        ("POST", "/api/admin/uploads"),
        ("POST", GRAPHQL_PATH),
        # A bank's pain.002 status report: a file like a CSV upload, with its limit.
        ("POST", "/api/admin/billing/pain002"),
    }
)
# /api writes that take no operator token: login, and a gateway's signed callback (its
# signature is checked by the route, over the body it must read for that).
PUBLIC_API_WRITES = frozenset({"/api/login", "/api/billing/callback"})
INVOICE_ROUTE = ("POST", "/v1/receivables/ocr")
INVOICE_MAX_BYTES = extraction.pdf.MAX_BYTES
# The hosted onboarding form, /onboarding/{token}: it may carry an identity document.
ONBOARDING_PREFIX = "/onboarding/"
# Methods that carry no body by convention: never refused for want of a caller here, so that
# an anonymous GET still gets its route's own answer (404, 401, a public page).
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


# What a body is, for its limit and its refusal: a JSON (or form) body, a CSV or an invoice file,
# or the hosted onboarding form with its identity document.
BodyKind = Literal["body", "csv", "invoice", "onboarding"]


class BodyTooLarge(Exception):
    """The client sent more than the limit; raised from ``receive`` to stop the route reading.

    Not a ValueError: Strawberry turns those into "unable to parse" while reading a form.
    """


def graphql_error(status: int, message: str, code: str, **extensions: Any) -> Response:
    """A GraphQL-over-HTTP error body refused before execution."""
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return JSONResponse({"data": None, "errors": [error]}, status_code=status)


def _is_multipart(headers: Headers) -> bool:
    return headers.get("content-type", "").lower().lstrip().startswith("multipart/form-data")


class RequestGuard:
    """Refuses what the request line and headers already show is unacceptable, and caps bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: Context = scope["state"]["ctx"]
        headers = Headers(scope=scope)
        refusal = _nul_refusal(scope) or _caller_refusal(scope, ctx, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit, kind = _limit(scope, ctx, headers)
        # The hosted page renders its own refusal: its form's read fails instead of the request.
        overflow: type[Exception] = FormTooLarge if kind == "onboarding" else BodyTooLarge
        declared = headers.get("content-length", "").strip()
        over = declared.isascii() and declared.isdigit() and int(declared) > limit
        if over and kind != "onboarding":
            await _too_large(scope, ctx, kind)(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            if over:
                raise overflow()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise overflow()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (BodyTooLarge, FormTooLarge):
            if started:
                raise
            await _too_large(scope, ctx, kind)(scope, receive, send)


def _limit(scope: Scope, ctx: Context, headers: Headers) -> tuple[int, BodyKind]:
    """The body limit of this request in bytes, and what kind of body it is."""
    route = (scope["method"], scope["path"])
    if _is_multipart(headers):
        if route == ("POST", GRAPHQL_PATH) and not (ctx.principal and ctx.principal.is_operator):
            # Only operators upload CSV files; anyone else may only send an invoice to extract.
            return INVOICE_MAX_BYTES + extraction.MULTIPART_OVERHEAD, "invoice"
        if route in CSV_UPLOAD_ROUTES:
            return uploads.request_limit(ctx), "csv"
        if route == INVOICE_ROUTE:
            return INVOICE_MAX_BYTES + extraction.MULTIPART_OVERHEAD, "invoice"
        path = scope["path"]
        if scope["method"] == "POST" and _is_onboarding_path(path):
            return creditors.onboarding_request_limit(ctx), "onboarding"
    return ctx.settings.max_body_bytes, "body"


def _is_onboarding_path(path: str) -> bool:
    token = path.removeprefix(ONBOARDING_PREFIX)
    return token != path and bool(token) and "/" not in token


def _family_response(scope: Scope, exc: Exception, graphql: Response) -> Response:
    if scope["path"] == GRAPHQL_PATH:
        return graphql
    return render_use_case_error(family_of(scope["path"]), exc)


def _nul_refusal(scope: Scope) -> Response | None:
    """400/422 naming the path or query parameter that holds U+0000."""
    field: str | None = None
    if "\x00" in scope["path"]:
        field = _path_parameter_with_nul(scope) or "path"
    else:
        query = scope.get("query_string", b"").decode("latin-1")
        if "%00" in query or "\x00" in query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                if "\x00" in key or "\x00" in value:
                    field = key.replace("\x00", "") or "query"
                    break
    if field is None:
        return None
    exc = InputError([FieldError(field, INVALID_CHARACTER, NUL_MESSAGE)])
    return _family_response(
        scope, exc, graphql_error(400, NUL_MESSAGE, "BAD_USER_INPUT", field=field)
    )


def _path_parameter_with_nul(scope: Scope) -> str | None:
    """The name of the route's path parameter holding U+0000, when a route matches the path."""
    router = getattr(scope.get("app"), "router", None)
    for route in getattr(router, "routes", ()):
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        for name, value in child.get("path_params", {}).items():
            if "\x00" in str(value):
                return str(name)
    return None


def _caller_refusal(scope: Scope, ctx: Context, headers: Headers) -> Response | None:
    """The family's 401 for a write that needs a caller, before anything of its body is read."""
    method, path = scope["method"], scope["path"]
    if method in _BODILESS:
        return None
    principal = ctx.principal
    if path == GRAPHQL_PATH:
        # Every file mutation needs a caller (operators upload CSV files, platforms and
        # creditors send invoices to extract); which caller may use which is the resolver's.
        if not _is_multipart(headers) or principal is not None:
            return None
        return graphql_error(401, "Unauthenticated.", "UNAUTHENTICATED")
    if path == "/v1" or path.startswith("/v1/"):
        refused = principal is None
    elif path.startswith("/api/") and path not in PUBLIC_API_WRITES:
        # Every /api route but login is an operator's (rest_compat.common.operator_context).
        refused = principal is None or not principal.is_operator
    else:
        return None
    return render_use_case_error(family_of(path), Unauthenticated()) if refused else None


def _too_large(scope: Scope, ctx: Context, kind: BodyKind) -> Response:
    path = scope["path"]
    if kind == "onboarding":
        # Only when the page did not answer itself (it catches FormTooLarge while reading).
        first = creditors.identity_document_too_large(ctx).first
        return cleavr_error(413, "payload_too_large", first.message)
    if kind != "body":
        # A file's own refusal, as its route documents it: Tether's 422 on `file` for a CSV,
        # PRODUCT.md §4's 400 `file_too_large` for an invoice, whatever the framing.
        error = uploads.too_large(ctx) if kind == "csv" else extraction.too_large()
        first = error.first
        graphql = graphql_error(413, first.message, "PAYLOAD_TOO_LARGE", field=first.field)
        return _family_response(scope, error, graphql)
    message = f"The request body is larger than the {ctx.settings.max_body_kb} KB limit."
    if path == GRAPHQL_PATH:
        return graphql_error(413, message, "PAYLOAD_TOO_LARGE")
    if family_of(path) is Family.TETHER:
        return tether_status(413, message)
    return cleavr_error(413, "payload_too_large", message)
