"""Operator authentication on both faces: /api/login, /api/logout, /api/user and GraphQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from debtgraph.domain.creditors.models import AccessToken, User
from tests.conftest import gql

LOGIN = {"email": "admin@tether.test", "password": "password"}
UNAUTH = {"message": "Unauthenticated.", "status": 401}


async def test_login_returns_token_and_user_as_documented(
    client: httpx.AsyncClient, admin: User
) -> None:
    response = await client.post("/api/login", json=LOGIN)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "user"}
    token_id, _, secret = body["token"].partition("|")
    assert token_id.isdigit()
    assert len(secret) == 40
    assert body["user"] == {"id": admin.id, "name": "Admin User", "email": "admin@tether.test"}
    assert response.headers["x-request-id"]


async def test_token_is_stored_hashed(client: httpx.AsyncClient, admin: User, db: Any) -> None:
    token = (await client.post("/api/login", json=LOGIN)).json()["token"]
    secret = token.split("|", 1)[1]
    async with db() as session:
        row = (await session.scalars(select(AccessToken))).one()
    assert secret not in row.token_hash
    assert len(row.token_hash) == 64


async def test_user_with_and_without_token(
    client: httpx.AsyncClient, admin_headers: dict[str, str], admin: User
) -> None:
    ok = await client.get("/api/user", headers=admin_headers)
    assert ok.status_code == 200
    assert ok.json() == {"id": admin.id, "name": "Admin User", "email": "admin@tether.test"}
    anonymous = await client.get("/api/user")
    assert anonymous.status_code == 401
    assert anonymous.json() == UNAUTH
    garbage = await client.get("/api/user", headers={"Authorization": "Bearer 1|nope"})
    assert garbage.status_code == 401
    assert garbage.json() == UNAUTH
    not_bearer = await client.get("/api/user", headers={"Authorization": "Basic abc"})
    assert not_bearer.status_code == 401


async def test_logout_revokes_the_token(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post("/api/logout", headers=admin_headers)
    assert response.status_code == 200
    assert (await client.get("/api/user", headers=admin_headers)).status_code == 401
    assert (await client.post("/api/logout", headers=admin_headers)).json() == UNAUTH


async def test_wrong_password_and_unknown_email_are_the_same_422(
    client: httpx.AsyncClient, admin: User, db: Any
) -> None:
    wrong = await client.post("/api/login", json={**LOGIN, "password": "nope"})
    unknown = await client.post("/api/login", json={"email": "who@tether.test", "password": "x"})
    expected = {
        "message": "The provided credentials are incorrect.",
        "errors": {"email": ["The provided credentials are incorrect."]},
    }
    assert wrong.status_code == unknown.status_code == 422
    assert wrong.json() == unknown.json() == expected
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(AccessToken)) == 0


async def test_missing_fields_and_malformed_json(client: httpx.AsyncClient, admin: User) -> None:
    missing = await client.post("/api/login", json={})
    assert missing.status_code == 422
    assert missing.json() == {
        "message": "The email field is required. (and 1 more error)",
        "errors": {
            "email": ["The email field is required."],
            "password": ["The password field is required."],
        },
    }
    bad_email = await client.post("/api/login", json={"email": "nope", "password": "x"})
    assert bad_email.json()["errors"] == {
        "email": ["The email field must be a valid email address."]
    }
    typed = await client.post("/api/login", json={"email": ["a"], "password": 5})
    assert typed.status_code == 422
    assert set(typed.json()["errors"]) == {"email", "password"}
    malformed = await client.post(
        "/api/login", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"] == {"body": ["The request body is not valid JSON."]}
    array = await client.post("/api/login", json=[1, 2])
    assert array.status_code == 422


async def test_token_of_a_deleted_user_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], admin: User, db: Any, clock: Any
) -> None:
    async with db() as session:
        user = await session.get(User, admin.id)
        user.deleted_at = clock.now()
        await session.commit()
    response = await client.get("/api/user", headers=admin_headers)
    assert response.status_code == 401
    assert response.json() == UNAUTH


async def test_failed_logins_are_throttled_per_email_and_address(
    client: httpx.AsyncClient, admin: User, clock: Any
) -> None:
    for _ in range(5):
        assert (await client.post("/api/login", json={**LOGIN, "password": "x"})).status_code == 422
    blocked = await client.post("/api/login", json=LOGIN)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.json()["status"] == 429
    assert "Too many login attempts" in blocked.json()["message"]
    # Another email from the same address is not blocked.
    other = await client.post("/api/login", json={"email": "x@tether.test", "password": "x"})
    assert other.status_code == 422


async def test_platform_key_cannot_use_the_operator_api(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    created = await make_platform()
    headers = {"Authorization": f"Bearer {created.api_key}"}
    assert (await client.get("/api/user", headers=headers)).json() == UNAUTH


async def test_graphql_me_login_logout(client: httpx.AsyncClient, admin: User) -> None:
    anonymous = await gql(client, "{ me { email } }")
    assert anonymous["data"] == {"me": None}
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    login = await gql(
        client,
        "mutation($i: LoginInput!) { login(input: $i) { token user { email databaseId }"
        " userErrors { field code message } } }",
        {"i": LOGIN},
    )
    payload = login["data"]["login"]
    assert payload["userErrors"] == []
    assert payload["user"] == {"email": "admin@tether.test", "databaseId": admin.id}
    headers = {"Authorization": f"Bearer {payload['token']}"}

    me = await gql(client, "{ me { email name role } }", headers=headers)
    assert me["data"]["me"] == {"email": "admin@tether.test", "name": "Admin User", "role": "admin"}
    # The REST face accepts the token GraphQL issued: same resolvers, same tokens.
    assert (await client.get("/api/user", headers=headers)).status_code == 200

    bad = await gql(
        client,
        'mutation { login(input: {email: "admin@tether.test", password: "no"}) '
        "{ token userErrors { field code message } } }",
    )
    assert bad["data"]["login"] == {
        "token": None,
        "userErrors": [
            {
                "field": "email",
                "code": "invalid_credentials",
                "message": "The provided credentials are incorrect.",
            }
        ],
    }
    out = await gql(client, "mutation { logout { ok userErrors { code } } }", headers=headers)
    assert out["data"]["logout"] == {"ok": True, "userErrors": []}
    again = await gql(client, "{ me { email } }", headers=headers)
    assert again["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_throttle_window_expires(client: httpx.AsyncClient, admin: User, clock: Any) -> None:
    from tests.conftest import REDIS_URL

    for _ in range(5):
        await client.post("/api/login", json={**LOGIN, "password": "x"})
    assert (await client.post("/api/login", json=LOGIN)).status_code == 429
    if REDIS_URL:
        return  # Redis keeps real time; the in-memory window follows the test clock.
    clock.advance(timedelta(seconds=61))
    assert (await client.post("/api/login", json=LOGIN)).status_code == 200
