"""Pooled connections the server closed are never handed to a request (PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from debtgraph.domain.core.database import is_sqlite
from tests.conftest import DATABASE_URL

pytestmark = pytest.mark.skipif(is_sqlite(DATABASE_URL), reason="server-side backends: PostgreSQL")

OTHERS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


async def test_requests_after_the_server_closed_every_pooled_connection_answer(
    client: httpx.AsyncClient, admin_headers: dict[str, str], runtime: Any
) -> None:
    # Several idle pooled connections, each used for a caller's token and a page.
    pages = [client.get("/api/admin/debtors", headers=admin_headers) for _ in range(4)]
    assert all(r.status_code == 200 for r in await asyncio.gather(*pages))
    assert runtime.services.engine.sync_engine.pool.checkedin() >= 2
    # What a restart or an operator's pg_terminate_backend does to them, from outside the pool.
    killer = create_async_engine(runtime.services.engine.url)
    try:
        async with killer.connect() as conn:
            assert await conn.scalar(text(f"SELECT count(pg_terminate_backend(pid)) {OTHERS}"))
            for _ in range(100):
                if not await conn.scalar(text(f"SELECT count(*) {OTHERS}")):
                    break
                await asyncio.sleep(0.05)
    finally:
        await killer.dispose()
    await asyncio.sleep(0.1)  # the event loop reads the end of each closed socket
    for _ in range(6):
        response = await client.get("/api/admin/debtors", headers=admin_headers)
        assert response.status_code == 200, response.text
