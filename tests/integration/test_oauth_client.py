"""A standard OAuth 2.0 client (authlib's AsyncOAuth2Client over httpx) against the real app.

The platform side is authlib, never our own helpers: it builds the authorization URL with PKCE S256,
parses the redirect, redeems the code with client_secret_basic and client_secret_post, calls /v1
with the token, refreshes (rotation) and revokes. The creditor side is a browser: it completes the
hosted onboarding (setting its password) and then signs in and approves on the consent page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from tests.integration.cleavr_support import DANONE_SIRET, IBAN, bearer, create_user

BASE = "http://testserver"
REDIRECT = "https://acme.test/cb"
PASSWORD = "correct horse battery"
SCOPE = "users:read receivables:read"


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, page
    return match.group(1)


async def onboarded_creditor(browser: httpx.AsyncClient, api_key: str, email: str) -> str:
    """A creditor created by the platform who completed the hosted onboarding; its id."""
    user = await create_user(browser, api_key, {"email": email})
    path = user["onboarding_url"].removeprefix(BASE)
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    form = {
        "csrf_token": _hidden(page.text, "csrf_token"),
        "company.name": "Danone",
        "company.siret": DANONE_SIRET,
        "company.address.line1": "17 boulevard Haussmann",
        "company.address.postal_code": "75009",
        "company.address.city": "Paris",
        "company.address.country": "FR",
        "contact.first_name": "Ada",
        "contact.last_name": "Lovelace",
        "bank_account.iban": IBAN,
        "tos_acceptance": "accepted",
        "password": PASSWORD,
        "password_confirmation": PASSWORD,
    }
    done = await browser.post(path, data=form)
    assert done.status_code == 200, done.text
    status = await browser.get(f"/v1/users/{user['id']}", headers=bearer(api_key))
    assert status.json()["status"] == "active"
    return str(user["id"])


async def consent(browser: httpx.AsyncClient, authorization_url: str, email: str) -> str:
    """Follow the authorization URL as the creditor's browser; the final redirect location."""
    start = await browser.get(authorization_url)
    assert start.status_code == 302, start.text
    page = await browser.get(start.headers["location"])
    assert page.status_code == 200, page.text
    approved = await browser.post(
        "/oauth/consent",
        data={
            "csrf_token": _hidden(page.text, "csrf_token"),
            "request": _hidden(page.text, "request"),
            "decision": "approve",
            "email": email,
            "password": PASSWORD,
        },
    )
    assert approved.status_code == 302, approved.text
    return approved.headers["location"]


@pytest.fixture
def transport(app: Any) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app, client=("198.51.100.7", 4321))


