"""Operator graph: the IBAN blacklist (list, add, remove)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from debtgraph.domain.debtors.models import BlacklistedIban
from debtgraph.resolvers import blacklist
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema.base import (
    Connection,
    UserError,
    attempt,
    ctx_of,
    nodes_in_order,
    to_connection,
)


@strawberry.type(description="An IBAN operators refuse to debit.")
class BlacklistEntry(relay.Node):
    id: relay.NodeID[str]
    database_id: int
    iban: str = strawberry.field(description="Electronic form: no spaces, upper case.")
    reason: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, m: BlacklistedIban) -> BlacklistEntry:
        """Shape a blacklist row."""
        return cls(
            id=str(m.id), database_id=m.id, iban=m.iban, reason=m.reason, created_at=m.created_at
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[BlacklistEntry | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: blacklist.entries_by_ids(ctx, ids), cls.from_model, numeric=True
        )


@strawberry.input
class BlacklistAddInput:
    iban: str
    reason: str | None = None


@strawberry.input
class BlacklistRemoveInput:
    iban: str


@strawberry.type
class BlacklistPayload:
    entry: BlacklistEntry | None
    user_errors: list[UserError]


@strawberry.type
class BlacklistQuery:
    @strawberry.field(description="Blacklisted IBANs, newest first; search matches part of one.")
    async def blacklisted_ibans(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        search: str | None = None,
    ) -> Connection[BlacklistEntry]:
        page = await blacklist.list_entries(
            ctx_of(info), search=search, window=check_window(first, after, last, before)
        )
        return to_connection(page, BlacklistEntry.from_model)


@strawberry.type
class BlacklistMutation:
    @strawberry.mutation(
        description="Blacklist an IBAN (stored normalised; adding twice is a no-op)."
    )
    async def blacklist_add(self, info: Info, input: BlacklistAddInput) -> BlacklistPayload:
        entry, errors = await attempt(blacklist.add(ctx_of(info), input.iban, input.reason))
        return BlacklistPayload(
            entry=BlacklistEntry.from_model(entry) if entry else None, user_errors=errors
        )

    @strawberry.mutation(description="Take an IBAN off the blacklist.")
    async def blacklist_remove(self, info: Info, input: BlacklistRemoveInput) -> BlacklistPayload:
        entry, errors = await attempt(blacklist.remove(ctx_of(info), input.iban))
        return BlacklistPayload(
            entry=BlacklistEntry.from_model(entry) if entry else None, user_errors=errors
        )
