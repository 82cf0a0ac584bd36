"""The floors of bench/graphql.py: its pages through asyncpg and orjson, no framework.

``python bench/floor_app.py PORT`` serves on ``DATABASE_URL`` (PostgreSQL) as a raw ASGI app
under uvicorn: the least any face can do for the same rows (no authentication, no ORM, no
routing), so the other figures read as multiples of it.

- ``GET /debtors?upload_id=N``: one page of 100 debtors (the rows of the REST page and of the
  flat GraphQL page), one statement.
- ``GET /debtors/nested?upload_id=N``: the rows of the nested GraphQL page: the same debtors,
  their upload, and each one's newest 5 VOP logs and billing attempts with their totals; one
  statement each, as the graph's loaders read them (per parent of an array, a lateral page and
  a grouped count), on one pooled connection: asyncpg's pool resets a connection it takes back
  with a statement of its own, so a checkout per statement would cost the floor four more
  round trips than the least it can do (measured: 222 against 331 req/s).
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import orjson
import uvicorn

# The columns REST's debtor object shows, in one statement like the REST page's own.
QUERY = """SELECT id, upload_id, iban_masked, bank_name, bank_code, bic, first_name, last_name,
  email, phone, national_id, birth_date, street, street_number, floor, door, apartment,
  postcode, city, province, country, amount, currency, sepa_type, status, risk_class,
  iban_valid, name_matched, external_reference, validation_status, validation_errors,
  validated_at, created_at, updated_at, count(*) OVER () AS total
  FROM debtors WHERE upload_id = $1 ORDER BY id DESC LIMIT 100"""
UPLOADS = "SELECT id, status FROM uploads WHERE id = ANY($1::int[])"
# Per parent of the array: its total (no filter) and its newest 5 rows (what first: 5 shows).
CHILDREN = """SELECT p.id AS parent, coalesce(c.n, 0) AS total, l.*
  FROM unnest($1::int[]) AS p(id)
  LEFT JOIN (SELECT debtor_id, count(*) AS n FROM {table} WHERE debtor_id = ANY($1::int[])
    GROUP BY debtor_id) c ON c.debtor_id = p.id
  LEFT JOIN LATERAL (SELECT {columns} FROM {table} t WHERE t.debtor_id = p.id
    ORDER BY t.id DESC LIMIT 5) l ON true"""
VOP_LOGS = CHILDREN.format(
    table="vop_logs", columns="id, vop_score, score_label, result, created_at"
)
ATTEMPTS = CHILDREN.format(
    table="billing_attempts",
    columns="id, transaction_id, amount, status, attempt_number, created_at",
)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def _pages(rows: list[Any], parents: list[int]) -> dict[int, dict[str, Any]]:
    """Each parent's ``{totalCount, nodes}`` from a CHILDREN result."""
    pages: dict[int, dict[str, Any]] = {p: {"totalCount": 0, "nodes": []} for p in parents}
    for row in rows:
        page = pages[row["parent"]]
        page["totalCount"] = row["total"]
        if row["id"] is not None:
            node = dict(row)
            del node["parent"], node["total"]
            page["nodes"].append(node)
    return pages


class Floor:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.pool = await asyncpg.create_pool(self.dsn, min_size=10, max_size=20)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.pool is not None:
                        await self.pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        upload_id = int(parse_qs(scope["query_string"].decode())["upload_id"][0])
        if scope["path"] == "/debtors/nested":
            body = await self.nested(upload_id)
        else:
            body = await self.flat(upload_id)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def flat(self, upload_id: int) -> bytes:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(QUERY, upload_id)
        return orjson.dumps(
            {"data": [dict(r) for r in rows], "total": rows[0]["total"] if rows else 0},
            default=_default,
        )

    async def nested(self, upload_id: int) -> bytes:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(QUERY, upload_id)
            debtors = [dict(r) for r in rows]
            ids = [d["id"] for d in debtors]
            uploads = {r["id"]: dict(r) for r in await conn.fetch(UPLOADS, [upload_id])}
            logs = _pages(await conn.fetch(VOP_LOGS, ids), ids)
            attempts = _pages(await conn.fetch(ATTEMPTS, ids), ids)
        for debtor in debtors:
            debtor["upload"] = uploads.get(debtor["upload_id"])
            debtor["vopLogs"] = logs[debtor["id"]]
            debtor["billingAttempts"] = attempts[debtor["id"]]
        return orjson.dumps(
            {"data": debtors, "total": rows[0]["total"] if rows else 0}, default=_default
        )


def main() -> None:
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    uvicorn.run(
        Floor(dsn), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
