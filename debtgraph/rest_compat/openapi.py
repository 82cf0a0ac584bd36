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
    return doc


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document of the REST faces."""
    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
