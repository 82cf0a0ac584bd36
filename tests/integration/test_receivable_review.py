"""Review findings on receivables: payments held to the amount remaining, the contact cap.

A payment above what remains due is refused on ``amount`` (GraphQL only: no REST path records
payments); a contact past the creation cap (``MAX_CONTACTS``) is refused on both faces with the
creation's own error. Both hold under concurrent requests: the receivable's row is locked from
before the check to the commit (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.receivables.models import Contact, Receivable, ReceivableEvent
from debtgraph.domain.receivables.parsing import MAX_CONTACTS
from debtgraph.resolvers import receivables
from debtgraph.resolvers.context import Context, UnitOfWork
from debtgraph.resolvers.errors import InvalidTransition
from debtgraph.resolvers.principal import Principal, PrincipalKind
from debtgraph.server.app import Runtime
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user
from tests.integration.test_receivables import receivable_payload

ERRORS = "userErrors { field code message }"
PROGRESS = "recoveryProgress { amountRecovered amountRemaining }"
PAY = (
    "mutation($i: ReceivablePaymentRecordInput!) { receivablePaymentRecord(input: $i) "
    f"{{ receivable {{ status {PROGRESS} }} {ERRORS} }} }}"
)
DECIDE = (
    "mutation($i: ReceivablePartialPaymentInput!) { receivablePartialPaymentDecide(input: $i) "
    f"{{ receivable {{ status }} {ERRORS} }} }}"
)
START = (
    "mutation($i: ReceivableIdInput!) { receivableStart(input: $i) "
    f"{{ receivable {{ status }} {ERRORS} }} }}"
)
ADD_CONTACT = (
    "mutation($i: ReceivableContactAddInput!) { receivableContactAdd(input: $i) "
    f"{{ contact {{ email }} receivable {{ id }} {ERRORS} }} }}"
)
CAP_ERROR = {
    "field": "debtor.contacts",
    "code": "too_many",
    "message": f"debtor.contacts must contain at most {MAX_CONTACTS} items.",
}


def _remaining_error(remaining: str) -> dict[str, str]:
    return {
        "field": "amount",
        "code": "out_of_range",
        "message": f"amount must not exceed {remaining}, the amount remaining on this receivable.",
    }


async def _receivable(
    client: httpx.AsyncClient, make_platform: Any, *, contacts: int = 1, **invoice: Any
) -> tuple[Any, str]:
    """A platform and one receivable of its creditor (1200.00 unless ``invoice`` says)."""
    acme = await make_platform()
    uid = (await create_user(client, acme.api_key))["id"]
    payload = receivable_payload(uid)
    payload["invoice"].update(invoice)
    payload["debtor"]["contacts"] = [{"email": f"c{n}@engie.test"} for n in range(contacts)]
    response = await client.post("/v1/receivables", json=payload, headers=bearer(acme.api_key))
    assert response.status_code == 201, response.text
    return acme, response.json()["id"]


async def _pay(
    client: httpx.AsyncClient, headers: dict[str, str], rid: str, amount: str
) -> dict[str, Any]:
    body = await gql(client, PAY, {"i": {"id": rid, "amount": amount}}, headers)
    assert "errors" not in body, body
    return body["data"]["receivablePaymentRecord"]  # type: ignore[no-any-return]


async def _started(
    client: httpx.AsyncClient, make_platform: Any, headers: dict[str, str], **invoice: Any
) -> tuple[Any, str]:
    acme, rid = await _receivable(client, make_platform, **invoice)
    started = await gql(client, START, {"i": {"id": rid}}, headers)
    assert started["data"]["receivableStart"]["receivable"]["status"] == "IN_PROCESS"
    return acme, rid


async def _payments(db: Any, rid: str) -> list[tuple[str | None, dict[str, Any]]]:
    async with db() as session:
        rows = await session.execute(
            select(ReceivableEvent.reason, ReceivableEvent.data)
            .join(Receivable, Receivable.id == ReceivableEvent.receivable_id)
            .where(Receivable.public_id == rid, ReceivableEvent.action == "payment")
            .order_by(ReceivableEvent.id)
        )
        return [(reason, data) for reason, data in rows]


async def _row(db: Any, rid: str) -> Receivable:
    async with db() as session:
        row = await session.scalar(select(Receivable).where(Receivable.public_id == rid))
    assert row is not None
    return row


# --- F1: a payment is at most the amount remaining ------------------------------------------


async def test_a_payment_above_the_whole_amount_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], db: Any
) -> None:
    acme, rid = await _started(
        client, make_platform, admin_headers, amount=1000.0, amount_before_tax=None, tax_amount=None
    )
    async with db() as session:
        events_before = await session.scalar(select(func.count()).select_from(Event))

    refused = await _pay(client, admin_headers, rid, "2000.00")

    assert refused == {"receivable": None, "userErrors": [_remaining_error("1000.00")]}
    row = await _row(db, rid)
    assert (row.status, row.amount_recovered, row.awaiting_decision) == (
        "in_process",
        Decimal("0.00"),
        False,
    )
    assert await _payments(db, rid) == []
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == events_before
    rest = (await client.get(f"/v1/receivables/{rid}", headers=bearer(acme.api_key))).json()
    assert rest["recovery_progress"]["amount_recovered"] == 0.0
    assert rest["recovery_progress"]["amount_remaining"] == 1000.0
    stats = (await client.get("/v1/reports/stats", headers=bearer(acme.api_key))).json()
    assert stats["total_amount_recovered"] == 0.0


async def test_after_a_partial_payment_only_the_rest_can_be_paid(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], db: Any
) -> None:
    """The review's second case: 500.00, 200.00 paid, then 400.00 offered where 300.00 remain."""
    acme, rid = await _started(
        client, make_platform, admin_headers, amount=500.0, amount_before_tax=None, tax_amount=None
    )
    partial = await _pay(client, admin_headers, rid, "200.00")
    assert partial["receivable"]["recoveryProgress"]["amountRemaining"] == "300.00"
    decided = await client.post(
        f"/v1/receivables/{rid}/partial-payment",
        json={"action": "continue_recovery"},
        headers=bearer(acme.api_key),
    )
    assert decided.status_code == 200, decided.text

    refused = await _pay(client, admin_headers, rid, "400.00")
    assert refused == {"receivable": None, "userErrors": [_remaining_error("300.00")]}
    row = await _row(db, rid)
    assert (row.status, row.amount_recovered) == ("in_process", Decimal("200.00"))

    paid = await _pay(client, admin_headers, rid, "300.00")
    assert paid["userErrors"] == []
    assert paid["receivable"] == {
        "status": "PAYMENT_RECEIVED",
        "recoveryProgress": {"amountRecovered": "500.00", "amountRemaining": "0.00"},
    }
    assert [reason for reason, _ in await _payments(db, rid)] == ["partial", "full"]
    stats = (await client.get("/v1/reports/stats", headers=bearer(acme.api_key))).json()
    assert stats["total_amount_recovered"] == 500.0


