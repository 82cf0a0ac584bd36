"""API benchmark: SQL statements per request and requests/s for representative reads.

``python bench/api.py --receivables 200 --requests 300`` loads data through the public API of an
in-process app on ``DATABASE_URL`` (default: a temporary SQLite file; a PostgreSQL database must
be disposable), then for each scenario prints the SQL statements one request costs at two data
sizes (they must not grow with the rows returned) and the requests/s of sequential calls.
Prints figures only; never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and bench/graphql.py would shadow graphql-core.
if str(ROOT / "bench") in sys.path:
    sys.path.remove(str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench.common import StatementCounter  # noqa: E402
from debtgraph.domain.core.clock import SystemClock  # noqa: E402
from debtgraph.domain.creditors.operators import upsert_operator  # noqa: E402
from debtgraph.domain.migrations.runner import upgrade  # noqa: E402
from debtgraph.domain.oauth.platforms import register_platform  # noqa: E402
from debtgraph.server.app import create_app, start_runtime, stop_runtime  # noqa: E402
from debtgraph.server.demo import COMPANY  # noqa: E402
from debtgraph.settings import Settings  # noqa: E402

HEADER = "first_name,last_name,iban,amount,city,postcode,address,country"
ROW = "Maria{i},Rodriguez,DE89370400440532013000,{amount},Berlin,10115,Hauptstrasse {i},DE"

GRAPHQL_UPLOADS = """{ uploads(first: 20) { totalCount nodes { databaseId debtorsCount
  validationStats { total valid invalid }
  debtors(first: 50) { totalCount nodes { databaseId fullName amount
    upload { databaseId } } } } } }"""
GRAPHQL_RECEIVABLES = """{ receivables(first: 100) { totalCount nodes { id status amount
  user { email } contacts { nodes { email } }
  events(first: 10) { totalCount nodes { action } } } } }"""


async def measure(
    client: httpx.AsyncClient,
    counter: StatementCounter,
    method: str,
    url: str,
    requests: int,
    **kw: Any,
) -> tuple[int, float]:
    """Statements of one request, and sequential requests per second."""
    counter.count, counter.active = 0, True
    response = await client.request(method, url, **kw)
    counter.active = False
    if response.status_code != 200 or "errors" in response.text[:200]:
        raise SystemExit(f"{method} {url} failed: {response.status_code} {response.text[:300]}")
    statements = counter.count
    started = time.perf_counter()
    for _ in range(requests):
        await client.request(method, url, **kw)
    return statements, requests / (time.perf_counter() - started)


async def load(client: httpx.AsyncClient, op: dict[str, str], pf: dict[str, str], n: int) -> None:
    """Two uploads of n/2 rows and n receivables with two contacts each."""
    for u in range(2):
        body = "\n".join([HEADER] + [ROW.format(i=i, amount=10 + i) for i in range(n // 2)])
        r = await client.post(
            "/api/admin/uploads", files={"file": (f"b{u}.csv", body.encode())}, headers=op
        )
        r.raise_for_status()
    user = await client.post(
        "/v1/users",
        json={
            "email": f"bench{n}@creditor.test",
            "company": COMPANY,
            "contact": {"first_name": "Ada", "last_name": "Lovelace"},
            "tos_acceptance": {"date": SystemClock().now().isoformat(), "ip": "127.0.0.1"},
        },
        headers=pf,
    )
    user.raise_for_status()
    due = SystemClock().today() - timedelta(days=60)
    for i in range(n):
        r = await client.post(
            "/v1/receivables",
            json={
                "user_id": user.json()["id"],
                "invoice": {
                    "numbers": [f"B-{n}-{i}"],
                    "issue_date": (due - timedelta(days=30)).isoformat(),
                    "due_date": due.isoformat(),
                    "service_description": "bench",
                    "amount": 100.00,
                },
                "debtor": {
                    "company_name": f"Debtor {n} {i}",
                    "contacts": [
                        {"email": f"a{i}@debtor.test", "phone": "+33123456789"},
                        {"email": f"b{i}@debtor.test"},
                    ],
                },
            },
            headers=pf,
        )
        r.raise_for_status()


async def run(args: argparse.Namespace) -> None:
    """Load data at two sizes and print the figures."""
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    )
    app = create_app(Settings(database_url=url, redis_url=None), periodic=False)
    runtime = app.state.runtime
    await upgrade(runtime.services.engine)
    clock = SystemClock()
    async with runtime.services.session_factory() as session:
        await upsert_operator(session, clock, "bench@tether.test", "password", "Bench")
        platform = await register_platform(session, clock, "Bench", ["https://bench.test/cb"])
        await session.commit()
    counter = StatementCounter().listen(runtime.services.engine)
    await start_runtime(runtime, periodic=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/api/login", json={"email": "bench@tether.test", "password": "password"}
            )
            op = {"Authorization": f"Bearer {login.json()['token']}"}
            pf = {"Authorization": f"Bearer {platform.api_key}"}
            scenarios = [
                (
                    "GraphQL uploads>debtors>upload",
                    "POST",
                    "/graphql",
                    op,
                    {"json": {"query": GRAPHQL_UPLOADS}},
                ),
                (
                    "GraphQL receivables>user,contacts,events",
                    "POST",
                    "/graphql",
                    pf,
                    {"json": {"query": GRAPHQL_RECEIVABLES}},
                ),
                (
                    "REST /api/admin/debtors?per_page=100",
                    "GET",
                    "/api/admin/debtors?per_page=100",
                    op,
                    {},
                ),
                ("REST /api/admin/dashboard", "GET", "/api/admin/dashboard", op, {}),
                ("REST /v1/receivables?limit=100", "GET", "/v1/receivables?limit=100", pf, {}),
            ]
            figures: dict[str, list[tuple[int, float]]] = {name: [] for name, *_ in scenarios}
            for size in (args.receivables // 4, args.receivables):
                await load(client, op, pf, size)
                await runtime.services.jobs.drain()
                for name, method, path, headers, kw in scenarios:
                    figures[name].append(
                        await measure(
                            client, counter, method, path, args.requests, headers=headers, **kw
                        )
                    )
    finally:
        await stop_runtime(runtime)
    print(f"database  {url.split('://')[0]}")
    print(f"{'scenario':44} {'SQL/request (small → large data)':>34} {'req/s (large)':>14}")
    for name, ((s1, _), (s2, rps)) in figures.items():
        flag = "" if s1 == s2 else "  <-- grows with data"
        print(f"{name:44} {s1:>16} → {s2:<15} {rps:>14.1f}{flag}")


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivables", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
