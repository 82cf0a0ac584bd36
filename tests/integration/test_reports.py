"""``/v1/reports/stats`` and the commission endpoints, with recoveryStats in GraphQL."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from debtgraph.domain.receivables.models import Receivable
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, create_user, creditor_token
from tests.integration.test_receivables import receivable_payload

EMPTY = {
    "total_sent": 0,
    "total_recovered": 0,
    "total_amount_sent": 0.0,
    "total_amount_recovered": 0.0,
    "avg_days_to_recovery": 0.0,
    "with_phone_success_rate": 0.0,
    "without_phone_success_rate": 0.0,
}


async def _submit(client: httpx.AsyncClient, key: str, uid: str, n: int, phone: bool) -> str:
    payload = receivable_payload(uid)
    payload["invoice"]["numbers"] = [f"S-{n}"]
    if not phone:
        payload["debtor"]["contacts"] = [{"email": "ap@engie.test"}]
    response = await client.post("/v1/receivables", json=payload, headers=bearer(key))
    assert response.status_code == 201
    return response.json()["id"]  # type: ignore[no-any-return]


async def test_stats_by_period_and_phone(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    other = await make_platform("Other")
    uid = (await create_user(client, acme.api_key))["id"]
    ids = [await _submit(client, acme.api_key, uid, i, phone=i < 2) for i in range(4)]
    now = clock.now()
    async with db() as session:
        # With phone: one recovered after 10 days. Without phone: none recovered.
        await session.execute(
            update(Receivable)
            .where(Receivable.public_id == ids[0])
            .values(
                status="recovered",
                amount_recovered=Decimal("1200.00"),
                created_at=now - timedelta(days=10),
                recovered_at=now,
            )
        )
        # A partial payment counts in the amount recovered, not in total_recovered.
        await session.execute(
            update(Receivable)
            .where(Receivable.public_id == ids[2])
            .values(amount_recovered=Decimal("100.00"))
        )
        # Created 100 days ago: outside last_month and last_quarter.
        await session.execute(
            update(Receivable)
            .where(Receivable.public_id == ids[3])
            .values(created_at=now - timedelta(days=100))
        )
        await session.commit()
    headers = bearer(acme.api_key)
    all_time = await client.get("/v1/reports/stats", headers=headers)
    assert all_time.status_code == 200
    assert all_time.json() == {
        "total_sent": 4,
        "total_recovered": 1,
        "total_amount_sent": 4800.0,
        "total_amount_recovered": 1300.0,
        "avg_days_to_recovery": 10.0,
        "with_phone_success_rate": 0.5,
        "without_phone_success_rate": 0.0,
    }
    quarter = (await client.get("/v1/reports/stats?period=last_quarter", headers=headers)).json()
    assert quarter["total_sent"] == 3
    year = (await client.get("/v1/reports/stats?period=last_year", headers=headers)).json()
    assert year["total_sent"] == 4
    month = (await client.get("/v1/reports/stats?period=last_month", headers=headers)).json()
    assert month["total_sent"] == 3
    foreign = await client.get("/v1/reports/stats", headers=bearer(other.api_key))
    assert foreign.json() == EMPTY
    graph = await gql(
        client,
        "{ recoveryStats(period: LAST_QUARTER) { totalSent totalRecovered withPhoneSuccessRate } }",
        None,
        headers,
    )
    assert graph["data"]["recoveryStats"] == {
        "totalSent": 3,
        "totalRecovered": 1,
        "withPhoneSuccessRate": "0.5000",
    }


async def test_stats_authorization_and_bad_period(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform()
    anonymous = await client.get("/v1/reports/stats")
    assert anonymous.status_code == 401
    bad = await client.get("/v1/reports/stats?period=forever", headers=bearer(acme.api_key))
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "period"
    uid = (await create_user(client, acme.api_key))["id"]
    async with db() as session:
        from debtgraph.domain.creditors.models import User

        user = await session.scalar(select(User).where(User.public_id == uid))
    no_scope = await creditor_token(db, clock, acme.platform.id, user.id, "receivables:read")
    refused = await client.get("/v1/reports/stats", headers=bearer(no_scope))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    allowed = await creditor_token(db, clock, acme.platform.id, user.id, "reports:read")
    assert (await client.get("/v1/reports/stats", headers=bearer(allowed))).json() == EMPTY


async def test_commission_rates_and_calculation(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    assert (await client.get("/v1/commission/rates")).status_code == 401
    rates = (await client.get("/v1/commission/rates", headers=headers)).json()
    assert rates["data"][0] == {"min_days": 0, "max_days": 44, "rate": 10.8}
    assert rates["data"][-1] == {"min_days": 547, "max_days": None, "rate": 29.5}
    quote = await client.post(
        "/v1/commission/calculate",
        json={"amount": 1000, "due_date": "2026-08-01"},
        headers=headers,
    )
    assert quote.status_code == 200
    assert quote.json() == {
        "amount": 1000.0,
        "due_date": "2026-08-01",
        "days_overdue": 113,
        "rate": 20.6,
        "commission": 206.0,
        "net": 794.0,
    }
    graph = await gql(
        client,
        '{ commissionQuote(amount: "1000", dueDate: "2026-08-01") { rate commission net } }',
        None,
        headers,
    )
    assert graph["data"]["commissionQuote"] == {
        "rate": "20.60",
        "commission": "206.00",
        "net": "794.00",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"due_date": "2026-08-01"}, "amount"),
        ({"amount": 0, "due_date": "2026-08-01"}, "amount"),
        ({"amount": 10.001, "due_date": "2026-08-01"}, "amount"),
        ({"amount": 10}, "due_date"),
        ({"amount": 10, "due_date": "01/08/2026"}, "due_date"),
    ],
)
async def test_commission_calculation_bad_input(
    client: httpx.AsyncClient, make_platform: Any, body: dict[str, Any], field: str
) -> None:
    acme = await make_platform()
    response = await client.post(
        "/v1/commission/calculate", json=body, headers=bearer(acme.api_key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


async def test_stats_amounts_are_those_of_one_currency(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    # EUR and USD added together answer a figure in neither (review): the amounts are those of
    # the currency asked, EUR by default; counts and rates cover every receivable.
    acme = await make_platform()
    headers = bearer(acme.api_key)
    uid = (await create_user(client, acme.api_key))["id"]
    euros = [await _submit(client, acme.api_key, uid, i, phone=True) for i in range(2)]
    dollars = receivable_payload(uid)
    dollars["invoice"]["numbers"] = ["S-USD"]
    dollars["invoice"]["currency"] = "usd"
    submitted = await client.post("/v1/receivables", json=dollars, headers=headers)
    assert submitted.status_code == 201, submitted.text
    async with db() as session:
        await session.execute(
            update(Receivable)
            .where(Receivable.public_id.in_([euros[0], submitted.json()["id"]]))
            .values(amount_recovered=Decimal("100.00"))
        )
        await session.commit()
    default = (await client.get("/v1/reports/stats", headers=headers)).json()
    assert (default["total_sent"], default["total_amount_sent"]) == (3, 2400.0)
    assert default["total_amount_recovered"] == 100.0
    assert "currency" not in default  # the seed's shape
    usd = (await client.get("/v1/reports/stats?currency=usd", headers=headers)).json()
    assert (usd["total_sent"], usd["total_amount_sent"], usd["total_amount_recovered"]) == (
        3,
        1200.0,
        100.0,
    )
    none = (await client.get("/v1/reports/stats?currency=CHF", headers=headers)).json()
    assert (none["total_sent"], none["total_amount_sent"]) == (3, 0.0)
    for bad in ("XYZ", "", "EURO", "\u0131dr"):  # a dotless i upper-cases to I
        refused = await client.get("/v1/reports/stats", params={"currency": bad}, headers=headers)
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["field"] == "currency"
        assert refused.json()["error"]["message"] == (
            "currency must be an ISO 4217 currency code such as EUR."
        )
    anonymous = await client.get("/v1/reports/stats?currency=XYZ")
    assert anonymous.status_code == 401
    graph = await gql(
        client,
        '{ recoveryStats(currency: "USD") { totalSent totalAmountSent currency } '
        "euros: recoveryStats { totalAmountSent currency } }",
        None,
        headers,
    )
    assert graph["data"] == {
        "recoveryStats": {"totalSent": 3, "totalAmountSent": "1200.00", "currency": "USD"},
        "euros": {"totalAmountSent": "2400.00", "currency": "EUR"},
    }
    wrong = await gql(client, '{ recoveryStats(currency: "XYZ") { totalSent } }', None, headers)
    assert wrong["data"] is None
    (error,) = wrong["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errors"][0]["field"] == "currency"


QUOTE = 'query($a: Decimal!) { commissionQuote(amount: $a, dueDate: "2026-08-01") { commission } }'


@pytest.mark.parametrize(
    "amount",
    [
        "1_000",
        "\uff11\uff10\uff10",
        " 1",
        "1 ",
        "NaN",
        "Infinity",
        "-Infinity",
        "sNaN",
        "",
        "1e",
        "--1",
        "0x10",
        True,
        None,
    ],
)
async def test_the_decimal_scalar_reads_json_number_syntax_only(
    client: httpx.AsyncClient, make_platform: Any, amount: Any
) -> None:
    # Python's Decimal read "1_000" as 1000, full-width digits, spaces, NaN and infinities:
    # the graph took amounts the REST faces' JSON numbers cannot spell.
    acme = await make_platform()
    body = await gql(client, QUOTE, {"a": amount}, bearer(acme.api_key))
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    # Written in the document, the same value is refused by validation, not masked as a crash.
    literal = QUOTE.replace("query($a: Decimal!) ", "").replace("$a", json.dumps(amount))
    written = await gql(client, literal, None, bearer(acme.api_key))
    assert written["data"] is None
    (error,) = written["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", error
    assert "Unexpected" not in error["message"]


@pytest.mark.parametrize(
    ("amount", "commission"),
    [("1000", "206.00"), ("+1000.00", "206.00"), (1000, "206.00"), (1000.0, "206.00")],
)
async def test_the_decimal_scalar_reads_digits_and_json_numbers(
    client: httpx.AsyncClient, make_platform: Any, amount: Any, commission: str
) -> None:
    acme = await make_platform()
    body = await gql(client, QUOTE, {"a": amount}, bearer(acme.api_key))
    assert body["data"] == {"commissionQuote": {"commission": commission}}, body