async def test_one_document_cannot_pay_twice_past_the_balance(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], db: Any
) -> None:
    """Payment, decision, payment in one document: the second is judged on what the first left."""
    _, rid = await _started(client, make_platform, admin_headers)
    body = await gql(
        client,
        "mutation($p: ReceivablePaymentRecordInput!, $d: ReceivablePartialPaymentInput!) {"
        f" a: receivablePaymentRecord(input: $p) {{ {ERRORS} }}"
        f" b: receivablePartialPaymentDecide(input: $d) {{ {ERRORS} }}"
        f" c: receivablePaymentRecord(input: $p) {{ {ERRORS} }} }}",
        {
            "p": {"id": rid, "amount": "700.00"},
            "d": {"id": rid, "action": "CONTINUE_RECOVERY"},
        },
        admin_headers,
    )
    data = body["data"]
    assert (data["a"]["userErrors"], data["b"]["userErrors"]) == ([], [])
    assert data["c"]["userErrors"] == [_remaining_error("500.00")]
    row = await _row(db, rid)
    assert (row.status, row.amount_recovered) == ("in_process", Decimal("700.00"))


async def test_concurrent_payments_record_one(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], db: Any
) -> None:
    """Eight payments of 700.00 at once on 1200.00: one is recorded, the rest are refused."""
    _, rid = await _started(client, make_platform, admin_headers)

    answers = await asyncio.gather(*(_pay(client, admin_headers, rid, "700.00") for _ in range(8)))

    codes = Counter(a["userErrors"][0]["code"] if a["userErrors"] else None for a in answers)
    assert codes == {None: 1, "invalid_transition": 7}, answers
    row = await _row(db, rid)
    assert (row.status, row.amount_recovered) == ("payment_received", Decimal("700.00"))
    assert len(await _payments(db, rid)) == 1


