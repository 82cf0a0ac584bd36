"""Shared arrangements for the platform-side (Cleavr) tests."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from debtgraph.domain.core.secrets import hash_token, random_string
from debtgraph.domain.oauth.models import OAuthToken

# Real, valid identifiers (the samples in Cleavr's docs fail the checksums).
DANONE_SIRET = "55203253400646"
DANONE_VAT = "FR27552032534"
ENGIE_SIRET = "54210765113030"
ENGIE_VAT = "FR13542107651"
IBAN = "FR7630006000011234567890189"

COMPANY = {
    "name": "Danone",
    "siret": DANONE_SIRET,
    "vat_number": DANONE_VAT,
    "address": {
        "line1": "17 boulevard Haussmann",
        "city": "Paris",
        "postal_code": "75009",
        "country": "FR",
    },
}
CONTACT = {"first_name": "Ada", "last_name": "Lovelace"}
TOS = {"date": "2026-11-20T10:00:00Z", "ip": "203.0.113.9"}


def bearer(token: str) -> dict[str, str]:
    """Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def complete_user(email: str = "ada@danone.test") -> dict[str, Any]:
    """A CreateUserRequest that makes an active user at once."""
    return {"email": email, "company": COMPANY, "contact": CONTACT, "tos_acceptance": TOS}


async def create_user(
    client: httpx.AsyncClient, api_key: str, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST /v1/users and return the body (asserting 201)."""
    response = await client.post(
        "/v1/users", json=payload or complete_user(), headers=bearer(api_key)
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def creditor_token(db: Any, clock: Any, platform_id: int, user_id: int, scopes: str) -> str:
    """An OAuth access token for a creditor, inserted directly (the flow is tested elsewhere)."""
    token = random_string(40)
    async with db() as session:
        session.add(
            OAuthToken(
                access_token_hash=hash_token(token),
                refresh_token_hash=None,
                family_id=random_string(20),
                platform_id=platform_id,
                user_id=user_id,
                scope=scopes,
                expires_at=clock.now() + timedelta(hours=1),
                created_at=clock.now(),
            )
        )
        await session.commit()
    return token


async def count(db: Any, model: Any) -> int:
    """Rows of a model."""
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def field_error(page: str, field: str) -> str | None:
    """The error the page shows under one of its inputs, if any."""
    match = re.search(rf'id="{re.escape(field)}"[^>]*>\s*<p class="error"[^>]*>([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else None
