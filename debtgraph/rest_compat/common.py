"""Shared REST plumbing: orjson responses, the request's Context, JSON bodies, error families."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from debtgraph.domain.core.base import json_amount
from debtgraph.domain.core.errors import INVALID_CHARACTER, NUL_MESSAGE, nul_path
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import FieldError, InputError
from debtgraph.resolvers.json_limits import MAX_JSON_DEPTH, json_depth_exceeds
from debtgraph.resolvers.permissions import require_operator


class Family(enum.Enum):
    """The two legacy contracts, each with its own error shape."""

    TETHER = "tether"  # /api/*
    CLEAVR = "cleavr"  # /v1/* and /oauth/*


def family_of(path: str) -> Family:
    """Which contract a path belongs to."""
    return Family.TETHER if path.startswith("/api") else Family.CLEAVR


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Money is exact until here; JSON numbers are what the seeds show.
        return json_amount(value)
    if isinstance(value, datetime | date):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def iso(value: datetime | date | None) -> str | None:
    """ISO 8601 as the seeds show it: UTC datetimes end in ``Z``, no microseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return value.isoformat()


class JSONResponse(Response):
    """A JSON response rendered by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise with Decimal and datetime support."""
        # orjson renders datetimes itself (never via ``default``): ask for the seeds' "…Z" form.
        try:
            return orjson.dumps(content, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # Some object has a key that is not a string (a count by number, say). Keys of every
            # type are orjson's slow path, which more than doubles a list page's rendering:
            # taken only for the bodies that need it, which otherwise render the same.
            return orjson.dumps(
                content, default=_default, option=_OPTIONS | orjson.OPT_NON_STR_KEYS
            )


_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS


def context(request: Request) -> Context:
    """The Context the server built for this request."""
    ctx = request.scope.get("state", {}).get("ctx")
    if ctx is None:
        raise RuntimeError("no Context on the request: is the context middleware installed?")
    return ctx  # type: ignore[no-any-return]


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; malformed JSON or a non-object is an input error."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InputError(
            [FieldError("", "invalid_json", "The request body is not valid JSON.")]
        ) from None
    if not isinstance(body, dict):
        raise InputError(
            [FieldError("", "invalid_json", "The request body must be a JSON object.")]
        )
    if json_depth_exceeds(body, MAX_JSON_DEPTH):
        raise InputError(
            [
                FieldError(
                    "",
                    "invalid_json",
                    f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.",
                )
            ]
        )
    where = nul_path(body)
    if where is not None:
        # PostgreSQL text and JSONB cannot hold U+0000: refuse it up front on every backend.
        raise InputError([FieldError(where, INVALID_CHARACTER, NUL_MESSAGE)])
    return body


def operator_context(request: Request) -> Context:
    """The Context of an ``/api/*`` call, which only operator tokens may make (else 401)."""
    ctx = context(request)
    require_operator(ctx)
    return ctx
