"""The floor of bench/graphql.py: one page of debtors through asyncpg and orjson, no framework.

``python bench/floor_app.py PORT`` serves ``GET /debtors?upload_id=N`` on ``DATABASE_URL``
(PostgreSQL) as a raw ASGI app under uvicorn: the least any face can do for the same rows
(no authentication, no ORM, no routing), so the other figures read as multiples of it.
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


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


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
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(QUERY, upload_id)
        body = orjson.dumps(
            {"data": [dict(r) for r in rows], "total": rows[0]["total"] if rows else 0},
            default=_default,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    dsn = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    uvicorn.run(
        Floor(dsn), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
