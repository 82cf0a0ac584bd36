"""``platformDisconnect``: a creditor's grants to a platform end at once (PRODUCT.md §1)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.oauth.models import OAuthToken, PlatformConnection
from tests.conftest import gql
from tests.integration.billing_support import gid
from tests.integration.cleavr_support import bearer
from tests.integration.test_reach import NOTHING, _rest_reach, arrange, connect, refresh

pytestmark = pytest.mark.usefixtures("clock")

DISCONNECT = """mutation($v: UserIdInput!) { platformDisconnect(input: $v) {
  disconnected userErrors { field code message } } }"""


async def _disconnect(client: httpx.AsyncClient, headers: dict[str, str], uid: str) -> Any:
    body = await gql(client, DISCONNECT, {"v": {"id": uid}}, headers)
    assert "errors" not in body, body
    return body["data"]["platformDisconnect"]


async def _live_tokens(db: Any, platform_id: int) -> int:
    async with db() as session:
        rows = await session.scalars(
            select(OAuthToken.id).where(
                OAuthToken.platform_id == platform_id, OAuthToken.revoked_at.is_(None)
            )
        )
        return len(rows.all())


async def test_the_platform_disconnects_a_creditor_and_its_reach_ends_on_every_face(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "users:read receivables:read")
    assert (await _rest_reach(client, b.api_key, uid, rid))["get"] == 200
    done = await _disconnect(client, bearer(b.api_key), uid)
    # The user is not in the payload: the platform's reach over it ends here (and a grant of
    # receivables:read alone never let it read the user).
    assert done == {"disconnected": True, "userErrors": []}
    assert await _rest_reach(client, b.api_key, uid, rid) == NOTHING
    # The grant's tokens are gone too: the access token, and the refresh token's family.
    me = await client.get(f"/v1/users/{uid}", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    assert (await refresh(client, b, tokens["refresh_token"])).status_code == 400
    assert await _live_tokens(db, b.platform.id) == 0
    async with db() as session:
        assert (await session.scalars(select(PlatformConnection))).all() == []
    # The creator keeps its reach, and disconnecting again is the same answer.
    assert (
        await client.get(f"/v1/receivables/{rid}", headers=bearer(a.api_key))
    ).status_code == 200
    assert (await _disconnect(client, bearer(b.api_key), uid))["userErrors"] == []


async def test_a_creditor_disconnects_its_own_token_platform(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    _a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "receivables:read")  # no users scope: none needed
    own = bearer(tokens["access_token"])
    done = await _disconnect(client, own, uid)
    assert done["userErrors"] == [], done
    assert (await client.get(f"/v1/receivables/{rid}", headers=own)).status_code == 401
    assert (await _rest_reach(client, b.api_key, uid, rid))["get"] == 404


@pytest.mark.parametrize(
    ("who", "target", "code"),
    [
        ("operator", "uid", "platform_required"),
        ("stranger", "uid", "not_found"),  # a platform the creditor never connected to
        ("own_token", "other", "not_found"),  # a creditor's token, another creditor
        ("platform", "unknown", "not_found"),
        ("platform", "wrong_type", "not_found"),
    ],
)
async def test_refusals_change_nothing(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    admin_headers: dict[str, str],
    who: str,
    target: str,
    code: str,
) -> None:
    a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "users:read receivables:read")
    stranger = await make_platform("Stranger C")
    headers = {
        "operator": admin_headers,
        "stranger": bearer(stranger.api_key),
        "own_token": bearer(tokens["access_token"]),
        "platform": bearer(b.api_key),
    }[who]
    other = (
        await client.post("/v1/users", json={"email": "bob@x.test"}, headers=bearer(a.api_key))
    ).json()["id"]
    named = {
        "uid": uid,
        "other": other,
        "unknown": "usr_doesnotexist",
        "wrong_type": gid("Receivable", rid),
    }[target]
    refused = await _disconnect(client, headers, named)
    assert refused["disconnected"] is False
    assert [e["code"] for e in refused["userErrors"]] == [code]
    assert await _live_tokens(db, b.platform.id) == 1
    assert (await _rest_reach(client, b.api_key, uid, rid))["get"] == 200


async def test_anonymous_is_refused(client: httpx.AsyncClient) -> None:
    body = await gql(client, DISCONNECT, {"v": {"id": "usr_x"}})
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


async def test_a_refresh_racing_the_disconnect_leaves_no_live_token(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    # A refresh that rotated the family while the disconnect ran must not leave its new token.
    _a, b, uid, _rid = await arrange(client, make_platform, db)
    for _ in range(5):
        tokens = await connect(client, b, "users:read")
        await asyncio.gather(
            refresh(client, b, tokens["refresh_token"]),
            _disconnect(client, bearer(b.api_key), uid),
        )
        assert await _live_tokens(db, b.platform.id) == 0
