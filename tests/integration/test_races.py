"""Check-then-write races: concurrent identical requests change the database at most once.

Every test fires real concurrent requests at the app (``asyncio.gather`` over the in-process
transport runs them interleaved on one loop, each with its own session and connection). The
point is PostgreSQL's concurrency, but SQLite must give the same answers (its writers queue on
the database lock: never a 500, never "database is locked").
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from sqlalchemy import delete, select

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from debtgraph.domain.debtors.models import BlacklistedIban
from debtgraph.domain.oauth import grants as oauth_flow
from debtgraph.domain.oauth.models import OAuthToken, PlatformConnection
from debtgraph.domain.receivables.models import Receivable
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, complete_user, count, create_user
from tests.integration.test_receivables import receivable_payload
from tests.integration.test_users import ONBOARDING_FORM, _csrf, _path, fresh_onboarding_form

REDIRECT = "https://acme.test/cb"


async def _together(count_: int, send: Any) -> list[httpx.Response]:
    """``count_`` calls of ``send()`` in flight at once."""
    return list(await asyncio.gather(*(send() for _ in range(count_))))


def _statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


async def test_concurrent_identical_receivables_create_one(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    payload = receivable_payload(uid)

    responses = await _together(
        10, lambda: client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
    )

    assert _statuses(responses) == {201: 1, 400: 9}, [r.text for r in responses]
    created = next(r for r in responses if r.status_code == 201).json()["id"]
    for refused in (r for r in responses if r.status_code == 400):
        error = refused.json()["error"]
        assert error["code"] == "duplicate_receivable"
        assert created in error["message"]
    assert await count(db, Receivable) == 1
    async with db() as session:
        events = (await session.scalars(select(Event.type))).all()
    assert events.count("receivable.created") == 1


async def test_concurrent_receivables_of_other_debtors_all_pass(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    """The lock serialises one creditor's creations; it refuses nothing that is not a duplicate."""
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]

    def send(n: int) -> Any:
        payload = receivable_payload(uid)
        payload["invoice"] = {**payload["invoice"], "numbers": [f"INV-{n}"]}
        return client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))

    responses = list(await asyncio.gather(*(send(n) for n in range(6))))

    assert _statuses(responses) == {201: 6}, [r.text for r in responses]
    assert await count(db, Receivable) == 6


async def test_concurrent_users_with_one_email_create_one(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()

    responses = await _together(
        10,
        lambda: client.post(
            "/v1/users", json=complete_user("race@x.test"), headers=bearer(acme.api_key)
        ),
    )

    assert _statuses(responses) == {201: 1, 400: 9}, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 400):
        error = refused.json()["error"]
        assert error["code"] == "email_taken"
        assert error["message"] == "A user with this email already exists."
        assert error["field"] == "email"
    assert await count(db, User) == 1


async def _onboarding_race(
    client: httpx.AsyncClient, api_key: str, payload: dict[str, Any], form: dict[str, str]
) -> list[httpx.Response]:
    body = await create_user(client, api_key, payload)
    path = _path(body["onboarding_url"])
    token = _csrf((await client.get(path)).text)
    data = {**form, "csrf_token": token}
    return await _together(6, lambda: client.post(path, data=data))


async def test_concurrent_onboarding_submissions_succeed_once(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()

    responses = await _onboarding_race(
        client, acme.api_key, {"email": "new@x.test"}, ONBOARDING_FORM
    )

    assert _statuses(responses) == {200: 1, 404: 5}, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 404):
        assert "invalid or has already been used" in refused.text
    async with db() as session:
        user = (await session.scalars(select(User))).one()
        updates = (await session.scalars(select(Event).where(Event.type == "user.updated"))).all()
    assert user.status == "active"
    assert user.onboarding_token_used_at is not None
    assert len(updates) == 1


