"""Reach, scopes and token life (PRODUCT.md §1) on REST and GraphQL.

Platform A creates the creditor; platform B is connected to it by OAuth with the scopes the
creditor granted, and only while that grant is live.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from strawberry import relay

from debtgraph.domain.creditors.models import User
from debtgraph.domain.receivables.models import Contact, Evidence, Receivable
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, count, creditor_token
from tests.integration.test_oauth import code_for, creditor, exchange
from tests.integration.test_receivables import receivable_payload
from tests.integration.test_receivables_graphql import op

pytestmark = pytest.mark.usefixtures("clock")


async def connect(client: httpx.AsyncClient, platform: Any, scope: str) -> dict[str, Any]:
    """Run the OAuth flow for the creditor (ada@x.test) and return the token response."""
    code = await code_for(client, platform, scope=scope)
    response = await exchange(client, platform, code)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def revoke(client: httpx.AsyncClient, platform: Any, token: str) -> None:
    """RFC 7009 revocation by the platform."""
    response = await client.post(
        "/oauth/revoke",
        data={
            "token": token,
            "client_id": platform.platform.client_id,
            "client_secret": platform.client_secret,
        },
    )
    assert response.status_code == 200, response.text


async def refresh(client: httpx.AsyncClient, platform: Any, token: str) -> httpx.Response:
    """A refresh_token grant."""
    return await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": platform.platform.client_id,
            "client_secret": platform.client_secret,
        },
    )


async def arrange(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> tuple[Any, Any, str, str]:
    """Platform A, its creditor (with a password) and a receivable A submitted; platform B."""
    a = await make_platform("Creator A")
    b = await make_platform("Other B")
    uid = await creditor(client, db, a.api_key)
    created = await client.post(
        "/v1/receivables", json=receivable_payload(uid), headers=bearer(a.api_key)
    )
    assert created.status_code == 201, created.text
    return a, b, uid, created.json()["id"]


async def _rest_reach(client: httpx.AsyncClient, key: str, uid: str, rid: str) -> dict[str, int]:
    """What a platform key can do with the creditor and its receivable, by status code."""
    headers = bearer(key)
    path = f"/v1/receivables/{rid}"
    listed = await client.get("/v1/receivables", headers=headers)
    create = await client.post(
        "/v1/receivables",
        json=receivable_payload(uid, force_proceed=True),
        headers=headers,
    )
    return {
        "user": (await client.get(f"/v1/users/{uid}", headers=headers)).status_code,
        "get": (await client.get(path, headers=headers)).status_code,
        "list": len(listed.json()["data"]),
        "patch": (
            await client.patch(path, json={"metadata": {"b": "1"}}, headers=headers)
        ).status_code,
        "contact": (
            await client.post(f"{path}/contacts", json={"email": "b@debtor.test"}, headers=headers)
        ).status_code,
        "create": create.status_code,
        "cancel": (
            await client.post(f"{path}/cancel", json={"reason": "other"}, headers=headers)
        ).status_code,
    }


NOTHING = {
    "user": 404,
    "get": 404,
    "list": 0,
    "patch": 404,
    "contact": 404,
    "create": 400,
    "cancel": 404,
}


# --- Item 2: a connected platform has only the granted scopes, only while the grant lives ----


async def test_connected_platform_gets_only_granted_scopes_until_revoked_rest(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "users:read")
    # users:read only: B reads the user, nothing about its receivables, and cannot write.
    assert await _rest_reach(client, b.api_key, uid, rid) == {**NOTHING, "user": 200}
    await revoke(client, b, tokens["refresh_token"])
    assert await _rest_reach(client, b.api_key, uid, rid) == NOTHING
    async with db() as session:
        row = await session.scalar(select(Receivable).where(Receivable.public_id == rid))
        assert row is not None
        assert (row.status, row.metadata_) == ("pending", {"order": "42"})
    assert await count(db, Receivable) == 1
    assert await count(db, Contact) == 1
    # The creator keeps its full reach.
    creator = await client.get(f"/v1/receivables/{rid}", headers=bearer(a.api_key))
    assert creator.status_code == 200


async def test_connected_platform_sees_receivables_another_platform_submitted(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    _, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "users:read receivables:read")
    headers = bearer(b.api_key)
    assert (await client.get(f"/v1/receivables/{rid}", headers=headers)).status_code == 200
    listed = await client.get("/v1/receivables", headers=headers)
    assert [r["id"] for r in listed.json()["data"]] == [rid]
    # Read is not write.
    patch = await client.patch(
        f"/v1/receivables/{rid}", json={"metadata": {"b": "1"}}, headers=headers
    )
    assert patch.status_code == 404
    # A rotated refresh token keeps the grant; revoking the access token (which also kills its
    # refresh token) ends it.
    rotated = await refresh(client, b, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert (await client.get(f"/v1/receivables/{rid}", headers=headers)).status_code == 200
    await revoke(client, b, rotated.json()["access_token"])
    assert (await client.get(f"/v1/receivables/{rid}", headers=headers)).status_code == 404
    assert (await client.get(f"/v1/users/{uid}", headers=headers)).status_code == 404


async def test_expired_grant_ends_reach(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    _, b, uid, _ = await arrange(client, make_platform, db)
    await connect(client, b, "users:read")
    assert (await client.get(f"/v1/users/{uid}", headers=bearer(b.api_key))).status_code == 200
    clock.advance(timedelta(days=31))
    assert (await client.get(f"/v1/users/{uid}", headers=bearer(b.api_key))).status_code == 404


RECEIVABLES_Q = "query { receivables { nodes { id } } }"
NODE_USER_Q = "query($id: ID!) { node(id: $id) { ... on User { id email kybStatus } } }"
NODE_RECEIVABLE_Q = (
    "query($id: ID!) { node(id: $id) { ... on Receivable { id user { email } "
    "contacts { totalCount } } } }"
)
UPDATE_M = (
    "mutation($i: ReceivableUpdateInput!) { receivableUpdate(input: $i) "
    "{ receivable { id } userErrors { code } } }"
)
CREATE_M = (
    "mutation($i: ReceivableCreateInput!) { receivableCreate(input: $i) "
    "{ receivable { id } userErrors { field code } } }"
)


def _gql_create_input(uid: str) -> dict[str, Any]:
    payload = receivable_payload(uid, force_proceed=True)
    invoice = payload["invoice"]
    return {
        "userId": uid,
        "forceProceed": True,
        "invoice": {
            "numbers": invoice["numbers"],
            "issueDate": invoice["issue_date"],
            "dueDate": invoice["due_date"],
            "serviceDescription": invoice["service_description"],
            "amount": str(invoice["amount"]),
        },
        "debtor": {
            "companyName": payload["debtor"]["company_name"],
            "contacts": [{"email": "x@debtor.test"}],
        },
    }


async def _graph_reach(client: httpx.AsyncClient, key: str, uid: str, rid: str) -> dict[str, Any]:
    headers = bearer(key)
    user_gid = relay.to_base64("User", uid)
    rcv_gid = relay.to_base64("Receivable", rid)
    listed = await gql(client, RECEIVABLES_Q, headers=headers)
    node_user = await gql(client, NODE_USER_Q, {"id": user_gid}, headers)
    node_rcv = await gql(client, NODE_RECEIVABLE_Q, {"id": rcv_gid}, headers)
    update = await gql(client, UPDATE_M, {"i": {"id": rcv_gid, "metadata": {"b": 1}}}, headers)
    create = await gql(client, CREATE_M, {"i": _gql_create_input(uid)}, headers)
    return {
        "list": len(listed["data"]["receivables"]["nodes"]),
        "user": node_user["data"]["node"] is not None,
        "receivable": node_rcv["data"]["node"] is not None,
        "update": update["data"]["receivableUpdate"]["userErrors"][0]["code"]
        if update["data"]["receivableUpdate"]["userErrors"]
        else "ok",
        "create": create["data"]["receivableCreate"]["userErrors"][0]["code"]
        if create["data"]["receivableCreate"]["userErrors"]
        else "ok",
    }


async def test_connected_platform_gets_only_granted_scopes_until_revoked_graphql(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "users:read")
    nothing = {
        "list": 0,
        "user": False,
        "receivable": False,
        "update": "not_found",
        "create": "user_not_found",
    }
    assert await _graph_reach(client, b.api_key, uid, rid) == {**nothing, "user": True}
    await revoke(client, b, tokens["refresh_token"])
    assert await _graph_reach(client, b.api_key, uid, rid) == nothing
    assert await count(db, Receivable) == 1
    creator = await _graph_reach(client, a.api_key, uid, rid)
    assert creator["user"]
    assert creator["receivable"]
    assert creator["update"] == "ok"


async def test_receivable_user_needs_users_read_over_that_creditor(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    _, b, uid, rid = await arrange(client, make_platform, db)
    await connect(client, b, "receivables:read")
    body = await gql(
        client, NODE_RECEIVABLE_Q, {"id": relay.to_base64("Receivable", rid)}, bearer(b.api_key)
    )
    assert body["data"]["node"]["id"] == relay.to_base64("Receivable", rid)
    assert body["data"]["node"]["user"] is None
    user_q = "query($id: ID!) { node(id: $id) { ... on User { receivables { totalCount } } } }"
    user = await gql(client, user_q, {"id": relay.to_base64("User", uid)}, bearer(b.api_key))
    assert user["data"]["node"] is None


# --- Item 8: GraphQL needs users:read for users, as REST does --------------------------------


async def test_reports_only_token_reads_no_user_on_graphql(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    a, _, uid, rid = await arrange(client, make_platform, db)
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == uid))
    token = await creditor_token(db, clock, a.platform.id, user.id, "reports:read")
    headers = bearer(token)
    assert (await client.get(f"/v1/users/{uid}", headers=headers)).status_code == 403
    me = await gql(
        client, "query { me { id email kybStatus requirements { currentlyDue } } }", headers=headers
    )
    assert me["data"]["me"] is None
    assert me["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = await gql(client, NODE_USER_Q, {"id": relay.to_base64("User", uid)}, headers)
    assert node["data"]["node"] is None
    assert "ada@x.test" not in str(node)
    both = await creditor_token(db, clock, a.platform.id, user.id, "reports:read receivables:read")
    rcv = await gql(
        client, NODE_RECEIVABLE_Q, {"id": relay.to_base64("Receivable", rid)}, bearer(both)
    )
    assert rcv["data"]["node"]["user"] is None
    assert rcv["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "ada@x.test" not in str(rcv)
    reader = await creditor_token(db, clock, a.platform.id, user.id, "users:read")
    ok = await gql(client, "query { me { email } }", headers=bearer(reader))
    assert ok["data"]["me"]["email"] == "ada@x.test"


# --- Item 10: suspension ends the creditor's tokens for good ---------------------------------

SUSPEND_M = (
    "mutation($i: UserIdInput!) { userSuspend(input: $i) { user { status } userErrors { code } } }"
)
REINSTATE_M = "mutation($i: UserIdInput!) { userReinstate(input: $i) { user { status } userErrors { code } } }"  # noqa: E501


async def test_suspended_creditor_tokens_stop_and_stay_stopped(
    client: httpx.AsyncClient, make_platform: Any, db: Any, admin_headers: dict[str, str]
) -> None:
    a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, a, "users:read receivables:read receivables:write")
    b_tokens = await connect(client, b, "users:read")
    access = bearer(tokens["access_token"])
    assert (await client.get(f"/v1/users/{uid}", headers=access)).status_code == 200
    pending_code = await code_for(client, a, scope="users:read")
    suspended = await gql(client, SUSPEND_M, {"i": {"id": uid}}, admin_headers)
    assert suspended["data"]["userSuspend"]["user"]["status"] == "suspended"

    async def locked_out() -> None:
        assert (await client.get(f"/v1/users/{uid}", headers=access)).status_code == 401
        contact = await client.post(
            f"/v1/receivables/{rid}/contacts", json={"email": "n@debtor.test"}, headers=access
        )
        assert contact.status_code == 401
        me = await gql(client, "query { me { email } }", headers=access)
        assert me["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        refused = await refresh(client, a, tokens["refresh_token"])
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        # B's grant was the creditor's too: it ended with the suspension.
        b_user = await client.get(f"/v1/users/{uid}", headers=bearer(b.api_key))
        assert b_user.status_code == 404

    await locked_out()
    reinstated = await gql(client, REINSTATE_M, {"i": {"id": uid}}, admin_headers)
    assert reinstated["data"]["userReinstate"]["user"]["status"] == "active"
    await locked_out()
    # A code issued before the suspension is spent too.
    late = await exchange(client, a, pending_code)
    assert late.status_code == 400
    assert (await refresh(client, b, b_tokens["refresh_token"])).status_code == 400
    assert await count(db, Contact) == 1
    # The creator platform still reads its creditor with its key.
    assert (await client.get(f"/v1/users/{uid}", headers=bearer(a.api_key))).status_code == 200
    # Signing in again after reinstatement gives working tokens.
    fresh = await connect(client, a, "users:read")
    ok = await client.get(f"/v1/users/{uid}", headers=bearer(fresh["access_token"]))
    assert ok.status_code == 200


# --- Item 12: a write scope sees what the write returns, and refusals change nothing ----------


async def _disputed(
    client: httpx.AsyncClient, make_platform: Any, db: Any, admin_headers: dict[str, str]
) -> tuple[Any, str, str, int]:
    a, _, uid, rid = await arrange(client, make_platform, db)
    await op(client, admin_headers, "receivableStart", {"id": rid})
    await op(client, admin_headers, "receivableDisputeOpen", {"id": rid, "reason": "no"})
    await op(client, admin_headers, "receivableEvidenceRequest", {"id": rid})
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == uid))
    return a, uid, rid, user.id


async def test_write_only_token_gets_its_evidence_back_rest(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, admin_headers: Any
) -> None:
    a, _, rid, user_id = await _disputed(client, make_platform, db, admin_headers)
    reader = await creditor_token(db, clock, a.platform.id, user_id, "receivables:read")
    refused = await client.post(
        f"/v1/receivables/{rid}/evidence",
        json={"statement": "Delivery note"},
        headers={**bearer(reader), "Idempotency-Key": "ev-1"},
    )
    assert refused.status_code == 403
    assert await count(db, Evidence) == 0
    async with db() as session:
        row = await session.scalar(select(Receivable).where(Receivable.public_id == rid))
        assert row is not None
        assert row.status == "evidence_requested"
    writer = await creditor_token(db, clock, a.platform.id, user_id, "receivables:write")
    headers = {**bearer(writer), "Idempotency-Key": "ev-2"}
    body = {"statement": "Delivery note"}
    saved = await client.post(f"/v1/receivables/{rid}/evidence", json=body, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["status"] == "in_process"
    assert saved.json()["receivable_id"] == rid
    replay = await client.post(f"/v1/receivables/{rid}/evidence", json=body, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await count(db, Evidence) == 1


CONTACT_M = (
    "mutation($i: ReceivableContactAddInput!) { receivableContactAdd(input: $i) "
    "{ contact { id email } receivable { id status } userErrors { code } } }"
)
EVIDENCE_M = (
    "mutation($i: ReceivableEvidenceSubmitInput!) { receivableEvidenceSubmit(input: $i) "
    "{ evidence { id } receivable { id status } userErrors { code } } }"
)


async def test_write_only_token_gets_its_changes_back_graphql(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any, admin_headers: Any
) -> None:
    a, _, rid, user_id = await _disputed(client, make_platform, db, admin_headers)
    gid = relay.to_base64("Receivable", rid)
    reader = bearer(await creditor_token(db, clock, a.platform.id, user_id, "receivables:read"))
    contact_input = {"receivableId": gid, "contact": {"email": "new@debtor.test"}}
    refused = await gql(client, CONTACT_M, {"i": contact_input}, reader)
    assert refused["data"]["receivableContactAdd"]["userErrors"] == [{"code": "insufficient_scope"}]
    assert await count(db, Contact) == 1
    writer = bearer(await creditor_token(db, clock, a.platform.id, user_id, "receivables:write"))
    added = await gql(client, CONTACT_M, {"i": contact_input}, writer)
    assert "errors" not in added, added
    payload = added["data"]["receivableContactAdd"]
    assert payload["userErrors"] == []
    assert payload["contact"]["email"] == "new@debtor.test"
    assert payload["receivable"]["id"] == gid
    evidence = await gql(client, EVIDENCE_M, {"i": {"id": gid, "statement": "note"}}, writer)
    assert "errors" not in evidence, evidence
    assert evidence["data"]["receivableEvidenceSubmit"]["receivable"]["status"] == "IN_PROCESS"
    assert await count(db, Contact) == 2


# --- Item 14: operator tokens expire and die with a password reset ----------------------------


async def test_operator_token_expires_after_operator_token_ttl(
    client: httpx.AsyncClient, admin_headers: dict[str, str], clock: Any, settings: Any
) -> None:
    assert settings.operator_token_ttl_seconds == 604800
    clock.advance(timedelta(seconds=604800 - 1))
    assert (await client.get("/api/user", headers=admin_headers)).status_code == 200
    me = await gql(client, "query { me { email } }", headers=admin_headers)
    assert me["data"]["me"]["email"] == "admin@tether.test"
    clock.advance(timedelta(seconds=1))
    expired = await client.get("/api/user", headers=admin_headers)
    assert expired.status_code == 401
    assert expired.json() == {"message": "Unauthenticated.", "status": 401}
    me = await gql(client, "query { me { email } }", headers=admin_headers)
    assert me["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_operator_password_reset_revokes_its_tokens(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, clock: Any
) -> None:
    from debtgraph.domain.creditors.operators import upsert_operator

    other = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "password"}
    )
    second = bearer(other.json()["token"])
    assert (await client.get("/api/user", headers=second)).status_code == 200
    async with db() as session:
        # What ``debtgraph create-admin`` does for an existing operator.
        await upsert_operator(session, clock, "admin@tether.test", "n3w-passw0rd", "Admin User")
        await session.commit()
    for headers in (admin_headers, second):
        assert (await client.get("/api/user", headers=headers)).status_code == 401
    old = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "password"}
    )
    assert old.status_code == 422
    new = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "n3w-passw0rd"}
    )
    assert (await client.get("/api/user", headers=bearer(new.json()["token"]))).status_code == 200


async def test_an_idempotent_replay_asks_the_reach_again(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    # The replay asked the scopes only: a platform whose grant had ended got the receivable it
    # created, contacts included, back by repeating the key, where a fresh request is refused.
    _a, b, uid, rid = await arrange(client, make_platform, db)
    tokens = await connect(client, b, "users:read receivables:read receivables:write")
    headers = {**bearer(b.api_key), "Idempotency-Key": "k-reach"}
    payload = receivable_payload(uid, force_proceed=True)
    payload["invoice"]["numbers"] = ["B-1"]
    created = await client.post("/v1/receivables", json=payload, headers=headers)
    assert created.status_code == 201, created.text
    cancel = {**headers, "Idempotency-Key": "k-cancel"}
    path = f"/v1/receivables/{rid}/cancel"
    first = await client.post(path, json={"reason": "business_decision"}, headers=cancel)
    assert first.status_code == 200, first.text
    replayed = await client.post("/v1/receivables", json=payload, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    await revoke(client, b, tokens["refresh_token"])
    again = await client.post("/v1/receivables", json=payload, headers=headers)
    assert again.status_code == 404, again.text
    assert again.json()["error"]["code"] == "not_found"
    assert "idempotent-replayed" not in again.headers
    cancelled = await client.post(path, json={"reason": "business_decision"}, headers=cancel)
    assert cancelled.status_code == 404, cancelled.text
    assert cancelled.json() == {"error": {"code": "not_found", "message": "Receivable not found."}}
