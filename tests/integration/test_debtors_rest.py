"""/api/admin/debtors*, /api/admin/uploads/{id}/debtors, validation and the blacklist in it."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.debtors.models import BlacklistedIban, Debtor
from debtgraph.domain.payments.models import RETRY_INTERVAL, BillingAttempt, VopLog
from tests.conftest import gql
from tests.integration.uploads_support import (
    HEADER,
    UNAUTH,
    csv_text,
    set_debtor_status,
    upload,
    valid_row,
)

DEBTOR_KEYS = {
    "id", "upload_id", "iban_masked", "bank_name", "bank_code", "bic", "first_name",
    "last_name", "full_name", "email", "phone", "primary_phone", "national_id", "birth_date",
    "street", "street_number", "floor", "door", "apartment", "postcode", "city", "province",
    "country", "full_address", "amount", "currency", "sepa_type", "status", "risk_class",
    "iban_valid", "name_matched", "external_reference", "created_at", "updated_at",
    "validation_status", "validation_errors", "validated_at",
}  # fmt: skip

SEED_ROW = (
    "first_name,last_name,iban,amount,phone,national_id,birth_date,street,street_number,"
    "postcode,city,province,external_reference\n"
    "Maria,Rodriguez,ES91 2100 0418 4502 0005 1332,150.00,638549256,52268154X,1964-01-12,"
    "JUAN RAMON JIMENEZ,7,21740,HINOJOS,Huelva,ORDER-12345\n"
)


async def _first_debtor_id(db: Any) -> int:
    async with db() as session:
        return int(await session.scalar(select(Debtor.id).order_by(Debtor.id).limit(1)) or 0)


async def test_debtor_object_matches_the_seed(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    assert (await upload(client, admin_headers, SEED_ROW)).status_code == 201
    listed = await client.get("/api/admin/debtors", headers=admin_headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["meta"] == {"current_page": 1, "per_page": 20, "total": 1, "last_page": 1}
    (debtor,) = body["data"]
    assert set(debtor) == DEBTOR_KEYS
    assert debtor["iban_masked"] == "ES91****1332"
    assert debtor["bank_code"] == "2100"
    assert debtor["bic"] == "CAIXESBBXXX"
    assert debtor["bank_name"]
    assert debtor["full_name"] == "Maria Rodriguez"
    assert debtor["primary_phone"] == "638549256"
    assert debtor["birth_date"] == "1964-01-12"
    assert debtor["full_address"] == "JUAN RAMON JIMENEZ 7\n21740, HINOJOS, Huelva, ES"
    assert debtor["amount"] == 150.0
    assert debtor["country"] == "ES"
    assert debtor["currency"] == "EUR"
    assert debtor["sepa_type"] == "CORE"
    assert debtor["status"] == "pending"
    # The VOP phase ran after validation: the sandbox answers with the debtor's own name.
    assert debtor["risk_class"] == "low"
    assert debtor["name_matched"] is True
    assert debtor["iban_valid"] is True
    assert debtor["external_reference"] == "ORDER-12345"
    assert debtor["validation_status"] == "valid"
    assert debtor["created_at"] == "2026-11-22T12:00:00Z"


async def test_debtor_detail_has_upload_vop_logs_and_billing_attempts(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, clock: Any
) -> None:
    assert (await upload(client, admin_headers, SEED_ROW)).status_code == 201
    debtor_id = await _first_debtor_id(db)
    empty = (await client.get(f"/api/admin/debtors/{debtor_id}", headers=admin_headers)).json()
    # The upload's VOP phase wrote the first log (the sandbox: the debtor's own name).
    (checked,) = empty["data"]["vopLogs"]
    assert checked["result"] == "verified"
    assert checked["vop_score"] == 90
    assert empty["data"]["billingAttempts"] == []
    assert empty["data"]["upload"]["debtors_count"] == 1
    assert empty["data"]["raw_data"]["iban"] == "ES91 2100 0418 4502 0005 1332"
    async with db() as session:
        debtor = await session.get(Debtor, debtor_id)
        assert debtor is not None
        session.add(
            VopLog(
                debtor_id=debtor_id, upload_id=debtor.upload_id, iban_masked="ES91****1332",
                iban_valid=True, bank_identified=True, vop_score=85, score_label="high",
                result="verified", created_at=clock.now(),
            )
        )  # fmt: skip
        session.add(
            BillingAttempt(
                debtor_id=debtor_id, upload_id=debtor.upload_id, transaction_id="TXN-1",
                amount=Decimal("150.00"), status="declined", attempt_number=1,
                error_code="AM04", created_at=clock.now(), updated_at=clock.now(),
                # As settling the decline leaves it: its retry due (so it can still be retried).
                next_retry_at=clock.now() + RETRY_INTERVAL,
            )
        )  # fmt: skip
        await session.commit()
    data = (await client.get(f"/api/admin/debtors/{debtor_id}", headers=admin_headers)).json()[
        "data"
    ]
    _, log = data["vopLogs"]
    assert log["is_positive"] is True
    assert log["is_negative"] is False
    assert log["result"] == "verified"
    (attempt,) = data["billingAttempts"]
    assert attempt["amount"] == 150.0
    assert attempt["is_approved"] is False
    assert attempt["can_retry"] is True
    assert attempt["is_final"] is False


async def test_filters_and_pagination(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    first = (await upload(client, admin_headers, csv_text(10, bad_every=5))).json()["data"]["id"]
    await upload(client, admin_headers, csv_text(5))
    async with db() as session:
        debtor = await session.scalar(select(Debtor).where(Debtor.row_number == 3).limit(1))
        assert debtor is not None
        debtor.risk_class = "high"
        debtor.status = "recovered"
        await session.commit()

    async def total(query: str) -> int:
        response = await client.get(f"/api/admin/debtors?{query}", headers=admin_headers)
        assert response.status_code == 200, response.text
        return int(response.json()["meta"]["total"])

    assert await total("") == 15
    assert await total(f"upload_id={first}") == 10
    assert await total("status=recovered") == 1
    # Rows 0 and 5 of the first file have an invalid IBAN (rejected by VOP: high), plus row 3.
    assert await total("risk_class=high") == 3
    assert await total("country=de") == 3
    assert await total("upload_id=999") == 0
    page = await client.get("/api/admin/debtors?page=2&per_page=4", headers=admin_headers)
    assert page.json()["meta"] == {"current_page": 2, "per_page": 4, "total": 15, "last_page": 4}
    assert len(page.json()["data"]) == 4


async def test_upload_debtors_list_filters_and_searches(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    upload_id = (await upload(client, admin_headers, csv_text(60, bad_every=5))).json()["data"][
        "id"
    ]
    base = f"/api/admin/uploads/{upload_id}/debtors"
    listed = (await client.get(base, headers=admin_headers)).json()
    assert listed["meta"] == {"current_page": 1, "per_page": 50, "total": 60, "last_page": 2}
    item = listed["data"][0]
    assert set(item) == {
        "id", "upload_id", "iban_masked", "first_name", "last_name", "amount",
        "validation_status", "validation_errors", "validated_at", "raw_data",
    }  # fmt: skip
    invalid = (await client.get(f"{base}?validation_status=invalid", headers=admin_headers)).json()
    assert invalid["meta"]["total"] == 12
    assert invalid["data"][0]["validation_errors"] == ["IBAN is invalid"]
    valid = (await client.get(f"{base}?validation_status=valid", headers=admin_headers)).json()
    assert valid["data"][0]["validation_errors"] is None

    async def hits(term: str) -> int:
        response = await client.get(base, params={"search": term}, headers=admin_headers)
        return int(response.json()["meta"]["total"])

    assert await hits("maria13") == 1
    assert await hits("m13@example") == 1
    assert await hits("de89 3704") == 12
    assert await hits("100%") == 0
    assert await hits("nobody") == 0
    bad = await client.get(f"{base}?validation_status=maybe", headers=admin_headers)
    assert bad.status_code == 422


async def test_search_ignores_case_beyond_ascii_on_both_faces(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    rows = [
        "María,Rodríguez,ES9121000418450200051332,150.00,Madrid,28001,Calle 1,,ana@x.test,",
        "FRANÇOISE,ÉLOI,DE89370400440532013000,150.00,Paris,75001,Rue 2,,fe@x.test,",
        "Luis,Perez,NL91ABNA0417164300,150.00,Bilbao,48001,Calle 3,,lp@x.test,",
    ]
    content = "\n".join([HEADER, *rows]) + "\n"
    upload_id = (await upload(client, admin_headers, content)).json()["data"]["id"]

    async def rest(term: str) -> list[str]:
        response = await client.get(
            f"/api/admin/uploads/{upload_id}/debtors",
            params={"search": term},
            headers=admin_headers,
        )
        return sorted(row["first_name"] for row in response.json()["data"])

    async def graphql(term: str) -> list[str]:
        body = await gql(
            client,
            "query($u: ID!, $s: String) { debtors(first: 10, uploadId: $u, search: $s) {"
            " nodes { firstName } } }",
            {"u": str(upload_id), "s": term},
            headers=admin_headers,
        )
        return sorted(node["firstName"] for node in body["data"]["debtors"]["nodes"])

    for term, expected in [
        ("MARÍA", ["María"]),
        ("rodríguez", ["María"]),
        ("françoise", ["FRANÇOISE"]),
        ("éloi", ["FRANÇOISE"]),
        ("PEREZ", ["Luis"]),
        ("maria", []),  # no accent folding: only case
        # The name typed whole, as fullName shows it, on both faces.
        ("maría rodríguez", ["María"]),
        ("ÇOISE ÉL", ["FRANÇOISE"]),
        ("luis perez", ["Luis"]),
        ("perez luis", []),
    ]:
        assert await rest(term) == expected, term
        assert await graphql(term) == expected, term


async def test_validate_debtor_and_blacklist(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, clock: Any
) -> None:
    upload_id = (await upload(client, admin_headers, csv_text(5))).json()["data"]["id"]
    async with db() as session:
        session.add(BlacklistedIban(iban="DE89370400440532013000", created_at=clock.now()))
        await session.commit()
        target = await session.scalar(
            select(Debtor.id).where(Debtor.iban == "DE89370400440532013000")
        )
    response = await client.post(f"/api/admin/debtors/{target}/validate", headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {
        "message": "Validation completed",
        "data": {
            "id": target,
            "validation_status": "invalid",
            "validation_errors": ["IBAN is blacklisted"],
            "validated_at": "2026-11-22T12:00:00Z",
        },
    }
    stats = await client.get(
        f"/api/admin/uploads/{upload_id}/validation-stats", headers=admin_headers
    )
    assert stats.json()["data"] == {
        "total": 5, "valid": 4, "invalid": 0, "pending": 0, "blacklisted": 1,
        "ready_for_sync": 4,
    }  # fmt: skip
    status = (await client.get(f"/api/admin/uploads/{upload_id}", headers=admin_headers)).json()
    assert (status["data"]["processed_records"], status["data"]["failed_records"]) == (4, 1)


async def test_validate_upload_runs_pending_debtors_only(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, sql_counter: Any
) -> None:
    upload_id = (await upload(client, admin_headers, csv_text(40, bad_every=4))).json()["data"][
        "id"
    ]
    nothing = await client.post(f"/api/admin/uploads/{upload_id}/validate", headers=admin_headers)
    assert nothing.json() == {
        "message": "Validation completed",
        "data": {"total": 0, "valid": 0, "invalid": 0},
    }
    async with db() as session:
        for debtor in (await session.scalars(select(Debtor))).all():
            debtor.validation_status = "pending"
        await session.commit()
    with sql_counter:
        again = await client.post(f"/api/admin/uploads/{upload_id}/validate", headers=admin_headers)
    assert again.json()["data"] == {"total": 40, "valid": 30, "invalid": 10}
    # Set-wise: a few statements per chunk, not one per row.
    assert sql_counter.count < 20


async def test_put_debtor_rederives_and_revalidates(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    await upload(client, admin_headers, csv_text(5, bad_every=5))
    debtor_id = await _first_debtor_id(db)
    response = await client.put(
        f"/api/admin/debtors/{debtor_id}",
        json={
            "raw_data": {
                "first_name": "Johann",
                "last_name": "Mueller",
                "iban": "DE89370400440532013000",
                "amount": "200.00",
                "city": "Berlin",
                "postcode": "10115",
                "address": "Main St 1",
            }
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["first_name"] == "Johann"
    assert data["iban_masked"] == "DE89****3000"
    assert data["amount"] == 200.0
    assert data["validation_status"] == "valid"
    assert data["validation_errors"] is None
    # raw_data is merged: columns the PUT did not name are kept.
    assert set(data["raw_data"]) >= {"custom_field", "email", "address", "city"}
    assert data["raw_data"]["city"] == "Berlin"


async def test_a_correction_under_another_spelling_of_its_column_stays(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    # Outside review: "Código Postal" then "Codigo Postal" kept both keys in raw_data; which one
    # a later edit read was up to the order of a JSON column's keys (PostgreSQL's JSONB keeps
    # none), and the second correction came undone.
    await upload(client, admin_headers, csv_text(1))
    path = f"/api/admin/debtors/{await _first_debtor_id(db)}"

    async def put(raw_data: dict[str, Any]) -> dict[str, Any]:
        response = await client.put(path, json={"raw_data": raw_data}, headers=admin_headers)
        assert response.status_code == 200, response.text
        return response.json()["data"]  # type: ignore[no-any-return]

    assert (await put({"postcode": "", "Código Postal": "12345"}))["postcode"] == "12345"
    assert (await put({"postcode": "", "Codigo Postal": "54321"}))["postcode"] == "54321"
    kept = await put({"postcode": None})
    assert kept["postcode"] == "54321"
    assert "código_postal" not in kept["raw_data"]
    assert kept["raw_data"]["codigo_postal"] == "54321"


async def test_put_with_bad_raw_data_is_422_and_changes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    await upload(client, admin_headers, csv_text(2))
    debtor_id = await _first_debtor_id(db)
    async with db() as session:
        before = (await session.get(Debtor, debtor_id)).raw_data  # type: ignore[union-attr]
    for body, field in (
        ({"raw_data": "iban=DE89"}, "raw_data"),
        ({"raw_data": ["a"]}, "raw_data"),
        ({}, "raw_data"),
        ({"raw_data": {"iban": {"nested": 1}}}, "raw_data.iban"),
    ):
        response = await client.put(
            f"/api/admin/debtors/{debtor_id}", json=body, headers=admin_headers
        )
        assert response.status_code == 422, body
        assert field in response.json()["errors"]
    # What a value may be, said whole: "must be a string" misled, numbers are taken too.
    boolean = await client.put(
        f"/api/admin/debtors/{debtor_id}", json={"raw_data": {"iban": True}}, headers=admin_headers
    )
    assert boolean.json()["errors"] == {
        "raw_data.iban": ["The raw_data.iban field must be a string, a number or null."]
    }
    malformed = await client.put(
        f"/api/admin/debtors/{debtor_id}", content=b"{nope", headers=admin_headers
    )
    assert malformed.status_code == 422
    async with db() as session:
        after = await session.get(Debtor, debtor_id)
    assert after is not None
    assert after.raw_data == before


async def test_debtor_paths_require_an_operator(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, make_platform: Any
) -> None:
    await upload(client, admin_headers, csv_text(2))
    debtor_id = await _first_debtor_id(db)
    platform = await make_platform()
    for headers in ({}, {"Authorization": f"Bearer {platform.api_key}"}):
        for method, path in (
            ("GET", "/api/admin/debtors"),
            ("GET", f"/api/admin/debtors/{debtor_id}"),
            ("POST", f"/api/admin/debtors/{debtor_id}/validate"),
            ("PUT", f"/api/admin/debtors/{debtor_id}"),
            ("GET", "/api/admin/dashboard"),
        ):
            response = await client.request(
                method, path, json={"raw_data": {"first_name": "X"}}, headers=headers
            )
            assert response.status_code == 401, path
            assert response.json() == UNAUTH
    async with db() as session:
        debtor = await session.get(Debtor, debtor_id)
    assert debtor is not None
    assert debtor.first_name == "Maria0"


async def test_list_statement_counts_do_not_grow_with_rows(
    client: httpx.AsyncClient, admin_headers: dict[str, str], sql_counter: Any
) -> None:
    paths = ["/api/admin/uploads", "/api/admin/debtors", "/api/admin/dashboard"]

    async def statements() -> list[int]:
        found = []
        for path in paths:
            with sql_counter:
                assert (await client.get(path, headers=admin_headers)).status_code == 200
            found.append(sql_counter.count)
        return found

    first = (await upload(client, admin_headers, csv_text(2))).json()["data"]["id"]
    with sql_counter:
        await client.get(f"/api/admin/uploads/{first}/debtors", headers=admin_headers)
    one_upload_debtors = sql_counter.count
    few = await statements()
    for _ in range(4):
        await upload(client, admin_headers, csv_text(8))
    with sql_counter:
        await client.get(f"/api/admin/uploads/{first}/debtors", headers=admin_headers)
    assert sql_counter.count == one_upload_debtors
    assert await statements() == few


async def test_a_debtor_in_collection_cannot_be_changed_on_either_face(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    # Retries read the debtor's row as it is: an edit mid-collection would be charged unchecked.
    await upload(client, admin_headers, csv_text(2))
    debtor_id = await _first_debtor_id(db)
    await set_debtor_status(db, debtor_id, "processing")
    async with db() as session:
        before = await session.get(Debtor, debtor_id)
        assert before is not None
        snapshot = (before.raw_data, before.iban, before.validation_status, before.updated_at)
    refused = {"message": "A debtor in collection cannot be changed.", "status": 409}
    put = await client.put(
        f"/api/admin/debtors/{debtor_id}",
        json={"raw_data": {"iban": "DE89370400440532013000"}},
        headers=admin_headers,
    )
    assert (put.status_code, put.json()) == (409, refused)
    validate = await client.post(f"/api/admin/debtors/{debtor_id}/validate", headers=admin_headers)
    assert (validate.status_code, validate.json()) == (409, refused)
    node = base64.b64encode(f"Debtor:{debtor_id}".encode()).decode()
    for mutation, input_type, values in (
        ("debtorUpdate", "DebtorUpdateInput", {"rawData": {"iban": "DE89370400440532013000"}}),
        ("debtorValidate", "DebtorValidateInput", {}),
    ):
        body = await gql(
            client,
            f"mutation($v: {input_type}!) {{ {mutation}(input: $v) {{ debtor {{ id }} "
            "userErrors { field code message } } }",
            {"v": {"debtorId": node, **values}},
            admin_headers,
        )
        assert body["data"][mutation] == {
            "debtor": None,
            "userErrors": [
                {"field": None, "code": "invalid_transition", "message": refused["message"]}
            ],
        }
    async with db() as session:
        after = await session.get(Debtor, debtor_id)
        assert after is not None
        assert (after.raw_data, after.iban, after.validation_status, after.updated_at) == snapshot
        assert after.status == "processing"


@pytest.mark.parametrize(
    "amount",
    ["1" * 32, 1e308, 10**40],
    ids=["long-text", "float-exponent", "long-integer"],
)
async def test_put_with_an_amount_beyond_every_column_is_too_large(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, amount: object
) -> None:
    # The text answered 500 (the default decimal context's 28 digits); a JSON float came as
    # "1e+308", which no amount rule reads, and the row said "Amount is required".
    await upload(client, admin_headers, csv_text(1))
    debtor_id = await _first_debtor_id(db)
    response = await client.put(
        f"/api/admin/debtors/{debtor_id}",
        json={"raw_data": {"amount": amount}},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["validation_errors"] == ["Amount must not exceed 50000"]
    assert data["amount"] == 9999999999.99


async def test_a_debtor_in_another_currency_or_scheme_is_invalid(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    # SEPA direct debit collects euros under the Core scheme: USD rows were billed and put
    # into a pain.008 batch of euros, a long currency cut to its first three letters.
    lines = [HEADER + ",currency,sepa_type"]
    lines += [valid_row(0) + ",USD,CORE", valid_row(1) + ",eur,", valid_row(2) + ",,GARBAGE"]
    lines += [valid_row(3) + ",abcdefghijklmnop,"]
    response = await upload(client, admin_headers, "\n".join(lines) + "\n")
    assert response.status_code == 201, response.text
    assert [(e["row"], e["message"]) for e in response.json()["meta"]["errors"]] == [
        (2, "Currency must be EUR"),
        (4, "SEPA type must be CORE"),
        (5, "Currency must be EUR"),
    ]
