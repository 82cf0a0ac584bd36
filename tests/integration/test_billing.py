"""Billing through the sandbox gateway: start, asynchronous answers, retries by the cron with a
moved clock, voids, the double-charge guard under concurrency, and who may do what."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select, update

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.debtors.models import (
    BlacklistedIban,
    Debtor,
    FinalDecline,
    billable_condition,
)
from debtgraph.domain.payments.models import BillingAttempt
from debtgraph.jobs.registry import TASKS
from tests.conftest import gql
from tests.integration.billing_support import (
    RETRY,
    ROWS,
    VOID,
    attempts,
    billing_upload,
    debtors_of,
    gid,
    start,
)
from tests.integration.test_mutation_access import changed_tables, snapshot, voidable_attempt
from tests.integration.uploads_support import UNAUTH

OPERATOR_ONLY_MESSAGE = "Only operators may use this field."


async def _retry_cron(runtime: Any) -> int:
    return int(await TASKS["billing.retry"]({"services": runtime.services}))


async def _login(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/api/login", json={"email": "admin@tether.test", "password": "password"}
    )
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _attempt_count(db: Any) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(BillingAttempt)) or 0)


async def test_start_answers_asynchronously_and_retries_on_the_clock(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    drain: Any,
    runtime: Any,
    clock: Any,
    db: Any,
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    assert stats.json()["data"]["ready_for_sync"] == 5

    body = await start(client, admin_headers, upload_id)
    payload = body["data"]["billingStart"]
    assert payload["userErrors"] == []
    assert payload["started"] == 5
    assert {a["status"] for a in payload["billingAttempts"]} == {"PENDING"}
    await drain()

    rows = {a["debtor_id"]: a for a in await attempts(client, admin_headers, upload_id=upload_id)}
    debtors = await debtors_of(client, admin_headers, upload_id)
    by_name = {name: rows[d["id"]] for name, d in debtors.items()}
    assert by_name["Ana"]["status"] == "approved"
    assert by_name["Ana"]["is_final"] is True
    assert by_name["Ana"]["unique_id"].startswith("SBX-")
    assert by_name["Ana"]["mid_reference"] == "SANDBOX-MID-001"
    assert by_name["Ana"]["processed_at"] == "2026-11-22T12:00:00Z"
    assert (by_name["Ben"]["status"], by_name["Ben"]["error_code"]) == ("declined", "AC04")
    assert by_name["Ben"]["error_message"] == "Account closed"
    assert (by_name["Ben"]["is_final"], by_name["Ben"]["can_retry"]) == (True, False)
    assert (by_name["Cid"]["error_code"], by_name["Cid"]["can_retry"]) == ("AM04", True)
    assert by_name["Eve"]["status"] == "error"
    assert by_name["Eve"]["can_retry"] is True
    assert set(by_name["Ana"]) == {
        "id", "debtor_id", "upload_id", "transaction_id", "unique_id", "amount", "currency",
        "status", "attempt_number", "mid_reference", "error_code", "error_message",
        "is_approved", "is_final", "can_retry", "processed_at", "created_at",
    }  # fmt: skip
    statuses = {name: d["status"] for name, d in debtors.items()}
    assert statuses == {
        "Ana": "recovered", "Ben": "failed", "Cid": "processing", "Dan": "processing",
        "Eve": "processing",
    }  # fmt: skip

    # Not yet five days: the cron presents nothing again.
    clock.advance(timedelta(days=4, hours=23))
    assert await _retry_cron(runtime) == 0
    clock.advance(timedelta(hours=1))
    assert await _retry_cron(runtime) == 3
    await drain()
    # A second run at the same instant finds nothing left to present.
    assert await _retry_cron(runtime) == 0
    clock.advance(timedelta(days=5))
    assert await _retry_cron(runtime) == 2  # Cid was approved on its second attempt
    await drain()
    clock.advance(timedelta(days=5))
    assert await _retry_cron(runtime) == 0  # the third attempts were the last
    # Fifteen days on, the operator token of the morning has expired: sign in again.
    admin_headers = await _login(client)

    listed = await attempts(client, admin_headers, debtor_id=debtors["Dan"]["id"])
    assert [(a["attempt_number"], a["status"], a["is_final"]) for a in listed] == [
        (3, "declined", True), (2, "declined", False), (1, "declined", False)
    ]  # fmt: skip
    cid = await attempts(client, admin_headers, debtor_id=debtors["Cid"]["id"])
    assert [(a["attempt_number"], a["status"]) for a in cid] == [(2, "approved"), (1, "declined")]
    debtors = await debtors_of(client, admin_headers, upload_id)
    assert {n: d["status"] for n, d in debtors.items()} == {
        "Ana": "recovered", "Ben": "failed", "Cid": "recovered", "Dan": "failed", "Eve": "failed",
    }  # fmt: skip

    dashboard = (await client.get("/api/admin/dashboard", headers=admin_headers)).json()["data"]
    assert dashboard["debtors"]["by_status"] == {
        "pending": 0, "processing": 0, "recovered": 2, "failed": 3
    }  # fmt: skip
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    assert stats.json()["data"]["ready_for_sync"] == 0
    detail = await client.get(f"/api/admin/debtors/{debtors['Cid']['id']}", headers=admin_headers)
    assert [a["attempt_number"] for a in detail.json()["data"]["billingAttempts"]] == [1, 2]

    graph = await gql(
        client,
        """query($id: ID!) { node(id: $id) { ... on Upload { billingAttempts(first: 3,
        status: APPROVED) { totalCount nodes { transactionId isApproved } } } } }""",
        {"id": gid("Upload", upload_id)},
        admin_headers,
    )
    connection = graph["data"]["node"]["billingAttempts"]
    assert connection["totalCount"] == 2
    async with db() as session:
        types = (
            await session.scalars(select(Event.type).where(Event.type.like("billing_attempt%")))
        ).all()
    # Every attempt change is an event: 10 attempts created, 10 answers, and the 5 failures
    # the cron retried, whose can_retry turned false.
    assert len(types) == 25


async def test_no_ready_debtor_is_a_user_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers, [("Bad Iban", "ES00INVALID", "10.00")])
    body = await start(client, admin_headers, upload_id)
    # GraphQL names the field as its input spells it.
    assert body["data"]["billingStart"]["userErrors"] == [
        {
            "field": "uploadId",
            "code": "nothing_to_bill",
            "message": "The upload has no debtor ready for billing.",
        }
    ]
    assert await _attempt_count(db) == 0
    unknown = await start(client, admin_headers, 999)
    assert unknown["data"]["billingStart"]["userErrors"][0]["code"] == "not_found"


async def test_a_blacklisted_iban_is_never_billed(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    # Listed after validation: billing still refuses it.
    added = await gql(
        client,
        "mutation($v: BlacklistAddInput!) { blacklistAdd(input: $v) { userErrors { code } } }",
        {"v": {"iban": "ES9121000418450200051332", "reason": "fraud"}},
        admin_headers,
    )
    assert added["data"]["blacklistAdd"]["userErrors"] == []
    body = await start(client, admin_headers, upload_id)
    assert body["data"]["billingStart"]["started"] == 4
    await drain()
    debtors = await debtors_of(client, admin_headers, upload_id)
    assert debtors["Ana"]["status"] == "pending"
    assert debtors["Ana"]["validation_status"] == "invalid"
    assert debtors["Ana"]["validation_errors"] == ["IBAN is blacklisted"]
    assert await attempts(client, admin_headers, debtor_id=debtors["Ana"]["id"]) == []
    # The validation stats agree with billing: the row counts as blacklisted, not ready.
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    assert stats.json()["data"] == {
        "total": 5, "valid": 4, "invalid": 0, "pending": 0, "blacklisted": 1, "ready_for_sync": 0
    }  # fmt: skip
    # Starting again changes nothing: no debtor is left to bill.
    again = await start(client, admin_headers, upload_id)
    assert again["data"]["billingStart"]["userErrors"][0]["code"] == "nothing_to_bill"


async def test_concurrent_starts_bill_each_debtor_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    bodies = await asyncio.gather(*(start(client, admin_headers, upload_id) for _ in range(6)))
    started = sorted(b["data"]["billingStart"]["started"] for b in bodies)
    assert started == [0, 0, 0, 0, 0, 5]
    refused = [b for b in bodies if b["data"]["billingStart"]["started"] == 0]
    assert all(
        b["data"]["billingStart"]["userErrors"][0]["code"] == "nothing_to_bill" for b in refused
    )
    await drain()
    async with db() as session:
        per_debtor = (
            await session.execute(
                select(BillingAttempt.debtor_id, func.count())
                .where(BillingAttempt.attempt_number == 1)
                .group_by(BillingAttempt.debtor_id)
            )
        ).all()
    assert sorted(n for _, n in per_debtor) == [1, 1, 1, 1, 1]


async def test_two_workers_running_the_same_jobs_charge_once(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    drain: Any,
    runtime: Any,
    clock: Any,
    db: Any,
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    await start(client, admin_headers, upload_id)
    await drain()
    ids = [a["id"] for a in await attempts(client, admin_headers, upload_id=upload_id)]
    ctx = {"services": runtime.services}
    # The submit job run again (arq may): everything is already answered.
    again = await asyncio.gather(
        TASKS["billing.submit"](ctx, ids), TASKS["billing.submit"](ctx, ids)
    )
    assert again == [0, 0]
    clock.advance(timedelta(days=5))
    created = await asyncio.gather(_retry_cron(runtime), _retry_cron(runtime))
    assert sorted(created) == [0, 3]
    await drain()
    assert await _attempt_count(db) == 8


async def _billed(
    client: httpx.AsyncClient, headers: dict[str, str], drain: Any
) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """An upload billed once and its attempts settled: its debtors by first name and their
    attempts by debtor id."""
    upload_id = await billing_upload(client, headers)
    await start(client, headers, upload_id)
    await drain()
    debtors = await debtors_of(client, headers, upload_id)
    rows = {a["debtor_id"]: a for a in await attempts(client, headers, upload_id=upload_id)}
    return debtors, rows


async def test_void_and_retry_mutations(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any
) -> None:
    debtors, rows = await _billed(client, admin_headers, drain)
    approved = rows[debtors["Ana"]["id"]]["id"]
    refused = await gql(
        client, VOID, {"v": {"billingAttemptId": gid("BillingAttempt", approved)}}, admin_headers
    )
    assert refused["data"]["billingAttemptVoid"] == {
        "billingAttempt": None,
        "userErrors": [
            {
                "field": None,
                "code": "invalid_transition",
                "message": "An approved billing attempt cannot be voided.",
            }
        ],
    }
    declined = rows[debtors["Ben"]["id"]]["id"]
    not_retryable = await gql(
        client, RETRY, {"v": {"billingAttemptId": gid("BillingAttempt", declined)}}, admin_headers
    )
    assert not_retryable["data"]["billingAttemptRetry"]["userErrors"][0]["message"] == (
        "This billing attempt cannot be retried."
    )
    retryable = rows[debtors["Cid"]["id"]]["id"]
    retried = await gql(
        client, RETRY, {"v": {"billingAttemptId": gid("BillingAttempt", retryable)}}, admin_headers
    )
    new = retried["data"]["billingAttemptRetry"]["billingAttempt"]
    assert (new["status"], new["attemptNumber"]) == ("PENDING", 2)
    twice = await gql(
        client, RETRY, {"v": {"billingAttemptId": gid("BillingAttempt", retryable)}}, admin_headers
    )
    assert twice["data"]["billingAttemptRetry"]["userErrors"][0]["code"] == "invalid_transition"
    await drain()
    detail = await client.get(f"/api/admin/debtors/{debtors['Cid']['id']}", headers=admin_headers)
    assert detail.json()["data"]["status"] == "recovered"
    missing = await gql(
        client, VOID, {"v": {"billingAttemptId": gid("BillingAttempt", 999)}}, admin_headers
    )
    assert missing["data"]["billingAttemptVoid"]["userErrors"][0]["code"] == "not_found"


async def test_list_filters_and_bad_input(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    await start(client, admin_headers, upload_id)
    await drain()
    assert len(await attempts(client, admin_headers, status="declined")) == 3
    assert await attempts(client, admin_headers, upload_id=999) == []
    response = await client.get(
        "/api/admin/billing-attempts",
        params={"status": "paid", "debtor_id": "x", "upload_id": "99999999999"},
        headers=admin_headers,
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"status", "debtor_id", "upload_id"}
    listed = await client.get("/api/admin/billing-attempts?per_page=2", headers=admin_headers)
    assert listed.json()["meta"] == {"current_page": 1, "per_page": 2, "total": 5, "last_page": 3}


async def test_who_may_bill(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    make_platform: Any,
    db: Any,
    clock: Any,
    drain: Any,
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    platform = await make_platform()
    key = {"Authorization": f"Bearer {platform.api_key}"}
    for headers in ({}, key):
        listed = await client.get("/api/admin/billing-attempts", headers=headers)
        assert (listed.status_code, listed.json()) == (401, UNAUTH)
    anonymous = await start(client, {}, upload_id)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    as_platform = await start(client, key, upload_id)
    assert as_platform["data"]["billingStart"]["userErrors"][0]["code"] == "unauthenticated"
    listed_gql = await gql(client, "{ billingAttempts { totalCount } }", headers=key)
    assert listed_gql["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await _attempt_count(db) == 0
    # Attempts the operator could void and retry: the platform's refusals change neither.
    await start(client, admin_headers, upload_id)
    await drain()
    cid = (await debtors_of(client, admin_headers, upload_id))["Cid"]["id"]
    (retryable,) = await attempts(client, admin_headers, debtor_id=cid)
    assert retryable["can_retry"] is True
    voidable = await voidable_attempt(client, admin_headers, db, clock)
    before = await snapshot(db)
    for mutation, name, attempt_id in (
        (VOID, "billingAttemptVoid", voidable),
        (RETRY, "billingAttemptRetry", retryable["id"]),
    ):
        variables = {"v": {"billingAttemptId": gid("BillingAttempt", attempt_id)}}
        body = await gql(client, mutation, variables, key)
        assert body["data"][name] == {
            "billingAttempt": None,
            "userErrors": [
                {"field": None, "code": "unauthenticated", "message": OPERATOR_ONLY_MESSAGE}
            ],
        }
        assert changed_tables(before, await snapshot(db)) == [], name
        # The operator's same call is applied.
        allowed = await gql(client, mutation, variables, admin_headers)
        assert allowed["data"][name]["userErrors"] == [], allowed
        before = await snapshot(db)


async def test_attempt_connections_cost_the_same_for_one_or_many_parents(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, sql_counter: Any
) -> None:
    for _ in range(3):
        upload_id = await billing_upload(client, admin_headers)
        await start(client, admin_headers, upload_id)
    await drain()
    query = """query($n: Int) { uploads(first: $n) { nodes { billingAttempts(first: 2) {
      totalCount nodes { transactionId } } debtors(first: 5) { nodes {
      billingAttempts(first: 1) { totalCount nodes { status } } } } } } }"""

    async def statements(n: int) -> int:
        with sql_counter:
            body = await gql(client, query, {"n": n}, admin_headers)
        assert "errors" not in body, body
        nodes = body["data"]["uploads"]["nodes"]
        # Ben's final decline (AC04) on the first upload makes his IBAN high risk in the next
        # ones (PRODUCT.md §7), so later uploads bill four debtors, not five.
        totals.extend(u["billingAttempts"]["totalCount"] for u in nodes)
        return int(sql_counter.count)

    totals: list[int] = []
    assert await statements(1) == await statements(3)
    assert all(t in (4, 5) for t in totals), totals
    with sql_counter:
        listed = await client.get("/api/admin/billing-attempts?per_page=100", headers=admin_headers)
    assert len(listed.json()["data"]) == sum(totals[1:])
    # Three statements (the caller's token with its user, the count, the page) for many rows
    # as for one.
    assert sql_counter.count == 3


async def test_the_one_billable_rule_takes_exactly_the_ready_debtors(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    upload_id = await billing_upload(
        client, admin_headers, [("Ana Garcia", "ES9121000418450200051332", "10.00")]
    )
    await drain()
    async with db() as session:
        debtor = await session.scalar(select(Debtor).where(Debtor.upload_id == upload_id))
        assert debtor is not None
        assert debtor.risk_class == "low"
        base = {
            "validation_status": "valid",
            "status": "pending",
            "risk_class": "low",
            "blacklisted": False,
            "iban_valid": True,
            "iban": debtor.iban,
            "amount": Decimal("10.00"),
        }
        cases: list[tuple[dict[str, Any], bool]] = [
            ({}, True),
            ({"risk_class": "medium"}, True),
            ({"risk_class": "high"}, False),
            ({"risk_class": None}, False),  # VOP not checked yet
            ({"validation_status": "invalid"}, False),
            ({"status": "processing"}, False),
            ({"blacklisted": True}, False),
            ({"iban_valid": False}, False),
            ({"amount": Decimal("0")}, False),
        ]
        for changes, billable in cases:
            await session.execute(
                update(Debtor).where(Debtor.id == debtor.id).values(**{**base, **changes})
            )
            chosen = await session.scalars(
                select(Debtor.id).where(Debtor.upload_id == upload_id, billable_condition())
            )
            assert (list(chosen) == [debtor.id]) is billable, changes
        # Listed after validation: the list as it is now decides.
        await session.execute(update(Debtor).where(Debtor.id == debtor.id).values(**base))
        session.add(BlacklistedIban(iban=debtor.iban, created_at=debtor.created_at))
        await session.flush()
        chosen = await session.scalars(select(Debtor.id).where(billable_condition()))
        assert list(chosen) == []
        await session.rollback()


async def test_a_refused_mutation_leaves_nothing_for_the_next_one_to_commit(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    rows = [("Ana Garcia", "ES9121000418450200051332", "10.00")]
    upload_id = await billing_upload(client, admin_headers, rows)
    await drain()
    listed = await gql(
        client,
        "mutation($i: String!) { blacklistAdd(input: {iban: $i}) { userErrors { code } } }",
        {"i": rows[0][1]},
        admin_headers,
    )
    assert listed["data"]["blacklistAdd"]["userErrors"] == []
    # a: the start marks Ana blacklisted, finds nobody to bill and is refused; b then commits.
    body = await gql(
        client,
        """mutation($v: BillingStartInput!) {
          a: billingStart(input: $v) { started userErrors { code } }
          b: blacklistAdd(input: {iban: "DE89370400440532013000"}) { userErrors { code } } }""",
        {"v": {"uploadId": gid("Upload", upload_id)}},
        admin_headers,
    )
    assert body["data"]["a"]["userErrors"] == [{"code": "nothing_to_bill"}]
    assert body["data"]["b"]["userErrors"] == []
    async with db() as session:
        ana = await session.scalar(select(Debtor).where(Debtor.upload_id == upload_id))
        events = await session.scalar(
            select(func.count()).select_from(Event).where(Event.type.like("debtor.%"))
        )
    assert ana is not None
    assert (ana.validation_status, ana.blacklisted) == ("valid", False)
    assert events == 0


async def test_a_retry_never_charges_a_debtor_blacklisted_since(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    drain: Any,
    runtime: Any,
    clock: Any,
    db: Any,
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    await start(client, admin_headers, upload_id)
    await drain()
    debtors = await debtors_of(client, admin_headers, upload_id)
    cid = debtors["Cid"]["id"]
    (first,) = await attempts(client, admin_headers, debtor_id=cid)
    assert (first["error_code"], first["can_retry"]) == ("AM04", True)
    async with db() as session:
        debtor = await session.get(Debtor, cid)
        assert debtor is not None
        assert debtor.status == "processing"
        session.add(BlacklistedIban(iban=debtor.iban, created_at=clock.now()))
        await session.commit()
    # The operator's retry is refused: no attempt is made, and the series ends at once (as the
    # cron would end it), so the attempt no longer offers a retry that is refused (review).
    refused = await gql(
        client,
        RETRY,
        {"v": {"billingAttemptId": gid("BillingAttempt", first["id"])}},
        admin_headers,
    )
    assert refused["data"]["billingAttemptRetry"] == {
        "billingAttempt": None,
        "userErrors": [
            {
                "field": None,
                "code": "invalid_transition",
                "message": "The debtor can no longer be charged (blacklisted, or changed).",
            }
        ],
    }
    (ended,) = await attempts(client, admin_headers, debtor_id=cid)
    assert (ended["can_retry"], ended["is_final"]) == (False, False)
    detail = await client.get(f"/api/admin/debtors/{cid}", headers=admin_headers)
    assert detail.json()["data"]["status"] == "failed"
    clock.advance(timedelta(days=5))
    assert await _retry_cron(runtime) == 2  # Dan and Eve; Cid's series has ended
    await drain()
    assert [a["attempt_number"] for a in await attempts(client, admin_headers, debtor_id=cid)] == [
        1
    ]
    async with db() as session:
        changes = (
            await session.scalars(
                select(Event.data).where(
                    Event.type == "debtor.status_changed", Event.object_id == str(cid)
                )
            )
        ).all()
    assert [c["object"]["status"] for c in changes][-1:] == ["failed"], changes
    assert await _retry_cron(runtime) == 0


async def test_billing_mutations_take_the_rest_id_as_well_as_the_relay_id(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    started = await gql(
        client,
        "mutation($v: BillingStartInput!) { billingStart(input: $v) "
        "{ started userErrors { code } } }",
        {"v": {"uploadId": str(upload_id)}},
        admin_headers,
    )
    assert started["data"]["billingStart"] == {"started": 5, "userErrors": []}
    await drain()
    declined = next(
        a for a in await attempts(client, admin_headers, upload_id=upload_id) if a["can_retry"]
    )
    retried = await gql(
        client, RETRY, {"v": {"billingAttemptId": str(declined["id"])}}, admin_headers
    )
    assert retried["data"]["billingAttemptRetry"]["userErrors"] == []
    assert retried["data"]["billingAttemptRetry"]["billingAttempt"]["attemptNumber"] == 2


async def test_a_final_decline_elsewhere_stops_billing_a_debtor_validated_before_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any
) -> None:
    # Ben's IBAN in two uploads, both validated (low risk) before either is billed: once the
    # first upload's attempt is finally declined, the second's debtor is no longer billable
    # (the high risk of PRODUCT.md §7, though its stored risk_class stays what its check found),
    # by billing, the pain.008 export and ready_for_sync alike, as the blacklist is read as it
    # is now (review: it was billed, and approved).
    first = await billing_upload(client, admin_headers, [ROWS[1]])
    second = await billing_upload(client, admin_headers, [ROWS[0], ROWS[1]])
    third = await billing_upload(client, admin_headers, [ROWS[0], ROWS[1]])
    await drain()
    assert (await debtors_of(client, admin_headers, second))["Ben"]["risk_class"] != "high"
    stats_url = f"/api/admin/uploads/{second}/validation-stats"
    ready = await client.get(stats_url, headers=admin_headers)
    assert ready.json()["data"]["ready_for_sync"] == 2
    await start(client, admin_headers, first)
    await drain()
    declined = await attempts(client, admin_headers, upload_id=first)
    assert [a["error_code"] for a in declined] == ["AC04"]
    ready = await client.get(stats_url, headers=admin_headers)
    assert ready.json()["data"]["ready_for_sync"] == 1
    started = (await start(client, admin_headers, second))["data"]["billingStart"]
    assert (started["started"], started["userErrors"]) == (1, [])
    await drain()
    billed = await attempts(client, admin_headers, upload_id=second)
    ana = (await debtors_of(client, admin_headers, second))["Ana"]["id"]
    assert [a["debtor_id"] for a in billed] == [ana]
    exported = await client.post(f"/api/admin/uploads/{third}/sepa/pain008", headers=admin_headers)
    assert exported.status_code == 200, exported.text
    assert ROWS[0][1] in exported.text
    assert ROWS[1][1] not in exported.text


async def test_a_final_decline_notes_its_iban_and_makes_it_high_risk_next_time(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    upload_id = await billing_upload(client, admin_headers)
    await start(client, admin_headers, upload_id)
    await drain()
    async with db() as session:
        noted = (await session.execute(select(FinalDecline.attempt_id, FinalDecline.iban))).all()
        ben = await session.scalar(
            select(BillingAttempt.id).where(BillingAttempt.error_code == "AC04")
        )
    # Ben's AC04 only: the retryable declines (AM04) and the gateway error are not final.
    assert noted == [(ben, ROWS[1][1])]
    # The same IBANs in a later upload: Ben's is high risk, Dan's (retryable) is not.
    later = await billing_upload(client, admin_headers, [ROWS[1], ROWS[3]])
    await drain()
    debtors = await debtors_of(client, admin_headers, later)
    assert debtors["Ben"]["risk_class"] == "high"
    assert debtors["Dan"]["risk_class"] != "high"
    # Gone with its attempt, as the attempt's own decline would be.
    async with db() as session:
        await session.execute(BillingAttempt.__table__.delete().where(BillingAttempt.id == ben))
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(FinalDecline)) == 0


_TWO_RETRIES = """mutation($a: BillingAttemptInput!, $b: BillingAttemptInput!) {
  a: billingAttemptRetry(input: $a) { billingAttempt { databaseId debtor { upload {
    billingAttempts(first: 20) { totalCount nodes { databaseId } } } } } userErrors { code } }
  b: billingAttemptRetry(input: $b) { billingAttempt { databaseId debtor { upload {
    billingAttempts(first: 20) { totalCount nodes { databaseId } } } } } userErrors { code } }
}"""


async def test_a_later_mutation_of_a_document_reads_what_it_wrote(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any
) -> None:
    # Both payloads read the same upload's attempts: the second must show the attempt its own
    # mutation created, not the page the first payload read (the request's loaders forget
    # what they cached once the unit of work commits: review).
    debtors, rows = await _billed(client, admin_headers, drain)
    variables = {
        key: {"billingAttemptId": gid("BillingAttempt", rows[debtors[name]["id"]]["id"])}
        for key, name in (("a", "Cid"), ("b", "Eve"))
    }
    body = await gql(client, _TWO_RETRIES, variables, admin_headers)
    assert "errors" not in body, body["errors"]
    before = len(rows)
    for key, created in (("a", before + 1), ("b", before + 2)):
        payload = body["data"][key]
        assert payload["userErrors"] == []
        listed = payload["billingAttempt"]["debtor"]["upload"]["billingAttempts"]
        assert listed["totalCount"] == created
        assert payload["billingAttempt"]["databaseId"] in [n["databaseId"] for n in listed["nodes"]]


async def test_an_attempt_once_retried_can_no_longer_be_retried(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    # PRODUCT.md §8: can_retry follows. An attempt followed by the next one said can_retry:
    # true forever, and retrying it was refused (review): both faces now say what a retry does.
    upload_id = await billing_upload(client, admin_headers, [ROWS[3]])  # AM04 every time
    await start(client, admin_headers, upload_id)
    await drain()

    async def flags() -> list[tuple[int, bool, bool]]:
        rest = await attempts(client, admin_headers, upload_id=upload_id)
        graph = await gql(
            client,
            "query($u: ID!) { billingAttempts(uploadId: $u) { nodes { attemptNumber canRetry "
            "isFinal } } }",
            {"u": str(upload_id)},
            admin_headers,
        )
        nodes = graph["data"]["billingAttempts"]["nodes"]
        assert [(n["attemptNumber"], n["canRetry"], n["isFinal"]) for n in nodes] == [
            (a["attempt_number"], a["can_retry"], a["is_final"]) for a in rest
        ]
        return sorted((a["attempt_number"], a["can_retry"], a["is_final"]) for a in rest)

    assert await flags() == [(1, True, False)]
    first = (await attempts(client, admin_headers, upload_id=upload_id))[0]["id"]
    retried = await gql(client, RETRY, {"v": {"billingAttemptId": str(first)}}, admin_headers)
    assert retried["data"]["billingAttemptRetry"]["userErrors"] == []
    await drain()
    assert await flags() == [(1, False, False), (2, True, False)]
    # Its events say so too: dashboards and event payloads no longer offer the retry.
    async with db() as session:
        payloads = (
            await session.scalars(
                select(Event.data)
                .where(Event.type == "billing_attempt.updated", Event.object_id == str(first))
                .order_by(Event.id)
            )
        ).all()
    assert [p["object"]["can_retry"] for p in payloads][-1] is False
    again = await gql(client, RETRY, {"v": {"billingAttemptId": str(first)}}, admin_headers)
    assert again["data"]["billingAttemptRetry"]["userErrors"][0]["code"] == "invalid_transition"
    second = retried["data"]["billingAttemptRetry"]["billingAttempt"]["databaseId"]
    await gql(client, RETRY, {"v": {"billingAttemptId": str(second)}}, admin_headers)
    await drain()
    assert await flags() == [(1, False, False), (2, False, False), (3, False, True)]


async def test_an_attempts_event_object_is_the_attempt_as_rest_shows_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], drain: Any, db: Any
) -> None:
    # A billing_attempt.updated webhook carries the attempt as GET /api/admin/billing-attempts
    # shows it; its amount was a string there, a number (as the seed types it) here.
    upload_id = await billing_upload(client, admin_headers, [ROWS[0]])
    await start(client, admin_headers, upload_id)
    await drain()
    (shown,) = await attempts(client, admin_headers, upload_id=upload_id)
    async with db() as session:
        latest = await session.scalar(
            select(Event.data)
            .where(Event.type == "billing_attempt.updated", Event.object_id == str(shown["id"]))
            .order_by(Event.id.desc())
            .limit(1)
        )
    assert latest is not None
    assert latest["object"] == shown
    assert isinstance(latest["object"]["amount"], float)