async def test_a_payment_judges_the_receivable_as_committed_not_as_the_session_last_saw_it(
    client: httpx.AsyncClient,
    make_platform: Any,
    admin_headers: dict[str, str],
    admin: Any,
    runtime: Runtime,
    db: Any,
) -> None:
    """A unit of work that already holds the receivable (an earlier mutation of its document)
    must read it again under the lock: another request may have paid in between."""
    _, rid = await _started(client, make_platform, admin_headers)
    ctx = Context(
        services=runtime.services,
        uow=UnitOfWork(runtime.services),
        principal=Principal(PrincipalKind.OPERATOR, user_id=admin.id),
    )
    try:
        first = await receivables.record_payment(ctx, rid, Decimal("200.00"))
        await receivables.decide_partial_payment(ctx, rid, {"action": "continue_recovery"})
        assert (first.status, first.amount_recovered) == ("in_process", Decimal("200.00"))
        # Meanwhile another request pays the rest.
        other = await _pay(client, admin_headers, rid, "1000.00")
        assert other["userErrors"] == [], other

        try:
            await receivables.record_payment(ctx, rid, Decimal("1000.00"))
        except InvalidTransition:
            pass
        else:
            raise AssertionError("a payment on a receivable already paid in full was recorded")
    finally:
        await ctx.uow.end()
    row = await _row(db, rid)
    assert (row.status, row.amount_recovered) == ("payment_received", Decimal("1200.00"))
    assert [reason for reason, _ in await _payments(db, rid)] == ["partial", "full"]


# --- F7: a receivable holds at most MAX_CONTACTS contacts, however they are added ------------


async def _contacts(db: Any, rid: str) -> int:
    async with db() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(Contact)
            .join(Receivable, Receivable.id == Contact.receivable_id)
            .where(Receivable.public_id == rid)
        )
    return int(held or 0)


async def _contact_history(db: Any, rid: str) -> int:
    async with db() as session:
        held = await session.scalar(
            select(func.count())
            .select_from(ReceivableEvent)
            .join(Receivable, Receivable.id == ReceivableEvent.receivable_id)
            .where(Receivable.public_id == rid, ReceivableEvent.action == "contact_added")
        )
    return int(held or 0)


