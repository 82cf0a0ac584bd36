"""The receivable state machine through both faces, and the GraphQL graph of receivables."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import select, update

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from debtgraph.domain.receivables.models import Receivable, ReceivableEvent, ReceivableStatus
from debtgraph.domain.receivables.status_machine import TRANSITIONS, ReceivableAction
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user, creditor_token
from tests.integration.test_receivables import receivable_payload

ERRORS = "userErrors { field code message }"
RECEIVABLE = f"receivable {{ id status allowedActions recoveryProgress {{ amountRecovered amountRemaining awaitingDecision phase nextActionAt }} }} {ERRORS}"  # noqa: E501


async def _arrange(client: httpx.AsyncClient, make_platform: Any) -> tuple[Any, str, str]:
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    response = await client.post(
        "/v1/receivables", json=receivable_payload(uid), headers=bearer(acme.api_key)
    )
    return acme, uid, response.json()["id"]


async def op(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, input: dict[str, Any]
) -> dict[str, Any]:
    """Run one receivable mutation and return its payload."""
    input_type = {
        "receivableStart": "ReceivableIdInput",
        "receivablePayout": "ReceivableIdInput",
        "receivablePaymentRecord": "ReceivablePaymentRecordInput",
        "receivableDisputeOpen": "ReceivableReasonInput",
        "receivableEvidenceRequest": "ReceivableReasonInput",
        "receivableCancel": "ReceivableCancelInput",
        "receivablePartialPaymentDecide": "ReceivablePartialPaymentInput",
        "receivableUpdate": "ReceivableUpdateInput",
    }[name]
    body = await gql(
        client,
        f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ {RECEIVABLE} }} }}",
        {"i": input},
        headers,
    )
    assert "errors" not in body, body
    return body["data"][name]  # type: ignore[no-any-return]


async def test_full_lifecycle_with_partial_payment(
    client: httpx.AsyncClient,
    make_platform: Any,
    admin_headers: dict[str, str],
    db: Any,
    clock: Any,
) -> None:
    acme, _, rid = await _arrange(client, make_platform)
    started = await op(client, admin_headers, "receivableStart", {"id": rid})
    assert started["receivable"]["status"] == "IN_PROCESS"
    assert started["receivable"]["recoveryProgress"]["nextActionAt"] == "2026-12-22T12:00:00+00:00"
    partial = await op(
        client, admin_headers, "receivablePaymentRecord", {"id": rid, "amount": "200.00"}
    )
    progress = partial["receivable"]["recoveryProgress"]
    assert partial["receivable"]["status"] == "PAYMENT_RECEIVED"
    assert progress["awaitingDecision"] is True
    assert progress["amountRemaining"] == "1000.00"
    # Payout needs full payment.
    early = await op(client, admin_headers, "receivablePayout", {"id": rid})
    assert early["userErrors"][0]["code"] == "invalid_transition"
    # The creditor decides over REST to continue.
    decided = await client.post(
        f"/v1/receivables/{rid}/partial-payment",
        json={"action": "continue_recovery"},
        headers=bearer(acme.api_key),
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "in_process"
    rest = await op(client, admin_headers, "receivablePaymentRecord", {"id": rid, "amount": "1000"})
    assert rest["receivable"]["recoveryProgress"]["awaitingDecision"] is False
    paid = await op(client, admin_headers, "receivablePayout", {"id": rid})
    assert paid["receivable"]["status"] == "RECOVERED"
    assert paid["receivable"]["allowedActions"] == []
    async with db() as session:
        history = (
            await session.scalars(select(ReceivableEvent).order_by(ReceivableEvent.id))
        ).all()
        types = [e.type for e in (await session.scalars(select(Event).order_by(Event.id))).all()]
    assert [(h.action, h.to_status, h.actor_type) for h in history] == [
        ("created", "pending", "platform"),
        ("start", "in_process", "operator"),
        ("payment", "payment_received", "operator"),
        ("continue_recovery", "in_process", "platform"),
        ("payment", "payment_received", "operator"),
        ("payout", "recovered", "operator"),
    ]
    assert all(h.created_at == clock.now() for h in history)
    assert history[2].reason == "partial"
    assert types[-2:] == ["receivable.status_changed", "receivable.recovered"]
    assert types.count("receivable.status_changed") == 5


async def test_dispute_evidence_and_mark_complete(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    acme, _, rid = await _arrange(client, make_platform)
    await op(client, admin_headers, "receivableStart", {"id": rid})
    disputed = await op(
        client, admin_headers, "receivableDisputeOpen", {"id": rid, "reason": "never delivered"}
    )
    assert disputed["receivable"]["status"] == "DISPUTED"
    asked = await op(client, admin_headers, "receivableEvidenceRequest", {"id": rid})
    assert asked["receivable"]["status"] == "EVIDENCE_REQUESTED"
    bad = await client.post(
        f"/v1/receivables/{rid}/evidence",
        json={"documents": [{"type": "x"}]},
        headers=bearer(acme.api_key),
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "documents[0].file"
    evidence = await client.post(
        f"/v1/receivables/{rid}/evidence",
        json={
            "statement": "Signed delivery note attached",
            "documents": [{"type": "delivery_note", "file": "https://files.test/dn.pdf"}],
        },
        headers=bearer(acme.api_key),
    )
    assert evidence.status_code == 200
    assert evidence.json()["status"] == "in_process"
    assert evidence.json()["id"].startswith("evd_")
    await op(client, admin_headers, "receivablePaymentRecord", {"id": rid, "amount": "100"})
    complete = await client.post(
        f"/v1/receivables/{rid}/partial-payment",
        json={"action": "mark_complete", "notes": "ok"},
        headers=bearer(acme.api_key),
    )
    assert complete.json()["status"] == "recovered"
    assert complete.json()["recovery_progress"]["amount_recovered"] == 100.0


ACTIONS = [a for a in ReceivableAction]


async def _try(
    client: httpx.AsyncClient, admin: dict[str, str], key: str, rid: str, action: ReceivableAction
) -> str | None:
    """Run one action through its face; the error code, or None when it was applied."""
    platform = bearer(key)
    if action is ReceivableAction.CANCEL:
        r = await client.post(
            f"/v1/receivables/{rid}/cancel", json={"reason": "business_decision"}, headers=platform
        )
    elif action is ReceivableAction.SUBMIT_EVIDENCE:
        r = await client.post(
            f"/v1/receivables/{rid}/evidence", json={"statement": "x"}, headers=platform
        )
    elif action in (ReceivableAction.CONTINUE_RECOVERY, ReceivableAction.MARK_COMPLETE):
        r = await client.post(
            f"/v1/receivables/{rid}/partial-payment",
            json={"action": action.value},
            headers=platform,
        )
    else:
        name = {
            ReceivableAction.START: "receivableStart",
            ReceivableAction.PAYMENT: "receivablePaymentRecord",
            ReceivableAction.PAYOUT: "receivablePayout",
            ReceivableAction.DISPUTE: "receivableDisputeOpen",
            ReceivableAction.REQUEST_EVIDENCE: "receivableEvidenceRequest",
        }[action]
        # What is left of the 1200.00 once the arranged 100.00 is recovered.
        payload = (
            {"id": rid, "amount": "1100"} if action is ReceivableAction.PAYMENT else {"id": rid}
        )
        result = await op(client, admin, name, payload)
        return result["userErrors"][0]["code"] if result["userErrors"] else None
    if r.status_code in (200, 201):
        return None
    assert r.status_code == 409, r.text
    return r.json()["error"]["code"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("status", [s for s in ReceivableStatus])
async def test_every_action_from_every_status(
    client: httpx.AsyncClient,
    make_platform: Any,
    admin_headers: dict[str, str],
    db: Any,
    status: ReceivableStatus,
) -> None:
    acme, uid, _ = await _arrange(client, make_platform)
    rids = []
    for i, _action in enumerate(ACTIONS):
        payload = receivable_payload(uid)
        payload["invoice"]["numbers"] = [f"N-{i}"]
        rids.append(
            (
                await client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
            ).json()["id"]
        )
    # Arrange the state directly: a partial payment awaits a decision, a full one allows payout.
    async with db() as session:
        await session.execute(
            update(Receivable)
            .where(Receivable.public_id.in_(rids))
            .values(
                status=status.value,
                awaiting_decision=status is ReceivableStatus.PAYMENT_RECEIVED,
                amount_recovered=Decimal("100.00"),
            )
        )
        await session.commit()
    for rid, action in zip(rids, ACTIONS, strict=True):
        expected = TRANSITIONS.get((status, action))
        code = await _try(client, admin_headers, acme.api_key, rid, action)
        if expected is None or action is ReceivableAction.PAYOUT:
            # Payout also needs the full amount, which these receivables lack.
            assert code == "invalid_transition", (status, action)
            async with db() as session:
                row = await session.scalar(select(Receivable).where(Receivable.public_id == rid))
            assert row.status == status.value
        else:
            assert code is None, (status, action, code)


async def test_operator_mutations_are_operator_only(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme, _, rid = await _arrange(client, make_platform)
    query = f"mutation($i: ReceivableIdInput!) {{ receivableStart(input: $i) {{ {RECEIVABLE} }} }}"
    anonymous = await gql(client, query, {"i": {"id": rid}})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    platform = await gql(client, query, {"i": {"id": rid}}, bearer(acme.api_key))
    assert platform["data"]["receivableStart"]["userErrors"][0]["code"] == "unauthenticated"
    async with db() as session:
        assert (await session.scalar(select(Receivable))).status == "pending"


async def test_graph_of_users_receivables_contacts_and_events(
    client: httpx.AsyncClient, make_platform: Any, sql_counter: Any, admin_headers: dict[str, str]
) -> None:
    acme = await make_platform()
    other = await make_platform("Other")
    query = """
      query($first: Int) { receivables(first: $first) { totalCount pageInfo { hasNextPage }
        nodes { id status amount indemnityDue commission { rate } user { id email kybStatus
          capabilities { sendReceivables } receivables(first: 2) { totalCount nodes { id } } }
          contacts { nodes { id email level } }
          events { totalCount nodes { action actorType toStatus } } } } }
    """
    counts = []
    for n in (1, 4):
        uid = (await create_user(client, acme.api_key, {**_complete(f"u{n}@x.test")}))["id"]
        for i in range(n):
            payload = receivable_payload(uid)
            payload["invoice"]["numbers"] = [f"A-{n}-{i}"]
            r = await client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
            assert r.status_code == 201
        with sql_counter:
            body = await gql(client, query, {"first": 50}, bearer(acme.api_key))
        assert "errors" not in body, body
        counts.append(sql_counter.count)
    assert counts[0] == counts[1]
    data = body["data"]["receivables"]
    assert data["totalCount"] == 5
    node = data["nodes"][0]
    assert node["status"] == "PENDING"
    assert node["amount"] == "1200.00"
    assert node["indemnityDue"] == "40.00"
    assert node["user"]["kybStatus"] == "verified"
    assert node["user"]["receivables"]["totalCount"] == 4
    assert node["contacts"]["nodes"][0]["level"] == 1
    assert node["events"]["nodes"] == [
        {"action": "created", "actorType": "platform", "toStatus": "pending"}
    ]
    foreign = await gql(client, "{ receivables { totalCount } }", None, bearer(other.api_key))
    assert foreign["data"]["receivables"]["totalCount"] == 0
    # node() hides what is out of reach.
    lookup = "query($id: ID!) { node(id: $id) { id ... on Receivable { status } } }"
    assert (await gql(client, lookup, {"id": node["id"]}, bearer(acme.api_key)))["data"]["node"]
    hidden = await gql(client, lookup, {"id": node["id"]}, bearer(other.api_key))
    assert hidden["data"]["node"] is None
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    contact = node["contacts"]["nodes"][0]["id"]
    assert (await gql(client, lookup, {"id": contact}, bearer(other.api_key)))["data"][
        "node"
    ] is None
    assert (await gql(client, lookup, {"id": contact}, admin_headers))["data"]["node"]


def _complete(email: str) -> dict[str, Any]:
    from tests.integration.cleavr_support import complete_user

    return complete_user(email)


async def test_graphql_create_and_creditor_mutations(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    created = await gql(
        client,
        """mutation($i: UserCreateInput!) { userCreate(input: $i) { onboardingUrl
             user { id status requirements { currentlyDue } } userErrors { field code } } }""",
        {"i": {"email": "gq@x.test", "company": {"name": "GQ"}}},
        bearer(acme.api_key),
    )
    payload = created["data"]["userCreate"]
    assert payload["onboardingUrl"].startswith("http://testserver/onboarding/")
    assert payload["user"]["status"] == "onboarding"
    bad_user = await gql(
        client,
        "mutation($i: UserCreateInput!) { userCreate(input: $i) { user { id } userErrors { field code } } }",  # noqa: E501
        {"i": {"email": "nope"}},
        bearer(acme.api_key),
    )
    assert bad_user["data"]["userCreate"]["userErrors"] == [
        {"field": "email", "code": "invalid_email"}
    ]
    uid = (await create_user(client, acme.api_key))["id"]
    body = receivable_payload(uid)
    mutation = (
        "mutation($i: ReceivableCreateInput!) { receivableCreate(input: $i) { "
        + RECEIVABLE
        + " } }"
    )
    gql_input = {
        "userId": uid,
        "invoice": {
            "numbers": body["invoice"]["numbers"],
            "issueDate": "2026-09-01",
            "dueDate": "2026-10-01",
            "serviceDescription": "x",
            "amount": "1200.00",
            "amountBeforeTax": "1000",
            "taxAmount": "300",
        },
        "debtor": {"companyName": "Engie", "contacts": [{"email": "a@engie.test", "level": 11}]},
    }
    refused = await gql(client, mutation, {"i": gql_input}, bearer(acme.api_key))
    fields = [e["field"] for e in refused["data"]["receivableCreate"]["userErrors"]]
    assert fields == ["invoice.amount", "debtor.contacts[0].level"]
    gql_input["invoice"]["taxAmount"] = "200"
    gql_input["debtor"]["contacts"][0]["level"] = 3
    ok = await gql(client, mutation, {"i": gql_input}, bearer(acme.api_key))
    rid = ok["data"]["receivableCreate"]["receivable"]["id"]
    assert ok["data"]["receivableCreate"]["userErrors"] == []
    # Global ids and public ids both work as inputs.
    updated = await op(
        client, bearer(acme.api_key), "receivableUpdate", {"id": rid, "metadata": {"k": "v"}}
    )
    assert updated["userErrors"] == []
    cancelled = await op(
        client,
        bearer(acme.api_key),
        "receivableCancel",
        {"id": rid, "reason": "BUSINESS_DECISION"},
    )
    assert cancelled["receivable"]["status"] == "CANCELLED"
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == uid))
    reader = await creditor_token(db, clock, acme.platform.id, user.id, "receivables:read")
    denied = await op(
        client, bearer(reader), "receivableUpdate", {"id": rid, "metadata": {"k": "w"}}
    )
    assert denied["userErrors"][0]["code"] == "insufficient_scope"


async def _next(ws: Any, timeout: float = 5) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.receive_text(), timeout))
        if message["type"] not in ("ka", "ping", "pong"):
            return message  # type: ignore[no-any-return]


async def _subscribe(ws: Any, key: str, query: str) -> None:
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
    assert (await _next(ws))["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})


async def test_status_changed_subscription(
    client: httpx.AsyncClient, app: Any, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    acme, _, rid = await _arrange(client, make_platform)
    other = await make_platform("Other")
    everything = "subscription { receivableStatusChanged { id status } }"
    one = f'subscription {{ receivableStatusChanged(receivableId: "{rid}") {{ id status }} }}'
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as ws_client,
        aconnect_ws("/graphql", ws_client, subprotocols=["graphql-transport-ws"]) as mine,
        aconnect_ws("/graphql", ws_client, subprotocols=["graphql-transport-ws"]) as single,
        aconnect_ws("/graphql", ws_client, subprotocols=["graphql-transport-ws"]) as foreign,
    ):
        await _subscribe(mine, acme.api_key, everything)
        await _subscribe(single, acme.api_key, one)
        await _subscribe(foreign, other.api_key, everything)
        await asyncio.sleep(0.3)
        await op(client, admin_headers, "receivableStart", {"id": rid})
        for ws in (mine, single):
            message = await _next(ws, 10)
            assert message["type"] == "next", message
            changed = message["payload"]["data"]["receivableStatusChanged"]
            assert changed["status"] == "IN_PROCESS"
        with pytest.raises(TimeoutError):
            await _next(foreign, 0.5)


async def test_allowed_actions_are_those_the_caller_may_take(
    client: httpx.AsyncClient,
    make_platform: Any,
    admin_headers: dict[str, str],
    db: Any,
    clock: Any,
) -> None:
    acme, uid, pending = await _arrange(client, make_platform)
    payload = receivable_payload(uid)
    payload["invoice"]["numbers"] = ["N-partial"]
    partial = (
        await client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
    ).json()["id"]
    await op(client, admin_headers, "receivableStart", {"id": partial})
    await op(client, admin_headers, "receivablePaymentRecord", {"id": partial, "amount": "200"})
    async with db() as session:
        user = await session.scalar(select(User).where(User.public_id == uid))
    writer = await creditor_token(
        db, clock, acme.platform.id, user.id, "receivables:read receivables:write"
    )
    reader = await creditor_token(db, clock, acme.platform.id, user.id, "receivables:read")
    query = "{ receivables { nodes { status allowedActions } } }"

    async def offered(headers: dict[str, str]) -> dict[str, list[str]]:
        body = await gql(client, query, None, headers)
        assert "errors" not in body, body
        nodes = body["data"]["receivables"]["nodes"]
        return {n["status"]: n["allowedActions"] for n in nodes}

    # Only operators start, record payments, pay out, open disputes or ask for evidence.
    assert await offered(admin_headers) == {
        "PENDING": ["start", "cancel"],
        "PAYMENT_RECEIVED": ["continue_recovery", "mark_complete", "cancel"],
    }
    creditor_side = {
        "PENDING": ["cancel"],
        "PAYMENT_RECEIVED": ["continue_recovery", "mark_complete", "cancel"],
    }
    assert await offered(bearer(acme.api_key)) == creditor_side
    assert await offered(bearer(writer)) == creditor_side
    # A read-only token changes nothing, so nothing is offered to it.
    assert await offered(bearer(reader)) == {"PENDING": [], "PAYMENT_RECEIVED": []}
    # What is offered to the platform is what its face accepts; start is refused.
    start = await op(client, bearer(acme.api_key), "receivableStart", {"id": pending})
    assert start["userErrors"][0]["code"] == "unauthenticated"
