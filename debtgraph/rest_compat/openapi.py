"""``GET /openapi.json``: the Cleavr seed (kept verbatim) merged with what this server adds;
``GET /docs``: an API reference page for it, its Swagger UI assets served from this server.

``openapi/cleavr.yaml`` is a copy of the seed and must not be edited (a test compares it with
the shared seed); additions live in ``openapi/extensions.yaml``.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from debtgraph.rest_compat.common import JSONResponse

_DIR = Path(__file__).with_name("openapi")
# Swagger UI's distribution files, as the swagger-ui-py package ships them.
_SWAGGER_UI = Path(str(files("swagger_ui").joinpath("static")))
_DESCRIPTION = """\
Professional debt recovery API for platforms.

This server serves the Cleavr Connect contract (`/oauth/*`, `/v1/*`) and the Tether operator
API (`/api/*`, a token from `POST /api/login`); the same data is a GraphQL graph at `/graphql`.
Its base URL is the server this document came from (`servers`).
"""


def _load(name: str) -> dict[str, Any]:
    # YAML keys such as response codes (200) load as ints; JSON wants strings.
    return _stringify(yaml.safe_load((_DIR / name).read_text(encoding="utf-8")))


def _stringify(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def seed_document() -> dict[str, Any]:
    """The Cleavr seed as shipped in the package."""
    return _load("cleavr.yaml")


@cache
def document() -> dict[str, Any]:
    """The served document: the seed plus the extensions (paths, tags, components)."""
    doc = copy.deepcopy(seed_document())
    # The seed names Cleavr's own hosts (and logo); a client reading this document must call
    # this server instead, so servers are set per request and the description says so.
    doc["info"]["description"] = _DESCRIPTION
    doc["info"].pop("x-logo", None)
    doc.pop("servers", None)
    extra = _load("extensions.yaml")
    doc["tags"] = [*doc.get("tags", []), *extra.get("tags", [])]
    for path, operations in extra.get("paths", {}).items():
        doc["paths"].setdefault(path, {}).update(operations)
    components = doc.setdefault("components", {})
    for section, entries in extra.get("components", {}).items():
        components.setdefault(section, {}).update(entries)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method in _METHODS:
                _add_error_responses(path, method, operation)
    return doc


_METHODS = {"get", "post", "put", "patch", "delete"}
_WRITES = {"post", "put", "patch", "delete"}
_CLEAVR_ERROR = {"$ref": "#/components/responses/CleavrError"}
_TETHER_ERROR = {"$ref": "#/components/responses/TetherError"}


def _add_error_responses(path: str, method: str, operation: dict[str, Any]) -> None:
    # The seed documents only successes; a client (or a schema-driven fuzzer) must also know
    # which error statuses exist. They are added next to what the seed says, never over it.
    responses = operation.setdefault("responses", {})
    secured = operation.get("security") != []
    codes: dict[str, Any] = {}
    if path.startswith("/v1/"):
        # 400: invalid input, malformed JSON, an unknown Cleavr-Version or Idempotency-Key;
        # 403 only for a creditor token without the scope; anything out of reach is 404;
        # 409: idempotency conflicts and transitions the object's state does not allow.
        codes = {"400": _CLEAVR_ERROR, "404": _CLEAVR_ERROR}
        if secured:
            codes |= {"401": _CLEAVR_ERROR, "403": _CLEAVR_ERROR}
        if method in _WRITES:
            codes["409"] = _CLEAVR_ERROR
    elif path in ("/oauth/token", "/oauth/revoke"):
        codes = {"400": {"$ref": "#/components/responses/OAuthError"}}
        codes["401"] = {"$ref": "#/components/responses/OAuthError"}
    elif path == "/oauth/authorize":
        codes = {"400": {"description": "HTML page: unknown client_id or redirect_uri"}}
    elif path.startswith("/api/") and secured:
        operation.setdefault("security", [{"operatorToken": []}])
        codes = {"401": _TETHER_ERROR, "404": _TETHER_ERROR}
        if operation.get("parameters") or operation.get("requestBody") or method in _WRITES:
            codes["422"] = {"$ref": "#/components/responses/TetherValidationError"}
        if method in _WRITES:
            # A write the object's state refuses (a debtor in collection): listed on every
            # write, as a client must expect it of any.
            codes["409"] = _TETHER_ERROR
    for code, response in codes.items():
        responses.setdefault(code, response)


def base_url(request: Request) -> str:
    """This server's public base URL: ``PUBLIC_BASE_URL`` when set, else the request's own."""
    # Behind a proxy, uvicorn's proxy headers make the request's URL the one the client used.
    return request.state.ctx.public_base_url or str(request.base_url).rstrip("/")


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document of the REST faces, pointing at this server."""
    servers = [{"url": base_url(request), "description": "This server"}]
    return JSONResponse({**document(), "servers": servers})


@cache
def _docs_html() -> str:
    return _DIR.joinpath("docs.html").read_text(encoding="utf-8")


# The reference page takes a token the reader types: another site must not frame it and
# overlay its inputs (clickjacking), and its own files are no other type than they say.
_DOCS_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


async def docs_page(request: Request) -> Response:
    """An API reference page (Swagger UI) for ``/openapi.json``."""
    return HTMLResponse(_docs_html(), headers=_DOCS_HEADERS)


async def docs_script(request: Request) -> Response:
    """The page's own script (a file rather than inline, so a strict CSP can allow it)."""
    return FileResponse(_DIR / "docs.js", media_type="text/javascript")


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
    Route("/docs/docs.js", docs_script, methods=["GET"]),
    Mount("/docs/assets", StaticFiles(directory=_SWAGGER_UI), name="docs_assets"),
]
