"""Demo data, loaded through the public API of an in-process app so it obeys every rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from debtgraph.domain.core.clock import SystemClock
from debtgraph.domain.creditors.models import Role, User
from debtgraph.domain.creditors.operators import upsert_operator
from debtgraph.domain.migrations.runner import upgrade
from debtgraph.domain.oauth.models import Platform
from debtgraph.domain.oauth.platforms import register_platform
from debtgraph.server.app import create_app, start_runtime, stop_runtime
from debtgraph.server.commands import api_key_mode
from debtgraph.settings import Settings

OPERATOR = ("admin@tether.test", "password", "Admin User")
CREDITOR_EMAIL = "ada@danone.demo"
DEMO_PLATFORM = "Demo Platform"
DEMO_REDIRECT_URI = "http://localhost:3000/callback"
# Real, checksum-valid identifiers (Cleavr's documented samples fail the checks).
COMPANY = {
    "name": "Danone",
    "siret": "55203253400646",
    "vat_number": "FR27552032534",
    "address": {
        "line1": "17 boulevard Haussmann",
        "city": "Paris",
        "postal_code": "75009",
        "country": "FR",
    },
}
DEBTORS_CSV = """first_name;last_name;iban;amount;city;postcode;address;country;email;reference
María;Rodríguez;ES91 2100 0418 4502 0005 1332;150,00;Madrid;28001;Calle Mayor 7;ES;m@ex.es;ORDER-1
Jürgen;Müller;DE89370400440532013000;1 234,56;Berlin;10115;Hauptstraße 5;DE;;ORDER-2
Françoise;Lefèvre;FR1420041010050500013M02606;89.90;Paris;75001;12 rue de Rivoli;FR;;ORDER-3
Daan;de Vries;NL91ABNA0417164300;45;Amsterdam;1011;Damrak 1;NL;daan@example.com;ORDER-4
Giulia;Rossi;IT60X0542811101000000123456;300;Roma;00118;Via del Corso 10;IT;;ORDER-5
Bad;Iban;ES00INVALID;20;Madrid;28001;Calle Mayor 1;ES;;ORDER-6
No;City;ES9121000418450200051332;20;;28001;Calle Mayor 1;ES;;ORDER-7
"""


async def load_demo(settings: Settings) -> list[str]:
    """An operator, a platform, an active creditor with receivables, and a validated upload."""
    clock = SystemClock()
    app = create_app(settings, periodic=False)
    runtime = app.state.runtime
    await upgrade(runtime.services.engine)
    lines: list[str] = []
    async with runtime.services.session_factory() as session:
        operator = await session.scalar(select(User).where(User.email == OPERATOR[0]))
        kept = operator is not None and operator.role == Role.ADMIN.value
        if not kept:
            # Only when absent: resetting it would revoke every token of it (PRODUCT.md §1), and
            # a second run is to change nothing (a browser signed in as it was signed out).
            operator = await upsert_operator(session, clock, *OPERATOR)
        loaded = await session.scalar(select(Platform.id).where(Platform.name == DEMO_PLATFORM))
        if loaded is None:
            platform = await register_platform(
                session,
                clock,
                DEMO_PLATFORM,
                [DEMO_REDIRECT_URI],
                mode=api_key_mode(settings),
            )
        await session.commit()
    assert operator is not None
    if kept:
        lines.append(f"operator admin@tether.test kept as it was (id {operator.id})")
    else:
        lines.append(f"operator admin@tether.test / password (id {operator.id})")
    if loaded is not None:
        await runtime.services.engine.dispose()
        return [*lines, "the rest of the demo data was loaded before (secrets were shown then)"]
    lines.append(f"platform 'Demo Platform' client_id={platform.platform.client_id}")
    lines.append(f"  client_secret={platform.client_secret}")
    lines.append(f"  api_key={platform.api_key}")
    lines.append(f"  redirect_uri={DEMO_REDIRECT_URI} (its one registered redirect URI)")
    await start_runtime(runtime, periodic=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            lines += await _operator_side(client)
            lines += await _platform_side(client, platform.api_key, clock)
        jobs: Any = runtime.services.jobs
        if hasattr(jobs, "drain"):
            await jobs.drain()
    finally:
        await stop_runtime(runtime)
    return lines


async def _operator_side(client: httpx.AsyncClient) -> list[str]:
    login = await client.post("/api/login", json={"email": OPERATOR[0], "password": OPERATOR[1]})
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    response = await client.post(
        "/api/admin/uploads",
        files={"file": ("demo_debtors.csv", DEBTORS_CSV.encode(), "text/csv")},
        headers=headers,
    )
    response.raise_for_status()
    meta = response.json()["meta"]
    return [f"upload demo_debtors.csv: {meta['created']} valid, {meta['failed']} invalid rows"]


async def _platform_side(client: httpx.AsyncClient, api_key: str, clock: SystemClock) -> list[str]:
    headers = {"Authorization": f"Bearer {api_key}"}
    user = await client.post(
        "/v1/users",
        json={
            "email": CREDITOR_EMAIL,
            "company": COMPANY,
            "contact": {"first_name": "Ada", "last_name": "Lovelace"},
            "tos_acceptance": {"date": clock.now().isoformat(), "ip": "127.0.0.1"},
        },
        headers=headers,
    )
    user.raise_for_status()
    user_id = user.json()["id"]
    # Its password is chosen at this link: the consent page of an OAuth flow signs it in.
    link = user.json().get("onboarding_url")
    today = clock.today()
    created = []
    for number, days, amount in (("F-2026-001", 40, 1200.00), ("F-2026-002", 120, 480.50)):
        receivable = await client.post(
            "/v1/receivables",
            json={
                "user_id": user_id,
                "invoice": {
                    "numbers": [number],
                    "issue_date": (today - timedelta(days=days + 30)).isoformat(),
                    "due_date": (today - timedelta(days=days)).isoformat(),
                    "service_description": "Fourniture de produits frais",
                    "amount": amount,
                    "currency": "EUR",
                },
                "debtor": {
                    "company_name": "Engie",
                    "siret": "54210765113030",
                    "vat_number": "FR13542107651",
                    "contacts": [
                        {
                            "first_name": "Jean",
                            "last_name": "Dupont",
                            "email": "compta@engie.demo",
                            "phone": "+33 1 23 45 67 89",
                        }
                    ],
                },
            },
            headers=headers,
        )
        receivable.raise_for_status()
        created.append(receivable.json()["id"])
    lines = [f"creditor {CREDITOR_EMAIL} ({user_id}), receivables {', '.join(created)}"]
    if link:
        lines.append(f"  set its password (once) to sign in on the OAuth consent page: {link}")
    return lines
