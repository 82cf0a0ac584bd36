"""The operator dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator

from debtgraph.domain.core.events import DEBTOR_EVENTS, UPLOAD_EVENTS
from debtgraph.domain.debtors import dashboard
from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.permissions import require_operator


async def figures(ctx: Context) -> dashboard.DashboardFigures:
    """Uploads and debtors by status, debtors by country, the latest of each."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        return await dashboard.figures(session)


async def watch(ctx: Context) -> AsyncIterator[dashboard.DashboardFigures]:
    """The figures again after each upload or debtor event (operators only)."""
    require_operator(ctx)
    topic = events.Topic(
        "dashboard", frozenset((*UPLOAD_EVENTS, *DEBTOR_EVENTS)), lambda c, _m: figures(c)
    )
    async for result in events.stream(ctx, topic):
        yield result