async def test_concurrent_set_password_submissions_succeed_once(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    password = {
        "password": "a long enough password",
        "password_confirmation": "a long enough password",
    }

    responses = await _onboarding_race(client, acme.api_key, complete_user(), password)

    assert _statuses(responses) == {200: 1, 404: 5}, [r.text for r in responses]
    async with db() as session:
        assert (await session.scalars(select(User))).one().password_hash


async def test_refused_onboarding_form_leaves_the_link_usable(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    """Validation runs before the token is spent, in the same transaction as the save."""
    path, token = await fresh_onboarding_form(client, make_platform)
    bad = {**ONBOARDING_FORM, "password_confirmation": "something else", "csrf_token": token}
    good = {**ONBOARDING_FORM, "csrf_token": token}

    refused = await _together(3, lambda: client.post(path, data=bad))
    assert _statuses(refused) == {400: 3}
    async with db() as session:
        assert (await session.scalars(select(User))).one().onboarding_token_used_at is None

    assert (await client.post(path, data=good)).status_code == 200


async def _code(db: Any, clock: Any, acme: Any, user_public_id: str) -> str:
    async with db() as session:
        user_id = await session.scalar(select(User.id).where(User.public_id == user_public_id))
        assert user_id is not None
        code = await oauth_flow.issue_code(
            session,
            clock,
            platform_id=acme.platform.id,
            user_id=user_id,
            redirect_uri=REDIRECT,
            scope="users:read",
            code_challenge=None,
            code_challenge_method=None,
        )
        await session.commit()
    return code


def _token_form(acme: Any, **grant: str) -> dict[str, str]:
    return {
        "client_id": acme.platform.client_id,
        "client_secret": acme.client_secret,
        **grant,
    }


async def test_concurrent_code_exchanges_issue_one_token_pair(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    code = await _code(db, clock, acme, uid)
    form = _token_form(acme, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)

    responses = await _together(6, lambda: client.post("/oauth/token", data=form))

    assert _statuses(responses) == {200: 1, 400: 5}, [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    assert await count(db, OAuthToken) == 1


async def test_concurrent_refreshes_rotate_once(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    code = await _code(db, clock, acme, uid)
    issued = await client.post(
        "/oauth/token",
        data=_token_form(acme, grant_type="authorization_code", code=code, redirect_uri=REDIRECT),
    )
    assert issued.status_code == 200, issued.text
    form = _token_form(
        acme, grant_type="refresh_token", refresh_token=issued.json()["refresh_token"]
    )

    responses = await _together(6, lambda: client.post("/oauth/token", data=form))

    assert _statuses(responses) == {200: 1, 400: 5}, [r.text for r in responses]
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    # The first pair and the one rotation: a reuse never mints a pair of its own.
    assert await count(db, OAuthToken) == 2


BLACKLIST_ADD = """mutation($input: BlacklistAddInput!) { blacklistAdd(input: $input) {
  entry { iban reason } userErrors { field code message } } }"""


async def test_concurrent_blacklist_adds_store_one_entry(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    variables = {"input": {"iban": "DE89370400440532013000", "reason": "fraud"}}

    results = await asyncio.gather(
        *(gql(client, BLACKLIST_ADD, variables, admin_headers) for _ in range(6))
    )

    for result in results:
        assert "errors" not in result, result
        assert result["data"]["blacklistAdd"] == {
            "entry": {"iban": "DE89370400440532013000", "reason": "fraud"},
            "userErrors": [],
        }
    assert await count(db, BlacklistedIban) == 1


async def test_concurrent_consents_make_one_connection_with_every_scope(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    async with db() as session:
        user_id = await session.scalar(select(User.id).where(User.public_id == uid))
        await session.execute(
            delete(PlatformConnection).where(PlatformConnection.user_id == user_id)
        )
        await session.commit()

    async def consent(scopes: list[str]) -> None:
        async with db() as session:
            await oauth_flow.connect(session, clock, acme.platform.id, user_id, scopes)
            await session.commit()

    await asyncio.gather(consent(["users:read"]), consent(["receivables:read"]), consent([]))

    async with db() as session:
        rows = (await session.scalars(select(PlatformConnection))).all()
    assert len(rows) == 1
    assert sorted(rows[0].scopes) == ["receivables:read", "users:read"]
