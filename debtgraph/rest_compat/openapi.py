"""``GET /openapi.json``: the Cleavr seed (kept verbatim) merged with what this server adds.

``openapi/cleavr.yaml`` is a copy of the seed and must not be edited (a test compares it with
the shared seed); additions live in ``openapi/extensions.yaml``.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.rest_compat.common import JSONResponse

_DIR = Path(__file__).with_name("openapi")


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
    for code, response in codes.items():
        responses.setdefault(code, response)


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document of the REST faces."""
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
