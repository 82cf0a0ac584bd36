"""The SSRF guard (PRODUCT.md §5) with ALLOW_PRIVATE_WEBHOOK_URLS off, as in production."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.webhooks import targets
from debtgraph.domain.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from debtgraph.settings import ConfigError, Settings
from tests.integration.cleavr_support import bearer, count, create_user
from tests.integration.test_receivables import receivable_payload


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings with the guard on."""
    return replace(settings, allow_private_webhook_urls=False)


def _at_the_limit(host: str) -> str:
    """A URL of exactly MAX_URL_LENGTH characters as sent, on ``host``."""
    start = f"https://{host}/"
    return start + "a" * (targets.MAX_URL_LENGTH - len(start))


@pytest.mark.parametrize(
    ("url", "code"),
    [
        # Within the limit as sent, past it as kept (its host in punycode): a 500 before.
        (_at_the_limit("\u4f8b\u5b50" * 5 + ".com"), "too_long"),
        ("http://example.com/hook", "url_not_https"),
        ("https://127.0.0.1/hook", "url_private"),
        ("https://10.1.2.3/hook", "url_private"),
        ("https://169.254.169.254/latest/meta-data", "url_private"),
        ("https://[::1]/hook", "url_private"),
        ("https://[::ffff:192.168.0.1]/hook", "url_private"),
        ("https://localhost/hook", "url_private"),
        ("https://does-not-exist.invalid/hook", "url_unresolvable"),
        ("https://user:pw@example.com/hook", "invalid_url"),
    ],
)
async def test_refused_urls(
    client: httpx.AsyncClient, make_platform: Any, db: Any, url: str, code: str
) -> None:
    acme = await make_platform()
    response = await client.post(
        "/v1/webhooks", json={"url": url, "events": ["*"]}, headers=bearer(acme.api_key)
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == "url"
    assert await count(db, Webhook) == 0


async def test_a_public_https_literal_passes() -> None:
    target = await targets.check("https://93.184.216.34:8443/x?y=1", allow_private=False)
    assert (target.host, target.port, target.path) == ("93.184.216.34", 8443, "/x?y=1")


async def test_checked_again_at_delivery_time(
    client: httpx.AsyncClient, make_platform: Any, db: Any, drain: Any
) -> None:
    """A webhook whose name now resolves inside the network is not sent to (DNS changed)."""
    acme = await make_platform()
    user = await create_user(client, acme.api_key)
    created = await client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.216.34/hook", "events": ["*"]},
        headers=bearer(acme.api_key),
    )
    assert created.status_code == 201
    async with db() as session:
        webhook = await session.scalar(select(Webhook))
        assert webhook is not None
        # What a rebinding name gives now: a loopback address.
        webhook.url = "https://localhost:1/hook"
        await session.commit()
    response = await client.post(
        "/v1/receivables", json=receivable_payload(user["id"]), headers=bearer(acme.api_key)
    )
    assert response.status_code == 201
    await drain()
    async with db() as session:
        (attempt,) = (await session.scalars(select(WebhookDeliveryAttempt))).all()
        delivery = await session.scalar(select(WebhookDelivery))
    assert attempt.status_code is None
    assert attempt.error == f"not sent: {targets.PRIVATE}"
    assert delivery is not None
    assert delivery.status == "pending"


def test_production_refuses_the_setting() -> None:
    settings = Settings(
        env="production",
        secret_key="x" * 40,
        public_base_url="https://api.example",
        allow_private_webhook_urls=True,
    )
    with pytest.raises(ConfigError, match="ALLOW_PRIVATE_WEBHOOK_URLS"):
        settings.check()