def platform_client(
    acme: Any, transport: httpx.ASGITransport, auth_method: str = "client_secret_basic"
) -> AsyncOAuth2Client:
    """The platform's OAuth client as a real integration would configure it (PKCE S256)."""
    return AsyncOAuth2Client(
        client_id=acme.platform.client_id,
        client_secret=acme.client_secret,
        scope=SCOPE,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
        transport=transport,
        base_url=BASE,
    )


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_authorization_code_flow_with_pkce_refresh_and_revocation(
    transport: httpx.ASGITransport, make_platform: Any, auth_method: str
) -> None:
    acme = await make_platform("Acme", redirect=REDIRECT)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        uid = await onboarded_creditor(browser, acme.api_key, "ada@danone.test")
        platform = platform_client(acme, transport, auth_method)
        async with platform:
            verifier = generate_token(64)
            url, state = platform.create_authorization_url(
                f"{BASE}/oauth/authorize", code_verifier=verifier
            )
            query = parse_qs(urlsplit(url).query)
            assert query["code_challenge_method"] == ["S256"]
            location = await consent(browser, url, "ada@danone.test")
            assert location.startswith(REDIRECT + "?")
            assert parse_qs(urlsplit(location).query)["state"] == [state]

            token = await platform.fetch_token(
                f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier
            )
            assert token["token_type"] == "Bearer"
            assert token["scope"] == SCOPE
            assert token["expires_in"] == 3600
            first_access, first_refresh = token["access_token"], token["refresh_token"]

            me = await platform.get(f"/v1/users/{uid}")
            assert me.status_code == 200, me.text
            assert me.json()["id"] == uid
            # The scope the creditor approved is all the token can do.
            denied = await platform.post("/v1/receivables", json={})
            assert denied.status_code == 403
            assert denied.json()["error"]["code"] == "insufficient_scope"

            rotated = await platform.refresh_token(f"{BASE}/oauth/token")
            assert rotated["refresh_token"] != first_refresh
            assert rotated["access_token"] != first_access
            assert (await platform.get(f"/v1/users/{uid}")).status_code == 200
            # Rotation: the old pair is dead.
            old = await browser.get(f"/v1/users/{uid}", headers=bearer(first_access))
            assert old.status_code == 401

            revoked = await platform.revoke_token(
                f"{BASE}/oauth/revoke",
                token=rotated["refresh_token"],
                token_type_hint="refresh_token",
            )
            assert revoked.status_code == 200, revoked.text
            # Revoking the refresh token ends its family, the live access token included.
            assert (await platform.get(f"/v1/users/{uid}")).status_code == 401
            for dead_refresh in (rotated["refresh_token"], first_refresh):
                with pytest.raises(OAuthError) as dead:
                    await platform.refresh_token(f"{BASE}/oauth/token", refresh_token=dead_refresh)
                assert dead.value.error == "invalid_grant"


async def test_replaying_a_rotated_refresh_token_ends_the_family(
    transport: httpx.ASGITransport, make_platform: Any
) -> None:
    acme = await make_platform("Acme", redirect=REDIRECT)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        uid = await onboarded_creditor(browser, acme.api_key, "ada@danone.test")
        platform = platform_client(acme, transport)
        async with platform:
            verifier = generate_token(64)
            url, _ = platform.create_authorization_url(
                f"{BASE}/oauth/authorize", code_verifier=verifier
            )
            location = await consent(browser, url, "ada@danone.test")
            first = await platform.fetch_token(
                f"{BASE}/oauth/token", authorization_response=location, code_verifier=verifier
            )
            rotated = await platform.refresh_token(f"{BASE}/oauth/token")
            with pytest.raises(OAuthError) as replayed:
                await platform.refresh_token(
                    f"{BASE}/oauth/token", refresh_token=first["refresh_token"]
                )
            assert replayed.value.error == "invalid_grant"
            live = await browser.get(f"/v1/users/{uid}", headers=bearer(rotated["access_token"]))
            assert live.status_code == 401


async def test_a_wrong_verifier_or_secret_is_refused_to_the_client(
    transport: httpx.ASGITransport, make_platform: Any
) -> None:
    acme = await make_platform("Acme", redirect=REDIRECT)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        await onboarded_creditor(browser, acme.api_key, "ada@danone.test")
        platform = platform_client(acme, transport)
        async with platform:
            verifier = generate_token(64)
            url, _ = platform.create_authorization_url(
                f"{BASE}/oauth/authorize", code_verifier=verifier
            )
            location = await consent(browser, url, "ada@danone.test")
            with pytest.raises(OAuthError) as wrong:
                await platform.fetch_token(
                    f"{BASE}/oauth/token",
                    authorization_response=location,
                    code_verifier=generate_token(64),
                )
            assert wrong.value.error == "invalid_grant"
            assert platform.token is None

        impostor = AsyncOAuth2Client(
            client_id=acme.platform.client_id,
            client_secret="not-the-secret",
            transport=transport,
            base_url=BASE,
        )
        async with impostor:
            with pytest.raises(OAuthError) as bad_client:
                await impostor.fetch_token(
                    f"{BASE}/oauth/token", grant_type="refresh_token", refresh_token="x"
                )
            assert bad_client.value.error == "invalid_client"