async def test_rest_refuses_a_contact_past_the_cap_with_the_creation_error(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme, rid = await _receivable(client, make_platform, contacts=MAX_CONTACTS - 1)
    headers = bearer(acme.api_key)
    last = await client.post(
        f"/v1/receivables/{rid}/contacts", json={"email": "last@engie.test"}, headers=headers
    )
    assert last.status_code == 201, last.text

    refused = await client.post(
        f"/v1/receivables/{rid}/contacts", json={"email": "extra@engie.test"}, headers=headers
    )

    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert {k: error[k] for k in ("field", "code", "message")} == CAP_ERROR
    assert await _contacts(db, rid) == MAX_CONTACTS
    assert await _contact_history(db, rid) == 1
    # The same words as creation gives for one contact too many.
    shown = (await client.get(f"/v1/receivables/{rid}", headers=headers)).json()
    payload = receivable_payload(shown["user_id"])
    payload["debtor"]["contacts"] = [{"email": f"c{n}@engie.test"} for n in range(MAX_CONTACTS + 1)]
    created = await client.post("/v1/receivables", json=payload, headers=headers)
    assert created.status_code == 400
    first = created.json()["error"]
    assert {k: first[k] for k in ("field", "code", "message")} == CAP_ERROR


async def test_graphql_refuses_a_contact_past_the_cap(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme, rid = await _receivable(client, make_platform, contacts=MAX_CONTACTS)

    body = await gql(
        client,
        ADD_CONTACT,
        {"i": {"receivableId": rid, "contact": {"email": "extra@engie.test"}}},
        bearer(acme.api_key),
    )

    assert body["data"]["receivableContactAdd"] == {
        "contact": None,
        "receivable": None,
        "userErrors": [CAP_ERROR],
    }
    assert await _contacts(db, rid) == MAX_CONTACTS
    assert await _contact_history(db, rid) == 0


async def test_a_closed_receivable_still_answers_invalid_transition_at_the_cap(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme, rid = await _receivable(client, make_platform, contacts=MAX_CONTACTS)
    headers = bearer(acme.api_key)
    cancelled = await client.post(
        f"/v1/receivables/{rid}/cancel", json={"reason": "paid_directly"}, headers=headers
    )
    assert cancelled.status_code == 200
    refused = await client.post(
        f"/v1/receivables/{rid}/contacts", json={"email": "extra@engie.test"}, headers=headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"


async def test_concurrent_contact_adds_one_short_of_the_cap_add_one(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme, rid = await _receivable(client, make_platform, contacts=MAX_CONTACTS - 1)
    headers = bearer(acme.api_key)

    def rest(n: int) -> Any:
        return client.post(
            f"/v1/receivables/{rid}/contacts", json={"email": f"r{n}@engie.test"}, headers=headers
        )

    async def graph(n: int) -> int:
        body = await gql(
            client,
            ADD_CONTACT,
            {"i": {"receivableId": rid, "contact": {"email": f"g{n}@engie.test"}}},
            headers,
        )
        errors = body["data"]["receivableContactAdd"]["userErrors"]
        assert errors in ([], [CAP_ERROR]), errors
        return 400 if errors else 201

    answers = await asyncio.gather(*(rest(n) for n in range(4)), *(graph(n) for n in range(4)))

    statuses = Counter(a if isinstance(a, int) else a.status_code for a in answers)
    assert statuses == {201: 1, 400: 7}, [a if isinstance(a, int) else a.text for a in answers]
    for answer in answers:
        if isinstance(answer, httpx.Response) and answer.status_code == 400:
            assert answer.json()["error"]["code"] == "too_many"
    assert await _contacts(db, rid) == MAX_CONTACTS
    assert await _contact_history(db, rid) == 1


async def test_a_receivable_cancelled_after_a_partial_payment_awaits_no_decision(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str], db: Any
) -> None:
    # The flag outlived the state it belongs to: a client prompting the creditor for the
    # decision did so on a receivable where every decision could only answer 409.
    acme, rid = await _started(
        client, make_platform, admin_headers, amount=1000.0, amount_before_tax=None, tax_amount=None
    )
    assert (await _pay(client, admin_headers, rid, "100.00"))["userErrors"] == []
    assert (await _row(db, rid)).awaiting_decision is True
    cancelled = await client.post(
        f"/v1/receivables/{rid}/cancel",
        json={"reason": "paid_directly"},
        headers=bearer(acme.api_key),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["recovery_progress"]["awaiting_decision"] is False
    assert (await _row(db, rid)).awaiting_decision is False
