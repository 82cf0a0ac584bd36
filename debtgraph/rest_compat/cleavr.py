"""What every ``/v1/*`` route shares: the ``Cleavr-Version`` header and ``Idempotency-Key`` on POST.

Wrap an endpoint with :func:`endpoint` (GET, PATCH, DELETE) or :func:`endpoint` with
``idempotent=True`` (every POST). The wrapper checks the version header, then for POSTs replays or
refuses per Stripe's idempotency semantics, and stores the response it rendered.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import overload

import orjson
from python_multipart.multipart import parse_options_header
from starlette.requests import Request
from starlette.responses import Response

from debtgraph.resolvers import idempotency
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import ExpectedError
from debtgraph.rest_compat.common import Family, JSONResponse, context
from debtgraph.rest_compat.errors import cleavr_error, render_use_case_error

Endpoint = Callable[[Request], Awaitable[Response]]

# The versions this server speaks; the seed documents 2026-01-02.
SUPPORTED_VERSIONS = frozenset({"2026-01-02"})
CURRENT_VERSION = "2026-01-02"
VERSION_HEADER = "Cleavr-Version"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def version_error(request: Request) -> Response | None:
    """A 400 ``invalid_version`` when the request names a version this server does not speak."""
    version = request.headers.get(VERSION_HEADER)
    if version is None or version.strip() in SUPPORTED_VERSIONS:
        return None
    return cleavr_error(
        400,
        "invalid_version",
        f"Unknown {VERSION_HEADER} {version.strip()!r}; supported: "
        f"{', '.join(sorted(SUPPORTED_VERSIONS))}.",
    )


def _with_version(response: Response) -> Response:
    response.headers[VERSION_HEADER] = CURRENT_VERSION
    return response


async def _render(fn: Endpoint, request: Request) -> Response:
    try:
        return await fn(request)
    except ExpectedError as exc:
        return render_use_case_error(Family.CLEAVR, exc)


@overload
def endpoint(fn: Endpoint, *, idempotent: bool = False) -> Endpoint: ...


@overload
def endpoint(fn: None = None, *, idempotent: bool = False) -> Callable[[Endpoint], Endpoint]: ...


def endpoint(
    fn: Endpoint | None = None, *, idempotent: bool = False
) -> Endpoint | Callable[[Endpoint], Endpoint]:
    """Decorate a ``/v1`` endpoint with the version check (and idempotency for POSTs)."""

    def decorate(inner: Endpoint) -> Endpoint:
        @functools.wraps(inner)
        async def wrapped(request: Request) -> Response:
            refused = version_error(request)
            if refused is not None:
                return refused
            key = request.headers.get(IDEMPOTENCY_HEADER)
            ctx = context(request)
            if not idempotent or key is None or ctx.principal is None:
                return _with_version(await _render(inner, request))
            body = await request.body()
            claim = await idempotency.claim(
                ctx, key, request.method, request.url.path, body, _multipart_boundary(request)
            )  # raises when the key is reused or in flight
            if claim.replay is not None:
                try:
                    await idempotency.check_replay(ctx, claim.replay)
                except ExpectedError as exc:
                    return _with_version(render_use_case_error(Family.CLEAVR, exc))
                finally:
                    await ctx.uow.close()
                replayed = _replay(claim.replay)
                replayed.headers["Idempotent-Replayed"] = "true"
                return _with_version(replayed)
            try:
                response = await _render(inner, request)
            except BaseException:
                await ctx.uow.close()
                await idempotency.release(ctx, claim)
                raise
            # The request's work is done (committed or not): give its connection back before the
            # key's own short transaction takes one, so a request never holds two at once.
            await ctx.uow.close()
            await _store(ctx, claim, response)
            return _with_version(response)

        return wrapped

    if fn is not None:
        return decorate(fn)
    return decorate


def _replay(stored: idempotency.StoredResponse) -> Response:
    """The stored answer as it was sent: its JSON text, or (keys stored before that text was)
    the object it decoded to, encoded again."""
    if isinstance(stored.body, str):
        return Response(stored.body, stored.status_code, media_type="application/json")
    return JSONResponse(stored.body, status_code=stored.status_code)


def _multipart_boundary(request: Request) -> str | None:
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary") if media_type == b"multipart/form-data" else None
    return boundary.decode("latin-1") if boundary else None


async def _store(ctx: object, claim: idempotency.Claim, response: Response) -> None:
    assert isinstance(ctx, Context)
    if response.status_code >= 500 or response.status_code in (401, 403):
        # A server failure is not a result: let the client retry with the same key. Nor is a
        # refusal of the caller before anything ran (its credentials or scopes): kept, it was
        # the answer for 24 hours to the same caller's retry with a token that holds the scope.
        await idempotency.release(ctx, claim)
        return
    raw = bytes(response.body) if response.body else b""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = None  # no JSON answer to replay (an empty body among them)
    else:
        # The text as sent, replayed byte for byte (see IdempotencyKey.response_body).
        text = raw.decode()
    await idempotency.store(ctx, claim, response.status_code, text)
