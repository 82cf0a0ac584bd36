"""Every value a payload reader accepts fits its column (outside review, PostgreSQL).

SQLite ignores VARCHAR lengths; PostgreSQL refused each of these values at the insert, a 500
("value too long for type character varying") where the reader should have answered 400 with
the field at fault, or kept the value in a form that fits.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.creditors.models import User
from debtgraph.domain.receivables.models import Receivable
from tests.integration.cleavr_support import COMPANY, CONTACT, TOS, bearer, complete_user
from tests.integration.test_receivables import receivable_payload, setup

pytestmark = pytest.mark.usefixtures("clock")


def _refusal(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json().get("error", {})
    return response.status_code, error.get("field"), error.get("code")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("D" * 200, 201), ("D" * 201, 400), ("D" * 230, 400)],
)
async def test_a_debtor_name_is_held_to_its_column(
    client: httpx.AsyncClient, make_platform: Any, name: str, expected: int
) -> None:
    acme, uid = await setup(client, make_platform)
    payload = receivable_payload(uid)
    payload["debtor"]["company_name"] = name
    response = await client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
    assert response.status_code == expected, response.text
    if expected == 400:
        assert _refusal(response) == (400, "debtor.company_name", "too_long")


@pytest.mark.parametrize("name", ["ß" * 150, "ﬃ" * 100])
async def test_a_debtor_name_whose_key_grows_is_kept_and_matched(
    client: httpx.AsyncClient, make_platform: Any, db: Any, name: str
) -> None:
    acme, uid = await setup(client, make_platform)
    headers = bearer(acme.api_key)
    payload = receivable_payload(uid)
    payload["debtor"]["company_name"] = name
    first = await client.post("/v1/receivables", json=payload, headers=headers)
    assert first.status_code == 201, first.text
    async with db() as session:
        key = await session.scalar(select(Receivable.debtor_name_key))
    assert key is not None
    assert len(key) == 200
    # The same invoice again is still found a duplicate through the bounded key.
    again = await client.post("/v1/receivables", json=payload, headers=headers)
    assert _refusal(again) == (400, "invoice.numbers", "duplicate_receivable")


@pytest.mark.parametrize(
    ("section", "field", "limit"),
    [("company", "website", 300), ("platform", "callback_url", 500)],
)
async def test_urls_of_a_user_are_held_to_their_columns(
    client: httpx.AsyncClient, make_platform: Any, section: str, field: str, limit: int
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    base = "https://ex.test/"
    for length, expected in ((limit, 201), (limit + 1, 400)):
        body = complete_user(f"u{length}@x.test")
        body[section] = {**body.get(section, {}), field: base + "a" * (length - len(base))}
        response = await client.post("/v1/users", json=body, headers=headers)
        assert response.status_code == expected, response.text
        if expected == 400:
            assert _refusal(response) == (400, f"{section}.{field}", "too_long")


async def test_a_long_email_without_a_company_name_makes_a_user(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    email = "l" * 64 + "@" + ".".join(["d" * 63] * 2) + "." + "e" * 56 + ".test"
    assert len(email) == 254
    response = await client.post("/v1/users", json={"email": email}, headers=bearer(acme.api_key))
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email
    async with db() as session:
        name = await session.scalar(select(User.name).where(User.email == email))
    assert name == email[:200]


async def test_an_email_that_lower_casing_lengthens_past_the_column_is_refused(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    # Each "İ" lower-cases to two characters: 242 characters become more than 254.
    email = "x" * 60 + "@" + "İ" * 28 + "." + "İ" * 28 + "." + "a" * 60 + "." + "b" * 60 + ".com"
    assert len(email) <= 254
    response = await client.post("/v1/users", json={"email": email}, headers=bearer(acme.api_key))
    assert _refusal(response) == (400, "email", "invalid_email")


@pytest.mark.parametrize("date", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
async def test_a_tos_date_past_the_calendar_is_invalid(
    client: httpx.AsyncClient, make_platform: Any, date: str
) -> None:
    acme = await make_platform()
    body = {
        "email": "tos@x.test",
        "company": COMPANY,
        "contact": CONTACT,
        "tos_acceptance": {**TOS, "date": date},
    }
    response = await client.post("/v1/users", json=body, headers=bearer(acme.api_key))
    assert _refusal(response) == (400, "tos_acceptance.date", "invalid_date")
