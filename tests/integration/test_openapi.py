"""``/openapi.json`` serves every seed path, method and response schema, and the app routes them."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import yaml
from starlette.routing import Match

from debtgraph.rest_compat.openapi import seed_document
from debtgraph.server.app import create_app
from debtgraph.settings import Settings

SHARED_SEED = (
    Path(__file__).resolve().parents[2].parent / "shared/seeds/cleavr-connect-openapi.yaml"
)
PACKAGED_SEED = Path(__file__).resolve().parents[2] / "debtgraph/rest_compat/openapi/cleavr.yaml"
METHODS = {"get", "post", "put", "patch", "delete"}


def test_packaged_seed_is_the_shared_seed_verbatim() -> None:
    if SHARED_SEED.exists():
        assert PACKAGED_SEED.read_text() == SHARED_SEED.read_text()
    # Either way the packaged copy parses to the seed's paths.
    assert "/v1/receivables" in yaml.safe_load(PACKAGED_SEED.read_text())["paths"]


async def test_every_seed_path_method_and_response_schema_is_served(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    served = response.json()
    seed = seed_document()
    assert served["openapi"] == "3.0.0"
    assert served["info"]["version"] == "2026-01-02"
    for path, operations in seed["paths"].items():
        assert path in served["paths"], path
        for method, operation in operations.items():
            assert method in served["paths"][path], (path, method)
            mine = served["paths"][path][method]
            # What the seed documents is served as is; error statuses are only added.
            assert set(mine["responses"]) >= set(operation["responses"]), (path, method)
            for status, documented in operation["responses"].items():
                assert mine["responses"][status] == documented, (path, method, status)
            assert mine.get("requestBody") == operation.get("requestBody")
            # The seed's parameters as they are, first; a parameter this server adds after them
            # (the stats' currency) is an extension a seed client never sends.
            seeded = operation.get("parameters")
            served_parameters = mine.get("parameters")
            if seeded is None:
                assert served_parameters is None, (path, method)
            else:
                assert served_parameters[: len(seeded)] == seeded, (path, method)
    for name, schema in seed["components"]["schemas"].items():
        assert served["components"]["schemas"][name] == schema, name
    # Extensions: Tether paths, OAuth revocation, commission.
    for path in ("/oauth/revoke", "/v1/commission/calculate", "/api/admin/uploads"):
        assert path in served["paths"]


def _routed(app: Any, path: str, method: str) -> bool:
    concrete = path.replace("{id}", "x1").replace("{token}", "t1")
    scope = {"type": "http", "path": concrete, "method": method.upper(), "root_path": ""}
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)


async def test_every_documented_operation_is_routed(client: httpx.AsyncClient, app: Any) -> None:
    served = (await client.get("/openapi.json")).json()
    unrouted = {
        (path, method)
        for path, operations in served["paths"].items()
        for method in operations
        if method in METHODS and not _routed(app, path, method)
    }
    # Every documented path and method is served.
    assert not unrouted, unrouted


async def test_error_statuses_are_documented_beside_the_seed(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    paths = served["paths"]
    error = {"$ref": "#/components/responses/CleavrError"}
    users = paths["/v1/users/{id}"]["get"]["responses"]
    assert {k: users[k] for k in ("400", "401", "403", "404")} == dict.fromkeys(
        ("400", "401", "403", "404"), error
    )
    assert "409" not in users  # reads never conflict
    assert paths["/v1/receivables/{id}/cancel"]["post"]["responses"]["409"] == error
    assert set(paths["/oauth/token"]["post"]["responses"]) == {"200", "400", "401"}
    assert paths["/api/login"]["post"].get("security") == []
    dashboard = paths["/api/admin/dashboard"]["get"]
    assert dashboard["security"] == [{"operatorToken": []}]
    assert set(dashboard["responses"]) == {"200", "401", "404"}
    uploads = paths["/api/admin/uploads"]["get"]["responses"]
    assert uploads["422"] == {"$ref": "#/components/responses/TetherValidationError"}
    # An operator write its object's state refuses is a 409 (outside review: undocumented).
    tether_error = {"$ref": "#/components/responses/TetherError"}
    assert paths["/api/admin/debtors/{id}"]["put"]["responses"]["409"] == tether_error
    assert paths["/api/admin/debtors/{id}/validate"]["post"]["responses"]["409"] == tether_error
    assert "409" not in uploads  # reads never conflict
    for name in ("CleavrError", "OAuthError", "TetherError", "TetherValidationError"):
        assert name in served["components"]["responses"]


async def _served_by(settings: Settings, base_url: str, path: str) -> httpx.Response:
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
            return await c.get(path)
    finally:
        await app.state.runtime.services.engine.dispose()


async def test_servers_are_this_server_never_cleavrs_hosts(settings: Settings) -> None:
    # Without PUBLIC_BASE_URL: the URL the client called (uvicorn applies proxy headers to it).
    unset = replace(settings, public_base_url=Settings.public_base_url)
    served = await _served_by(unset, "http://api.example.test:8123", "/openapi.json")
    assert served.json()["servers"] == [
        {"url": "http://api.example.test:8123", "description": "This server"}
    ]
    # With PUBLIC_BASE_URL: the public URL, whatever host the request came in on.
    public = replace(settings, public_base_url="https://debts.example.com")
    served = await _served_by(public, "http://10.1.2.3:8000", "/openapi.json")
    assert served.json()["servers"] == [
        {"url": "https://debts.example.com", "description": "This server"}
    ]
    # Swagger UI or Postman must find no production host to call anywhere in it.
    assert "api.cleavr.fr" not in served.text
    assert "api-test.cleavr.fr" not in served.text
    assert "x-logo" not in served.json()["info"]


class _Assets(HTMLParser):
    """Every URL a page makes the browser load (scripts, styles, icons)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"] or "")
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")
        elif tag in ("img", "iframe") and values.get("src"):
            self.urls.append(values["src"] or "")


async def test_docs_page_loads_everything_from_this_server(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Not to be framed by another site (a token is typed into it), nor sniffed.
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    parser = _Assets()
    parser.feed(page.text)
    assert parser.inline_scripts == 0
    assert len(parser.urls) >= 3, parser.urls
    for url in parser.urls:
        absolute = urljoin(str(page.url), url)
        # Relative and same-origin: no CDN, no third-party host.
        assert urlsplit(absolute).netloc == "testserver", url
        asset = await client.get(absolute)
        assert asset.status_code == 200, url
        assert asset.content, url
    scripts = [u for u in parser.urls if u.endswith(".js")]
    assert any("swagger-ui-bundle.js" in u for u in scripts)
    own = (await client.get(urljoin(str(page.url), scripts[-1]))).text
    # The page reads this server's document and sends it to no online validator.
    assert '"openapi.json"' in own
    assert "validatorUrl: null" in own
    assert "://" not in own
