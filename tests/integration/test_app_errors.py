"""Error shapes per family, request ids, health, CORS, production settings, GraphQL limits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from debtgraph.server.app import create_app
from debtgraph.settings import DEV_SECRET_KEY, ConfigError, Settings
from tests.conftest import gql
from tests.integration.test_graphql_limits import PRODUCTION
from tests.integration.test_request_path import post_scope


async def test_unknown_paths_and_methods_in_each_family(client: httpx.AsyncClient) -> None:
    tether_404 = await client.get("/api/admin/nowhere")
    assert tether_404.status_code == 404
    assert tether_404.json() == {"message": "Not Found", "status": 404}
    cleavr_404 = await client.get("/v1/nowhere")
    assert cleavr_404.status_code == 404
    assert cleavr_404.json()["error"]["code"] == "not_found"
    # A documented path with a trailing slash is no path of the seeds: its family's 404, not a
    # redirect built from the Host header the client sent (outside review).
    tether_slashed = await client.get("/api/admin/uploads/", headers={"Host": "evil.example"})
    cleavr_slashed = await client.get("/v1/users/", headers={"Host": "evil.example"})
    for slashed in (tether_slashed, cleavr_slashed):
        assert slashed.status_code == 404, slashed.headers
        assert "location" not in slashed.headers
    assert tether_slashed.json() == {"message": "Not Found", "status": 404}
    assert cleavr_slashed.json()["error"]["code"] == "not_found"
    tether_405 = await client.delete("/api/login")
    assert tether_405.status_code == 405
    assert tether_405.json() == {
        "message": "The DELETE method is not supported for this route. Supported methods: POST.",
        "status": 405,
    }
    assert tether_405.headers["allow"] == "POST"
    for method in ("PUT", "DELETE", "PATCH"):
        graphql_405 = await client.request(method, "/graphql")
        assert graphql_405.status_code == 405
        assert graphql_405.headers["allow"] == "GET, HEAD, POST"
        error = graphql_405.json()["errors"][0]
        assert graphql_405.json()["data"] is None
        assert error["extensions"] == {"code": "METHOD_NOT_ALLOWED"}
        assert error["message"].startswith(f"The {method} method is not supported at /graphql")


async def _raw_head(app: Any, path: str) -> list[dict[str, Any]]:
    """The ASGI messages the app sends for HEAD ``path`` (httpx drops a HEAD body itself)."""
    route, _, query = path.partition("?")
    scope = {**post_scope(route, [(b"accept", b"*/*")]), "method": "HEAD"}
    scope["query_string"] = query.encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_head_on_graphql_is_get_without_the_body(app: Any, client: httpx.AsyncClient) -> None:
    # RFC 9110: HEAD is GET without the body. Strawberry knows only GET and POST; it answered a
    # 405 that named no allowed method.
    for path in ("/graphql?query=%7B__typename%7D", "/graphql"):
        get, head = await client.get(path), await client.head(path)
        assert head.status_code == get.status_code == 200
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == get.headers["content-length"]
        sent = await _raw_head(app, path)
        assert b"".join(m.get("body", b"") for m in sent) == b""
        start = dict(sent[0]["headers"])
        assert int(start[b"content-length"]) == len(get.content) > 0
    assert get.headers["content-type"].startswith("text/html")  # GraphiQL, outside production
    # A GET that is refused is refused alike: a mutation is POST-only.
    mutation = "/graphql?query=mutation%7BlogOut%7D"
    assert (await client.head(mutation)).status_code == (await client.get(mutation)).status_code


@pytest.fixture
def boom_app(app: Any) -> Any:
    async def boom(request: Any) -> Any:
        raise RuntimeError("secret internals: password=hunter2")

    app.router.routes.extend([Route("/api/boom", boom), Route("/v1/boom", boom)])
    return app


async def test_500_has_no_stack_trace_and_keeps_the_request_id(
    boom_app: Any, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    tether = await client.get("/api/boom", headers={"X-Request-ID": "req-123"})
    assert tether.status_code == 500
    assert tether.json() == {"message": "Server Error", "status": 500}
    assert tether.headers["x-request-id"] == "req-123"
    cleavr = await client.get("/v1/boom")
    assert cleavr.status_code == 500
    assert cleavr.json() == {
        "error": {"code": "internal_error", "message": "An unexpected error occurred."}
    }
    assert "hunter2" not in tether.text + cleavr.text
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_request_id_is_generated_when_absent_or_unsafe(client: httpx.AsyncClient) -> None:
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert unsafe.headers["x-request-id"] != "bad id\nwith newline"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_production_refuses_the_development_secret_key() -> None:
    with pytest.raises(ConfigError):
        Settings(env="production").check()
    with pytest.raises(ConfigError):
        create_app(Settings(env="production", secret_key=DEV_SECRET_KEY))
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        Settings(env="production", secret_key="x" * 40).check()
    Settings(env="production", secret_key="x" * 40, public_base_url="https://api.example").check()
    Settings(env="development").check()


@pytest.mark.parametrize("secret", ["s3cret", "whsec_not base64!", "whsec_abc"])
def test_a_billing_callback_secret_must_be_a_standard_webhooks_secret(secret: str) -> None:
    # The gateway signs as Standard Webhooks does (the key is the base64 after whsec_): any
    # other secret could sign nothing a Standard Webhooks library computes.
    with pytest.raises(ConfigError, match="BILLING_CALLBACK_SECRET"):
        Settings(billing_callback_secret=secret).check()
    Settings(billing_callback_secret="whsec_" + "a" * 44).check()


def test_production_refuses_the_compiled_check() -> None:
    # It runs every query twice and keeps each difference: a test setting only.
    production = Settings(
        env="production", secret_key="x" * 40, public_base_url="https://a.example"
    )
    with pytest.raises(ConfigError, match="GRAPHQL_CHECK_COMPILED"):
        replace(production, graphql_check_compiled=True).check()
    with pytest.raises(ConfigError, match="GRAPHQL_CHECK_COMPILED"):
        Settings.from_env(
            {
                "ENV": "production",
                "SECRET_KEY": "x" * 40,
                "PUBLIC_BASE_URL": "https://a.example",
                "GRAPHQL_CHECK_COMPILED": "true",
            }
        ).check()
    production.check()
    Settings(graphql_check_compiled=True).check()


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+asyncpg://u@h/db",
            "REDIS_URL": "redis://h:6379/1",
            "MAX_UPLOAD_MB": "7",
            "ALLOW_PRIVATE_WEBHOOK_URLS": "true",
            "CORS_ORIGINS": "https://a.example, https://b.example",
            "REFRESH_TOKEN_TTL": "600",
        }
    )
    assert settings.refresh_token_ttl_seconds == 600
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.redis_url == "redis://h:6379/1"
    assert settings.max_upload_bytes == 7 * 1024 * 1024
    assert settings.allow_private_webhook_urls is True
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    defaults = Settings.from_env({})
    assert defaults.database_url == "sqlite+aiosqlite:///./debtgraph.db"
    assert defaults.redis_url is None


async def test_cors_for_configured_origins(settings: Settings, clock: Any) -> None:
    from dataclasses import replace

    app = create_app(replace(settings, cors_origins=("https://app.example",)), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        allowed = await c.options(
            "/graphql",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await c.options(
            "/graphql",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


async def test_graphiql_in_development(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_depth_alias_and_token_limits_refuse_before_execution(
    settings: Settings, clock: Any, admin_headers: dict[str, str], client: httpx.AsyncClient
) -> None:
    from dataclasses import replace

    # Depth 0 admits only root scalars, so { me { email } } (depth 1) is refused.
    app = create_app(replace(settings, graphql_max_depth=0), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        deep = await gql(c, "{ me { email } }", headers=admin_headers)
        assert deep["data"] is None
        assert "exceeds the maximum operation depth of 0" in deep["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: me {{ email }}" for i in range(101)) + " }"
    assert "aliases" in (await gql(client, aliases))["errors"][0]["message"].lower()
    tokens = "{ " + " ".join("a" for _ in range(6000)) + " }"  # 12 KB: within the size limit
    assert "token" in (await gql(client, tokens))["errors"][0]["message"].lower()


async def test_node_lookup_respects_reach(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_platform: Any
) -> None:
    me = await gql(client, "{ me { id email } }", headers=admin_headers)
    node_id = me["data"]["me"]["id"]
    query = "query($id: ID!) { node(id: $id) { id ... on User { email } } }"
    own = await gql(client, query, {"id": node_id}, headers=admin_headers)
    assert own["data"]["node"] == {"id": node_id, "email": "admin@tether.test"}
    platform = await make_platform()
    foreign = await gql(
        client, query, {"id": node_id}, headers={"Authorization": f"Bearer {platform.api_key}"}
    )
    assert foreign["data"]["node"] is None
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    anonymous = await gql(client, query, {"id": node_id})
    assert anonymous["data"]["node"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_no_graphiql_in_production(settings: Settings, clock: Any) -> None:
    from dataclasses import replace

    app = create_app(
        replace(settings, **PRODUCTION),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        page = await c.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        assert page.status_code == 404


async def test_graphql_refuses_an_oversized_upload_from_its_declared_length(
    settings: Settings, clock: Any, admin_headers: dict[str, str]
) -> None:
    from dataclasses import replace

    app = create_app(replace(settings, max_upload_mb=1), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        response = await c.post(
            "/graphql",
            content=b"x" * (2 * 1024 * 1024),
            headers={**admin_headers, "content-type": "multipart/form-data; boundary=b"},
        )
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["message"] == "The file is too large: the maximum size is 1 MB."
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "field": "file"}


def test_json_renders_datetimes_as_the_seeds_do() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from debtgraph.rest_compat.common import JSONResponse

    body = JSONResponse(
        {"at": datetime(2025, 12, 4, 10, 0, 0, 123456, tzinfo=UTC), "amount": Decimal("150.00")}
    ).body
    assert body == b'{"at":"2025-12-04T10:00:00Z","amount":150.0}'


async def test_a_graphql_response_is_orjsons_bytes_with_strawberrys_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.content == b'{"data":{"__typename":"Query"}}'


def test_the_response_keeps_what_the_view_set_and_encodes_what_orjson_cannot() -> None:
    from starlette.background import BackgroundTask
    from starlette.responses import Response

    from debtgraph.schema.http import DebtgraphGraphQL

    view = object.__new__(DebtgraphGraphQL)  # create_response reads nothing of the view's state
    sub_response = Response()
    sub_response.status_code = 207
    sub_response.headers["x-kept"] = "yes"
    task = BackgroundTask(lambda: None)
    sub_response.background = task
    huge = 2**70  # beyond orjson's integers: the standard encoder writes it
    response = view.create_response({"data": {"n": huge}}, sub_response)
    assert response.body == b'{"data":{"n":1180591620717411303424}}'
    assert (response.status_code, response.headers["x-kept"]) == (207, "yes")
    assert response.background is task
    assert response.headers["content-length"] == str(len(response.body))
