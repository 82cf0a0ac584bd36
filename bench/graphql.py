"""GraphQL against REST against the floor: one page of 100 debtors under load from wrk.

``python bench/graphql.py`` on ``DATABASE_URL`` (PostgreSQL for the figures; the database must
be disposable: its public schema is dropped, migrated and seeded) seeds one upload of 100
debtors with their VOP logs and billing attempts through the public API, counts the SQL
statements one request of each scenario costs, then starts real server processes
(``debtgraph serve``, and a bare asyncpg + orjson ASGI app, ``bench/floor_app.py``, answering
the same rows: the flat page's, and the nested page's in as many statements) and loads each
scenario with ``wrk`` (32 connections; a Lua script for the POST bodies) for req/s and p50/p99
latency.

Every figure is printed beside the floor measured in the same run, and as ratios: the machine
is shared, so absolutes move from run to run and ratios much less. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and this file would shadow graphql-core.
if str(ROOT / "bench") in sys.path:
    sys.path.remove(str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench.common import StatementCounter, free_port  # noqa: E402

HEADER = "first_name,last_name,iban,amount,city,postcode,address,country"
# Sandbox IBANs (domain/payments/gateways.py): approved, final decline, retryable decline.
IBANS = ["ES9121000418450200051332", "DE62370400440532013001", "NL91ABNA0417164300"]
ROWS = 100

# The fields REST's debtor object has, in GraphQL spelling.
DEBTOR_FIELDS = """id databaseId uploadId ibanMasked bankName bankCode bic firstName lastName
  fullName email phone primaryPhone nationalId birthDate street streetNumber floor door apartment
  postcode city province country fullAddress amount currency sepaType status riskClass ibanValid
  nameMatched externalReference validationStatus validationErrors validatedAt createdAt updatedAt"""
FLAT = f"""query Flat($u: ID!) {{ debtors(first: 100, uploadId: $u) {{ totalCount
  nodes {{ {DEBTOR_FIELDS} }} }} }}"""
NESTED = f"""query Nested($u: ID!) {{ debtors(first: 100, uploadId: $u) {{ totalCount
  nodes {{ {DEBTOR_FIELDS}
    upload {{ id databaseId status }}
    vopLogs(first: 5) {{ totalCount nodes {{ id databaseId vopScore scoreLabel result
      createdAt }} }}
    billingAttempts(first: 5) {{ totalCount nodes {{ id databaseId transactionId amount status
      attemptNumber isFinal createdAt }} }} }} }} }}"""
BILLING_START = """mutation($v: BillingStartInput!) { billingStart(input: $v) {
  started userErrors { code message } } }"""


async def seed(url: str) -> tuple[dict[str, Any], dict[str, int]]:
    """Seed through an in-process app; return the scenarios and their SQL statements."""
    # Imported here, once sys.path no longer leads with bench/ (see ROOT).
    from debtgraph.domain.core.clock import SystemClock
    from debtgraph.domain.creditors.operators import upsert_operator
    from debtgraph.domain.migrations.runner import upgrade
    from debtgraph.server.app import create_app, start_runtime, stop_runtime
    from debtgraph.settings import Settings

    app = create_app(Settings(database_url=url, redis_url=None), periodic=False)
    runtime = app.state.runtime
    if url.startswith("postgresql"):
        # The same data every run: a final decline of an earlier run blacklists its IBAN.
        async with runtime.services.engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
    await upgrade(runtime.services.engine)
    async with runtime.services.session_factory() as session:
        await upsert_operator(session, SystemClock(), "bench@tether.test", "password", "Bench")
        await session.commit()
    counter = StatementCounter().listen(runtime.services.engine)
    await start_runtime(runtime, periodic=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/api/login", json={"email": "bench@tether.test", "password": "password"}
            )
            login.raise_for_status()
            token = login.json()["token"]
            op = {"Authorization": f"Bearer {token}"}
            lines = [HEADER] + [
                f"Maria{i},Rodriguez,{IBANS[i % 3]},{10 + i}.50,Madrid,28001,Calle Mayor {i},ES"
                for i in range(ROWS)
            ]
            r = await client.post(
                "/api/admin/uploads",
                files={"file": ("bench.csv", "\n".join(lines).encode())},
                headers=op,
            )
            r.raise_for_status()
            upload_id = int(r.json()["data"]["id"])
            await runtime.services.jobs.drain()
            r = await client.post(
                "/graphql",
                json={"query": BILLING_START, "variables": {"v": {"uploadId": str(upload_id)}}},
                headers=op,
            )
            r.raise_for_status()
            await runtime.services.jobs.drain()
            scenarios = {
                "rest": {
                    "method": "GET",
                    "path": f"/api/admin/debtors?upload_id={upload_id}&per_page=100",
                    "headers": op,
                },
                "graphql_flat": {
                    "method": "POST",
                    "path": "/graphql",
                    "headers": op,
                    "body": {"query": FLAT, "variables": {"u": str(upload_id)}},
                },
                "graphql_nested": {
                    "method": "POST",
                    "path": "/graphql",
                    "headers": op,
                    "body": {"query": NESTED, "variables": {"u": str(upload_id)}},
                },
            }
            statements: dict[str, int] = {}
            for name, s in scenarios.items():
                await request(client, s)  # warm: caches, prepared statements
                counter.count, counter.active = 0, True
                body = await request(client, s)
                counter.active = False
                statements[name] = counter.count
                check(name, body)
            scenarios["floor"] = {
                "method": "GET",
                "path": f"/debtors?upload_id={upload_id}",
                "headers": {},
            }
            scenarios["floor_nested"] = {
                "method": "GET",
                "path": f"/debtors/nested?upload_id={upload_id}",
                "headers": {},
            }
    finally:
        await stop_runtime(runtime)
    return scenarios, statements


async def request(client: httpx.AsyncClient, s: dict[str, Any]) -> Any:
    headers = {**s["headers"], **({"Content-Type": "application/json"} if "body" in s else {})}
    r = await client.request(
        s["method"], s["path"], headers=headers, content=encode_body(s), timeout=60
    )
    if r.status_code != 200:
        raise SystemExit(f"{s['path']} answered {r.status_code}: {r.text[:500]}")
    return r.json()


def check(name: str, body: Any) -> None:
    """Refuse to time a scenario that does not answer the full page without errors."""
    if "errors" in body:
        raise SystemExit(f"{name} answered errors: {json.dumps(body['errors'])[:500]}")
    rows = body["data"] if name == "rest" else body["data"]["debtors"]["nodes"]
    if len(rows) != ROWS:
        raise SystemExit(f"{name} answered {len(rows)} rows, not {ROWS}")
    if name == "graphql_nested" and not all(
        row["vopLogs"]["nodes"] and row["billingAttempts"]["nodes"] for row in rows
    ):
        raise SystemExit("the seeded debtors lack VOP logs or billing attempts")


def encode_body(s: dict[str, Any]) -> bytes | None:
    return json.dumps(s["body"]).encode() if "body" in s else None


def lua_script(s: dict[str, Any], directory: Path) -> Path:
    """wrk's request: method, headers and body of the scenario."""
    lines = [f'wrk.method = "{s["method"]}"', f"wrk.path = {json.dumps(s['path'])}"]
    for key, value in s["headers"].items():
        lines.append(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}")
    if "body" in s:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = {json.dumps(json.dumps(s['body']))}")
    path = directory / f"{abs(hash(s['path'] + str(s.get('body'))))}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(base: str, s: dict[str, Any], args: argparse.Namespace, directory: Path) -> dict:
    """req/s, p50 and p99 (ms), and non-2xx answers of one scenario."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(lua_script(s, directory)),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "requests": int(done.group(1)) if done else 0,
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def start_server(argv: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server on {port} did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    )
    scenarios, statements = asyncio.run(seed(url))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LOG_LEVEL": "WARNING",
        "ENV": "development",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = free_port()
        server = start_server(
            [sys.executable, "-m", "debtgraph.server.cli", "serve", "--port", str(port)],
            port,
            env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for name in ("rest", "graphql_flat", "graphql_nested"):
                results[name] = run_wrk(base, scenarios[name], args, directory)
        finally:
            stop_server(server)
        if url.startswith("postgresql"):
            port = free_port()
            floor = start_server(
                [sys.executable, str(ROOT / "bench" / "floor_app.py"), str(port)], port, env
            )
            try:
                for name in ("floor", "floor_nested"):
                    results[name] = run_wrk(
                        f"http://127.0.0.1:{port}", scenarios[name], args, directory
                    )
            finally:
                stop_server(floor)
    report(url, args, results, statements)


def report(
    url: str,
    args: argparse.Namespace,
    results: dict[str, dict[str, Any]],
    statements: dict[str, int],
) -> None:
    print(
        f"database {url.split('://')[0]}; one API process; wrk -c{args.connections} "
        f"-t{args.threads} -d{args.duration}s; {ROWS} debtors per page"
    )
    print(
        f"{'scenario':16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'SQL/req':>8} {'done':>6}"
        "  non-2xx"
    )
    labels = {
        "floor": "bare asyncpg",
        "floor_nested": "bare nested",
        "rest": "REST page",
        "graphql_flat": "GraphQL flat",
        "graphql_nested": "GraphQL nested",
    }
    floor_statements = {"floor": 1, "floor_nested": 4}
    for name in ("floor", "floor_nested", "rest", "graphql_flat", "graphql_nested"):
        if name not in results:
            continue
        r = results[name]
        sql = statements.get(name, floor_statements.get(name, "?"))
        print(
            f"{labels[name]:16} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {sql!s:>8}"
            f" {r['requests']:>6}  {r['non2xx']} {r['socket_errors']}"
        )
        if r["requests"] < 4 * args.connections:
            # With every connection's request in flight for most of the window, the count is
            # set by the window's edges rather than the rate: the figure is not steady state.
            print(f"{'':16} ^ fewer than {4 * args.connections} requests: raise --duration")
    rest = results["rest"]["rps"]
    print("ratios (throughput):")
    if "floor" in results:
        floor = results["floor"]["rps"]
        print(f"  REST / floor            {rest / floor:.2f}   (target >= 0.40)")
    print(f"  GraphQL flat / REST     {results['graphql_flat']['rps'] / rest:.2f}")
    nested = results["graphql_nested"]["rps"]
    print(f"  GraphQL nested / REST   {nested / rest:.2f}   (target >= 0.50)")
    if "floor_nested" in results:
        # The nested page's own floor: what the target asks of the graph beside what the
        # rows themselves cost (the same target met by the floors would read as their ratio).
        nested_floor = results["floor_nested"]["rps"]
        print(f"  bare nested / floor     {nested_floor / floor:.2f}")
        print(f"  GraphQL nested / bare nested  {nested / nested_floor:.2f}")


if __name__ == "__main__":
    main()
