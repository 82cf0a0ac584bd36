"""The operator dashboard."""

from __future__ import annotations

from debtgraph.domain.debtors import dashboard
from debtgraph.resolvers.auth import require_operator
from debtgraph.resolvers.context import Context


async def figures(ctx: Context) -> dashboard.DashboardFigures:
    """Uploads and debtors by status, debtors by country, the latest of each."""
    require_operator(ctx)
    async with ctx.uow.session() as session:
        return await dashboard.figures(session)
