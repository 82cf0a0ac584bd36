"""Operator use cases on the IBAN blacklist."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from debtgraph.domain.banking.iban import normalize_iban
from debtgraph.domain.debtors import blacklist
from debtgraph.domain.debtors.models import BlacklistedIban
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import NotFound
from debtgraph.resolvers.loaders import Page, Window
from debtgraph.resolvers.pagination import keyset_page
from debtgraph.resolvers.permissions import require_operator


async def list_entries(
    ctx: Context, *, search: str | None, window: Window
) -> Page[BlacklistedIban]:
    """A keyset page of blacklisted IBANs, newest first; ``search`` matches part of an IBAN."""
    require_operator(ctx)
    stmt = select(BlacklistedIban)
    term = normalize_iban(search)
    if term:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(BlacklistedIban.iban.like(f"%{escaped}%", escape="\\"))
    async with ctx.uow.session() as session:
        return await keyset_page(session, stmt, BlacklistedIban.id, window)


async def entries_by_ids(ctx: Context, ids: list[int]) -> dict[int, BlacklistedIban]:
    """Blacklist entries among ids (operators only; others see none)."""
    if ctx.principal is None or not ctx.principal.is_operator:
        return {}
    rows = await ctx.loaders.by(BlacklistedIban.id).load_many(ids)
    return {row.id: row for row in rows if row is not None}


async def add(ctx: Context, iban: Any, reason: str | None) -> BlacklistedIban:
    """Blacklist an IBAN (normalised); adding a listed IBAN again returns its entry."""
    principal = require_operator(ctx)
    async with ctx.uow.session() as session:
        entry, _ = await blacklist.add(session, ctx.clock, iban, reason, principal.user_id)
    await ctx.uow.commit()
    return entry


async def remove(ctx: Context, iban: Any) -> BlacklistedIban:
    """Take an IBAN off the blacklist; NotFound when it is not listed."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        entry = await blacklist.remove(session, iban)
        if entry is None:
            raise NotFound("Blacklisted IBAN")
    await ctx.uow.commit()
    return entry
