"""The whole authorization-code flow in a real headless Chromium against a real server.

Chromium (like Safari) applies the consent page's ``form-action`` to the redirect that answers
the form post, so only a real browser shows whether the user can get back to the client. The
client's redirect URI is on another origin (``localhost`` while the page is on ``127.0.0.1``),
like any real client: a 404 there is fine, the browser's URL is what matters.

The browser is Debian's ``chromium`` (``.ci/run`` installs it), driven by Playwright's own
driver; no browser is ever downloaded. Without it the test is skipped, except under CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.integration.live_server_support import LiveServer, live_server
from tests.integration.test_oauth import PASSWORD, creditor

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    else:
        if os.path.exists(CHROMIUM):
            return async_playwright
        missing = f"no chromium at {CHROMIUM}"
    if os.environ.get("CI"):
        pytest.fail(f"{missing}: .ci/run must install Debian's chromium")
    pytest.skip(missing)


@pytest.fixture
async def server(app: Any, settings: Any) -> AsyncIterator[LiveServer]:
    """``debtgraph serve`` on a free port, on the test database (``app`` has emptied it)."""
    async with live_server(settings) as running:
        yield running


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    """A fresh page in headless Chromium."""
    async_playwright = _browser_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            yield await context.new_page()
        finally:
            await browser.close()


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def _consent(page: Any, server: LiveServer, client_id: str, redirect: str) -> None:
    params = {
        "client_id": client_id,
        "redirect_uri": redirect,
        "response_type": "code",
        "scope": "users:read receivables:read",
        "state": "browser-state-1",
    }
    await page.goto(f"{server.url}/oauth/authorize?{urlencode(params)}")
    # PUBLIC_BASE_URL is unset: the consent page is on the port the server was started with.
    assert page.url.startswith(f"{server.url}/oauth/consent?"), page.url
    assert await page.locator("strong").first.inner_text() == "Acme"


async def test_sign_in_approve_and_deny_in_chromium(
    page: Any, server: LiveServer, make_platform: Any, db: Any
) -> None:
    redirect = f"http://localhost:{server.port}/callback-probe"
    acme = await make_platform(redirect=redirect)
    async with httpx.AsyncClient(base_url=server.url) as api:
        await creditor(api, db, acme.api_key)

        await _consent(page, server, acme.platform.client_id, redirect)
        await page.fill("#email", "ada@x.test")
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation(url=f"{redirect}?**"):
            await page.click("button[value=approve]")
        landed = _query(page.url)
        assert page.url.startswith(f"{redirect}?")
        assert landed["state"] == "browser-state-1"
        # The code the browser brought back is a real one.
        exchanged = await api.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": landed["code"],
                "redirect_uri": redirect,
                "client_id": acme.platform.client_id,
                "client_secret": acme.client_secret,
            },
        )
        assert exchanged.status_code == 200, exchanged.text
        assert exchanged.json()["scope"] == "users:read receivables:read"

    await _consent(page, server, acme.platform.client_id, redirect)
    async with page.expect_navigation(url=f"{redirect}?**"):
        await page.click("button[value=deny]")
    assert _query(page.url) == {"error": "access_denied", "state": "browser-state-1"}


async def test_consent_page_lets_its_form_reach_only_the_clients_redirect_origin(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform(redirect="https://acme.test:8443/oauth/cb?x=1")
    params = {
        "client_id": acme.platform.client_id,
        "redirect_uri": "https://acme.test:8443/oauth/cb?x=1",
        "response_type": "code",
        "scope": "users:read",
        "state": "s",
    }
    start = await client.get("/oauth/authorize", params=params)
    consent = await client.get(start.headers["location"].removeprefix("http://testserver"))
    policy = consent.headers["content-security-policy"]
    assert "form-action 'self' https://acme.test:8443;" in policy
    assert "default-src 'none'" in policy


def test_redirect_sources_cannot_inject_into_the_policy() -> None:
    from debtgraph.rest_compat.hosted_pages import redirect_source

    assert redirect_source("http://localhost:8123/cb") == "http://localhost:8123"
    assert redirect_source("https://user:pw@acme.test/cb") == "https://acme.test"
    assert redirect_source("com.example.app:/oauth") == "com.example.app:"
    assert redirect_source("https://acme.test;script-src */cb") is None
    assert redirect_source("https://acme.test,evil.test/cb") is None


async def test_onboarding_page_takes_the_identity_document_in_chromium(
    page: Any, server: LiveServer, make_platform: Any, settings: Any
) -> None:
    from tests.integration.cleavr_support import DANONE_SIRET, IBAN, bearer, create_user
    from tests.integration.test_identity_document import stored_documents

    acme = await make_platform()
    async with httpx.AsyncClient(base_url=server.url) as api:
        created = await create_user(api, acme.api_key, {"email": "doc@x.test"})
        await page.goto(created["onboarding_url"])
        fields = {
            "company.name": "Danone",
            "company.siret": DANONE_SIRET,
            "company.address.line1": "17 boulevard Haussmann",
            "company.address.postal_code": "75009",
            "company.address.city": "Paris",
            "contact.first_name": "Ada",
            "contact.last_name": "Lovelace",
            "bank_account.iban": IBAN,
            "password": PASSWORD,
            "password_confirmation": PASSWORD,
        }
        for name, value in fields.items():
            await page.fill(f'[name="{name}"]', value)
        await page.check('[name="tos_acceptance"]')
        document = '[name="representative.identity_document"]'
        # A GIF named like a PDF: the page shows the refusal at the file input.
        await page.set_input_files(
            document, {"name": "id.pdf", "mimeType": "application/pdf", "buffer": b"GIF89a" * 8}
        )
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert "PDF, JPEG or PNG" in await page.locator("p.error").first.inner_text()
        assert stored_documents(settings) == []

        # The form comes back with what was typed (but passwords and the file): choose again.
        await page.fill('[name="password"]', PASSWORD)
        await page.fill('[name="password_confirmation"]', PASSWORD)
        await page.check('[name="tos_acceptance"]')
        await page.set_input_files(
            document,
            {"name": "passport.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7\n%%EOF"},
        )
        async with page.expect_navigation():
            await page.click("button[type=submit]")
        assert await page.locator("h1").inner_text() == "All set"

        headers = bearer(acme.api_key)
        uid = created["id"]
        requirements = (await api.get(f"/v1/users/{uid}/requirements", headers=headers)).json()
        assert requirements == {"currently_due": [], "eventually_due": [], "past_due": []}
        status = (await api.get(f"/v1/users/{uid}/onboarding-status", headers=headers)).json()
        assert (status["status"], status["stripe_account_status"]) == ("active", "enabled")
    [stored] = stored_documents(settings)
    assert stored.suffix == ".pdf"
    assert stored.read_bytes() == b"%PDF-1.7\n%%EOF"


async def test_onboarding_page_ties_each_refusal_to_its_field_in_chromium(
    page: Any, server: LiveServer, make_platform: Any
) -> None:
    """A refused field is invalid and described by its message in the accessibility tree (what
    a screen reader reads with the field), and the summary is announced as the page returns."""
    from playwright.async_api import expect

    from tests.integration.cleavr_support import create_user

    acme = await make_platform()
    async with httpx.AsyncClient(base_url=server.url) as api:
        created = await create_user(api, acme.api_key, {"email": "aria@x.test"})
    await page.goto(created["onboarding_url"])
    await page.fill('[name="company.name"]', "Danone")
    await page.fill('[name="company.siret"]', "123")
    await page.fill('[name="password"]', PASSWORD)
    await page.fill('[name="password_confirmation"]', PASSWORD)
    async with page.expect_navigation():
        await page.click("button[type=submit]")

    siret = page.get_by_label("SIRET", exact=True)
    await expect(siret).to_have_attribute("aria-invalid", "true")
    # The API's message names the field by its path; beside the field, the field is "This field".
    await expect(siret).to_have_accessible_description("This field must be 14 digits.")
    await expect(page.get_by_label("City", exact=True)).to_have_accessible_description(
        "The city is required."
    )
    terms = page.get_by_label("I accept the terms of service")
    await expect(terms).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_role("alert")).to_contain_text("Please correct the fields")
    # A field that was accepted is neither marked nor described.
    name = page.get_by_label("Company name", exact=True)
    await expect(name).not_to_have_attribute("aria-invalid", "true")
    await expect(name).to_have_accessible_description("")
