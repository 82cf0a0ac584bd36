"""``Idempotency-Key`` use cases: claim a key before the request runs, store or release after.

These run in short transactions of their own (not the request's unit of work): the claim must be
committed before the request's work starts so that a concurrent duplicate sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from debtgraph.domain.core import idempotency as service
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import Conflict, FieldError, InputError, NotFound
from debtgraph.resolvers.permissions import require_scope, still_reaches


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed key (``claim_id``), or the stored response to replay."""

    claim_id: int | None
    replay: service.StoredResponse | None = None


def _reused() -> Conflict:
    return Conflict(
        "idempotency_key_reuse",
        "This Idempotency-Key was already used with a different request; use a new key.",
    )


def _in_flight() -> Conflict:
    return Conflict(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed; retry later.",
    )


async def claim(
    ctx: Context,
    key: str,
    method: str,
    path: str,
    body: bytes,
    multipart_boundary: str | None = None,
) -> Claim:
    """Claim ``key`` for this request, or give the stored response; Conflict when refused."""
    key = key.strip()
    if not key or len(key) > service.MAX_KEY_LENGTH:
        raise InputError(
            [
                FieldError(
                    "Idempotency-Key",
                    "invalid_idempotency_key",
                    f"The Idempotency-Key header must be 1 to {service.MAX_KEY_LENGTH} characters.",
                )
            ]
        )
    if ctx.principal is None:
        return Claim(claim_id=None)
    principal = ctx.principal.key
    fingerprint = service.request_fingerprint(method, path, body, multipart_boundary)
    now = ctx.clock.now()
    for _ in range(2):
        async with ctx.services.session_factory() as session:
            try:
                row = await service.find_live(session, principal, key, now)
                if row is not None:
                    replay = service.replay_of(row, fingerprint)
                    await session.commit()
                    return Claim(claim_id=None, replay=replay)
                created = service.new_claim(session, principal, key, method, path, fingerprint, now)
                await session.commit()
                return Claim(claim_id=created.id)
            except service.KeyReused:
                raise _reused() from None
            except service.KeyInFlight:
                raise _in_flight() from None
            except IntegrityError:
                # Another request claimed the key between our read and our insert: look again.
                await session.rollback()
    raise _in_flight()


async def store(ctx: Context, claim: Claim, status_code: int, body: Any) -> None:
    """Keep the response the claiming request got, for replays."""
    if claim.claim_id is None:
        return
    async with ctx.services.session_factory() as session:
        await service.save_response(
            session, claim.claim_id, status_code, body, ctx.required_scopes, ctx.reached
        )
        await session.commit()


async def check_replay(ctx: Context, replay: service.StoredResponse) -> None:
    """Ask again of the caller a replay goes to what the first request's checks asked: its
    scopes (MissingScope: the caller's token now lacks one) and its reach over each creditor
    the request reached (NotFound of that object: the grant ended, the creditor was deleted),
    so a replay is refused where a fresh request would be."""
    for scope in replay.scopes:
        require_scope(ctx, scope)
    for kind, user_id, scope in replay.reached:
        if not await still_reaches(ctx, user_id, scope):
            raise NotFound(kind)


async def release(ctx: Context, claim: Claim) -> None:
    """Free the key after a server failure."""
    if claim.claim_id is None:
        return
    async with ctx.services.session_factory() as session:
        await service.release(session, claim.claim_id)
        await session.commit()
