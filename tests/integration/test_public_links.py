"""Links we hand out (onboarding, set-password, the consent redirect) point where the server is.

With PUBLIC_BASE_URL unset they are built from the request: its Host, and the scheme a trusted
proxy reported (uvicorn's ProxyHeadersMiddleware, trusting FORWARDED_ALLOW_IPS only). With it
set, it wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from debtgraph.server.app import create_app, start_runtime, stop_runtime
from debtgraph.settings import Settings
from tests.integration.cleavr_support import bearer, complete_user
from tests.integration.live_server_support import live_server

REDIRECT = "https://acme.test/cb"


def _authorize_params(client_id: str) -> dict[str, str]:
    return {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "users:read",
        "state": "s",
    }


@pytest.fixture
async def unset_app(settings: Settings, clock: Any, app: Any) -> AsyncIterator[Any]:
    """A second app on the same (emptied) database, with PUBLIC_BASE_URL unset."""
    application = create_app(
        dataclasses.replace(settings, public_base_url=None), clock=clock, periodic=False
    )
    await start_runtime(application.state.runtime, periodic=False)
    try:
        yield application
    finally:
        await stop_runtime(application.state.runtime)


def _client(app: Any, base_url: str, peer: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 1234))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def test_public_base_url_is_optional() -> None:
    assert Settings.from_env({}).public_base_url is None
    set_ = Settings.from_env({"PUBLIC_BASE_URL": "https://pay.example.com/"})
    assert set_.public_base_url == "https://pay.example.com"


async def test_links_follow_the_port_debtgraph_serve_was_started_with(
    app: Any, settings: Settings, make_platform: Any
) -> None:
    acme = await make_platform()
    async with live_server(settings) as server, httpx.AsyncClient(base_url=server.url) as api:
        created = await api.post("/v1/users", json=complete_user(), headers=bearer(acme.api_key))
        assert created.status_code == 201, created.text
        assert created.json()["onboarding_url"].startswith(f"{server.url}/onboarding/")
        start = await api.get("/oauth/authorize", params=_authorize_params(acme.platform.client_id))
        assert start.status_code == 302
        assert start.headers["location"].startswith(f"{server.url}/oauth/consent?")


async def test_links_follow_the_host_and_a_trusted_proxys_scheme(
    unset_app: Any, make_platform: Any
) -> None:
    acme = await make_platform()
    async with _client(unset_app, "http://api.example.test:9123") as direct:
        created = await direct.post("/v1/users", json=complete_user(), headers=bearer(acme.api_key))
        assert created.json()["onboarding_url"].startswith(
            "http://api.example.test:9123/onboarding/"
        )
        query = """mutation($input: UserCreateInput!) {
            userCreate(input: $input) { onboardingUrl userErrors { message } } }"""
        graph = await direct.post(
            "/graphql",
            json={"query": query, "variables": {"input": {"email": "g@x.test"}}},
            headers=bearer(acme.api_key),
        )
        url = graph.json()["data"]["userCreate"]["onboardingUrl"]
        assert url.startswith("http://api.example.test:9123/onboarding/"), graph.text

    forwarded = {"X-Forwarded-Proto": "https"}
    params = _authorize_params(acme.platform.client_id)
    behind_proxy = ProxyHeadersMiddleware(unset_app, trusted_hosts="10.0.0.1")
    async with _client(behind_proxy, "http://pay.example.com") as via_proxy:
        start = await via_proxy.get("/oauth/authorize", params=params, headers=forwarded)
        assert start.headers["location"].startswith("https://pay.example.com/oauth/consent?")
    # The same header from a client that is not a trusted proxy changes nothing.
    async with _client(behind_proxy, "http://pay.example.com", peer="203.0.113.7") as spoofing:
        start = await spoofing.get("/oauth/authorize", params=params, headers=forwarded)
        assert start.headers["location"].startswith("http://pay.example.com/oauth/consent?")


async def test_public_base_url_wins_when_set(
    client: httpx.AsyncClient, settings: Settings, make_platform: Any
) -> None:
    assert settings.public_base_url == "http://testserver"
    acme = await make_platform()
    created = await client.post(
        "/v1/users",
        json=complete_user(),
        headers={**bearer(acme.api_key), "Host": "elsewhere.test:1234"},
    )
    assert created.json()["onboarding_url"].startswith("http://testserver/onboarding/")
