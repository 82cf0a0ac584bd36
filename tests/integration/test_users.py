"""``/v1/users…``: creation, reach, requirements, status, and the hosted onboarding page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from debtgraph.domain.core.errors import NUL_MESSAGE
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from tests.integration.cleavr_support import (
    COMPANY,
    CONTACT,
    DANONE_SIRET,
    IBAN,
    bearer,
    complete_user,
    count,
    create_user,
    creditor_token,
    field_error,
)

UNAUTH = {"error": {"code": "unauthenticated", "message": "Missing or invalid credentials."}}


async def test_create_minimal_user_is_pending_with_onboarding_url(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key, {"email": "Bob@Example.test"})
    assert set(body) == {"id", "email", "status", "onboarding_url", "capabilities", "created_at"}
    assert body["id"].startswith("usr_")
    assert body["email"] == "bob@example.test"  # the sign-in name: lower-cased whole
    assert body["status"] == "pending_onboarding"
    assert body["capabilities"] == {"send_receivables": False, "receive_payments": False}
    assert body["onboarding_url"].startswith("http://testserver/onboarding/")
    assert body["created_at"] == "2026-11-22T12:00:00Z"
    fetched = await client.get(f"/v1/users/{body['id']}", headers=bearer(acme.api_key))
    assert fetched.status_code == 200
    assert "onboarding_url" not in fetched.json()
    assert fetched.json()["status"] == "pending_onboarding"


async def test_complete_user_with_valid_identifiers_is_active_at_once(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key)
    assert body["status"] == "active"
    assert body["capabilities"] == {"send_receivables": True, "receive_payments": False}
    status = await client.get(
        f"/v1/users/{body['id']}/onboarding-status", headers=bearer(acme.api_key)
    )
    assert status.json() == {
        "user_id": body["id"],
        "status": "active",
        "kyb_status": "verified",
        "stripe_account_status": "none",
        "requirements": [],
    }
    reqs = await client.get(f"/v1/users/{body['id']}/requirements", headers=bearer(acme.api_key))
    assert reqs.json() == {
        "currently_due": [],
        "eventually_due": ["bank_account.iban", "representative.identity_document"],
        "past_due": [],
    }


async def test_partial_user_is_onboarding_and_requirements_become_past_due(
    client: httpx.AsyncClient, make_platform: Any, clock: Any
) -> None:
    acme = await make_platform()
    body = await create_user(
        client, acme.api_key, {"email": "p@x.test", "company": {"name": "Acme SAS"}}
    )
    assert body["status"] == "onboarding"
    url = f"/v1/users/{body['id']}/requirements"
    due = [
        "company.siret",
        "company.address",
        "contact.first_name",
        "contact.last_name",
        "tos_acceptance",
    ]
    assert (await client.get(url, headers=bearer(acme.api_key))).json()["past_due"] == []
    clock.advance(timedelta(days=14))
    reqs = (await client.get(url, headers=bearer(acme.api_key))).json()
    assert reqs["currently_due"] == due
    assert reqs["past_due"] == due
    status = await client.get(
        f"/v1/users/{body['id']}/onboarding-status", headers=bearer(acme.api_key)
    )
    assert status.json()["kyb_status"] == "unverified"
    assert status.json()["requirements"] == due


async def test_create_user_bad_input_uses_dotted_fields_and_creates_nothing(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    cases = [
        ({}, "email", "required"),
        ({"email": "not-an-email"}, "email", "invalid_email"),
        (
            {"email": "a@b.test", "company": {"siret": "12345678901234"}},
            "company.siret",
            "invalid_siret",
        ),
        (
            {
                "email": "a@b.test",
                "company": {"siret": DANONE_SIRET, "vat_number": "FR13542107651"},
            },
            "company.vat_number",
            "vat_siret_mismatch",
        ),
        (
            {"email": "a@b.test", "company": {"address": {"country": "France"}}},
            "company.address.country",
            "invalid_country",
        ),
        ({"email": "a@b.test", "tos_acceptance": {"date": "x"}}, "tos_acceptance.date", None),
    ]
    for payload, field, code in cases:
        response = await client.post("/v1/users", json=payload, headers=headers)
        assert response.status_code == 400, payload
        error = response.json()["error"]
        assert set(error) == {"code", "message", "field", "details"}
        assert error["field"] == field
        if code:
            assert error["code"] == code
    malformed = await client.post(
        "/v1/users", content=b"{", headers={**headers, "content-type": "application/json"}
    )
    assert malformed.status_code == 400
    error = malformed.json()["error"]
    assert error["code"] == "invalid_json"
    # About no field: omitted at the top level and in each of the details alike.
    assert "field" not in error
    assert [set(e) for e in error["details"]["errors"]] == [{"code", "message"}]
    assert await count(db, User) == 0


async def test_duplicate_email_is_refused(client: httpx.AsyncClient, make_platform: Any) -> None:
    acme = await make_platform()
    await create_user(client, acme.api_key, {"email": "dup@x.test"})
    again = await client.post(
        "/v1/users", json={"email": "dup@x.test"}, headers=bearer(acme.api_key)
    )
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "email_taken"


async def test_user_authorization(
    client: httpx.AsyncClient, make_platform: Any, db: Any, clock: Any
) -> None:
    acme = await make_platform("Acme")
    other = await make_platform("Other")
    body = await create_user(client, acme.api_key)
    uid = body["id"]
    for path in (
        f"/v1/users/{uid}",
        f"/v1/users/{uid}/onboarding-status",
        f"/v1/users/{uid}/requirements",
    ):
        anonymous = await client.get(path)
        assert anonymous.status_code == 401
        assert anonymous.json() == UNAUTH
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="debtgraph"'
        junk = await client.get(path, headers=bearer("not-a-token"))
        assert junk.status_code == 401
        assert junk.headers["www-authenticate"] == 'Bearer realm="debtgraph"'
        foreign = await client.get(path, headers=bearer(other.api_key))
        assert foreign.status_code == 404
        assert foreign.json()["error"]["code"] == "not_found"
        assert (await client.get(path, headers=bearer(acme.api_key))).status_code == 200
    assert (await client.get("/v1/users/usr_nope", headers=bearer(acme.api_key))).status_code == 404
    # Anonymous and creditor tokens cannot create users; nothing is created.
    assert (await client.post("/v1/users", json={"email": "z@x.test"})).status_code == 401
    async with db() as session:
        user = (await session.scalars(select(User))).one()
    own = await creditor_token(db, clock, acme.platform.id, user.id, "users:read")
    assert (await client.get(f"/v1/users/{uid}", headers=bearer(own))).status_code == 200
    no_scope = await creditor_token(db, clock, acme.platform.id, user.id, "receivables:read")
    refused = await client.get(f"/v1/users/{uid}", headers=bearer(no_scope))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="debtgraph", error="insufficient_scope", scope="users:read"'
    )
    creating = await client.post("/v1/users", json={"email": "z@x.test"}, headers=bearer(own))
    assert creating.status_code == 403
    assert creating.json()["error"]["code"] == "insufficient_scope"
    assert await count(db, User) == 1


async def test_operator_sees_every_creditor(
    client: httpx.AsyncClient, make_platform: Any, admin_headers: dict[str, str]
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key)
    assert (await client.get(f"/v1/users/{body['id']}", headers=admin_headers)).status_code == 200


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert match, page
    return match.group(1)


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


ONBOARDING_FORM = {
    "company.name": "Danone",
    "company.siret": DANONE_SIRET,
    "company.vat_number": "",
    "company.address.line1": "17 boulevard Haussmann",
    "company.address.postal_code": "75009",
    "company.address.city": "Paris",
    "company.address.country": "FR",
    "contact.first_name": "Ada",
    "contact.last_name": "Lovelace",
    "bank_account.iban": IBAN,
    "tos_acceptance": "accepted",
    "password": "correct horse battery",
    "password_confirmation": "correct horse battery",
}


async def test_hosted_onboarding_activates_the_user_once(
    client: httpx.AsyncClient, make_platform: Any, db: Any, drain: Any
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key, {"email": "new@x.test"})
    path = _path(body["onboarding_url"])
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    token = _csrf(page.text)

    bad = await client.post(
        path, data={**ONBOARDING_FORM, "company.siret": "123", "csrf_token": token}
    )
    assert bad.status_code == 400
    assert "14 digits" in bad.text
    ok = await client.post(path, data={**ONBOARDING_FORM, "csrf_token": token})
    assert ok.status_code == 200, ok.text
    assert "ready" in ok.text
    user = (await client.get(f"/v1/users/{body['id']}", headers=bearer(acme.api_key))).json()
    assert user["status"] == "active"
    assert user["capabilities"] == {"send_receivables": True, "receive_payments": True}
    async with db() as session:
        row = (await session.scalars(select(User))).one()
        assert row.password_hash
        assert "correct horse" not in row.password_hash
        events = (await session.scalars(select(Event).where(Event.type == "user.updated"))).all()
    assert len(events) == 1
    assert events[0].data["previous_attributes"]["status"] == "pending_onboarding"
    # One-time link.
    assert (await client.get(path)).status_code == 404
    assert (
        await client.post(path, data={**ONBOARDING_FORM, "csrf_token": token})
    ).status_code == 404


async def fresh_onboarding_form(client: httpx.AsyncClient, make_platform: Any) -> tuple[str, str]:
    """A new creditor's onboarding page: its path and the form's CSRF token."""
    acme = await make_platform()
    body = await create_user(client, acme.api_key, {"email": "new@x.test"})
    path = _path(body["onboarding_url"])
    return path, _csrf((await client.get(path)).text)


async def test_a_form_refused_for_a_nul_does_not_echo_it(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    # PRODUCT.md §12 refuses NUL characters; the page showing the refusal put the value back
    # into its field, NUL and all, where HTML allows none.
    path, token = await fresh_onboarding_form(client, make_platform)
    form = {**ONBOARDING_FORM, "company.name": "Acme\x00Corp", "csrf_token": token}
    refused = await client.post(path, data=form)
    assert refused.status_code == 400
    assert "\x00" not in refused.text
    assert 'value="Acme\ufffdCorp"' in refused.text


async def test_a_password_holding_a_nul_is_refused(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    # Outside review: it was set, where no sign-in form nor JSON body would take it back.
    path, token = await fresh_onboarding_form(client, make_platform)
    secret = "longpass\x00word1"
    form = {**ONBOARDING_FORM, "password": secret, "password_confirmation": secret}
    refused = await client.post(path, data={**form, "csrf_token": token})
    assert refused.status_code == 400
    assert field_error(refused.text, "password") == NUL_MESSAGE


async def test_a_refused_form_keeps_the_terms_accepted(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    # Refused for another field, the form came back with the terms box cleared: a caller who
    # fixed that field and sent it again was refused once more, for the terms.
    path, token = await fresh_onboarding_form(client, make_platform)
    bad = {**ONBOARDING_FORM, "password_confirmation": "something else", "csrf_token": token}
    refused = await client.post(path, data=bad)
    assert refused.status_code == 400

    def box(page: str) -> str:
        """The terms checkbox's tag."""
        found = re.search(r'<input type="checkbox"[^>]*name="tos_acceptance"[^>]*>', page)
        assert found, page
        return found.group(0)

    assert " checked" in box(refused.text)
    unticked = {k: v for k, v in bad.items() if k != "tos_acceptance"}
    assert " checked" not in box((await client.post(path, data=unticked)).text)


