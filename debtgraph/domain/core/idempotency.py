"""Idempotency keys with Stripe's semantics: one result per (caller, key), kept 24 hours.

A first request claims the key (a row with no response yet) in its own short transaction, so a
concurrent request with the same key finds the claim and is refused instead of running twice.
The stored response is replayed for the same request; a different request (method, path or
body) under the same key is refused. Server failures (5xx) release the key so a retry can run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Integer, String, UniqueConstraint, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base, JSONType


class IdempotencyKey(Base):
    """A key a caller sent with a POST, the request's fingerprint and the response it got."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    # The response's JSON text as it was sent, kept as a JSON string: stored as a JSON value,
    # PostgreSQL's JSONB reorders an object's keys, and a replay must be the same bytes (a
    # client may hash or sign what it got). Rows written before hold the decoded object.
    response_body: Mapped[dict[str, Any] | str | None] = mapped_column(JSONType, default=None)
    # The checks the request passed, which a replay asks again of its caller (whose later token
    # may hold fewer scopes, whose grant may have ended): space-separated, each a scope
    # (``receivables:write``) or a reach (``reach=<kind>=<user id>=<scope>``).
    checks: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response given to the first request under a key."""

    status_code: int
    body: Any
    scopes: tuple[str, ...] = ()
    # (kind, user id, scope) of each creditor the first request reached.
    reached: tuple[tuple[str, int, str], ...] = ()


class KeyReused(Exception):
    """The key was used for a different request."""


class KeyInFlight(Exception):
    """The first request under this key has not finished."""


def request_fingerprint(
    method: str, path: str, body: bytes, multipart_boundary: str | None = None
) -> str:
    """SHA-256 over method, path and the body, canonicalised so equal requests hash equal.

    JSON is re-serialised with sorted keys. A multipart body has its boundary taken out: HTTP
    clients draw a new random boundary each time they build a request, so a retry of the same
    upload would otherwise never match its first try. RFC 2046 keeps the boundary out of every
    part's content, so removing its delimiter lines changes nothing else.
    """
    if multipart_boundary:
        canonical = body.replace(b"--" + multipart_boundary.encode("latin-1"), b"--")
    else:
        try:
            canonical = (
                orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
            )
        except orjson.JSONDecodeError:
            canonical = body
    return hashlib.sha256(
        method.upper().encode() + b" " + path.encode() + b"\n" + canonical
    ).hexdigest()


async def find_live(
    session: AsyncSession, principal: str, key: str, now: datetime
) -> IdempotencyKey | None:
    """The unexpired record of a key; an expired one is deleted (the key is free again)."""
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == principal, IdempotencyKey.key == key
        )
    )
    if row is not None and row.expires_at <= now:
        await session.delete(row)
        await session.flush()
        return None
    return row


def replay_of(row: IdempotencyKey, fingerprint: str) -> StoredResponse:
    """The stored response for a repeated request, or KeyReused / KeyInFlight."""
    if row.request_hash != fingerprint:
        raise KeyReused()
    if row.response_status is None:
        raise KeyInFlight()
    checks = (row.checks or "").split()
    reached = tuple(
        (kind, int(user_id), scope)
        for kind, user_id, scope in (c.split("=")[1:] for c in checks if c.startswith("reach="))
    )
    scopes = tuple(c for c in checks if not c.startswith("reach="))
    return StoredResponse(row.response_status, row.response_body, scopes, reached)


def new_claim(
    session: AsyncSession,
    principal: str,
    key: str,
    method: str,
    path: str,
    fingerprint: str,
    now: datetime,
) -> IdempotencyKey:
    """Add the claim of a key (no response yet); the caller commits it at once."""
    row = IdempotencyKey(
        principal=principal,
        key=key,
        method=method.upper(),
        path=path[:500],
        request_hash=fingerprint,
        created_at=now,
        expires_at=now + KEEP_FOR,
    )
    session.add(row)
    return row


async def save_response(
    session: AsyncSession,
    claim_id: int,
    status_code: int,
    body: Any,
    scopes: Iterable[str] = (),
    reached: Iterable[tuple[str, int, str]] = (),
) -> None:
    """Store the response of the request that claimed the key, and the checks it passed."""
    checks = sorted(scopes) + sorted(f"reach={k}={u}={s}" for k, u, s in reached)
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id)
        .values(
            response_status=status_code,
            response_body=body,
            checks=" ".join(checks) or None,
        )
    )


async def release(session: AsyncSession, claim_id: int) -> None:
    """Forget a claim whose request failed on the server side."""
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """Delete every record older than 24 hours; returns how many."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
