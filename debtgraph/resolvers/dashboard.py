"""The operator dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator

from debtgraph.domain.debtors import dashboard
from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.debtors import DEBTOR_EVENTS
from debtgraph.resolvers.permissions import require_operator
from debtgraph.resolvers.uploads import UPLOAD_EVENTS


async def figures(ctx: Context) -> dashboard.DashboardFigures:
    """Uploads and debtors by status, debtors by country, the latest of each."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        return await dashboard.figures(session)


async def watch(ctx: Context) -> AsyncIterator[dashboard.DashboardFigures]:
    """The figures again after each upload or debtor event (operators only)."""
    require_operator(ctx)
    async for _message in events.watch(ctx, (*UPLOAD_EVENTS, *DEBTOR_EVENTS)):
        yield await figures(ctx)