async def test_onboarding_form_refuses_missing_or_forged_csrf(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key, {"email": "new@x.test"})
    path = _path(body["onboarding_url"])
    await client.get(path)
    for token in ("", "0" * 64):
        response = await client.post(path, data={**ONBOARDING_FORM, "csrf_token": token})
        assert response.status_code == 403
    # A token from another browser (other cookie) does not work either.
    page = await client.get(path)
    token = _csrf(page.text)
    client.cookies.clear()
    assert (
        await client.post(path, data={**ONBOARDING_FORM, "csrf_token": token})
    ).status_code == 403
    async with db() as session:
        assert (await session.scalars(select(User))).one().status == "pending_onboarding"


async def test_onboarding_validation_lists_fields(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    path, token = await fresh_onboarding_form(client, make_platform)
    response = await client.post(
        path,
        data={
            "csrf_token": token,
            "bank_account.iban": "FR00 nope",
            "password": "short",
            "password_confirmation": "short",
        },
    )
    assert response.status_code == 400
    for message in (
        "The company name is required.",
        "The IBAN is invalid.",
        "You must accept the terms of service.",
        "at least 10 characters",
    ):
        assert message in response.text
    assert "<script>" not in response.text


async def test_complete_user_gets_a_set_password_link(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key, complete_user())
    path = _path(body["onboarding_url"])
    page = await client.get(path)
    assert "Choose your password" in page.text
    assert "company.siret" not in page.text
    response = await client.post(
        path,
        data={
            "csrf_token": _csrf(page.text),
            "password": "a long enough password",
            "password_confirmation": "a long enough password",
        },
    )
    assert response.status_code == 200
    async with db() as session:
        assert (await session.scalars(select(User))).one().password_hash


async def test_values_are_escaped_on_the_page(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    body = await create_user(
        client,
        acme.api_key,
        {
            "email": "x@x.test",
            "company": {**COMPANY, "siret": None, "name": "<script>x</script>"},
            "contact": CONTACT,
        },
    )
    page = await client.get(_path(body["onboarding_url"]))
    assert "<script>x" not in page.text
    assert "&lt;script&gt;x" in page.text
