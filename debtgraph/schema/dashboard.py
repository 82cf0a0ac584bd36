"""Operator graph: the dashboard figures and their live updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from debtgraph.domain.debtors.dashboard import DashboardFigures
from debtgraph.resolvers import dashboard
from debtgraph.schema.base import ctx_of
from debtgraph.schema.debtors import Debtor
from debtgraph.schema.live import nodes
from debtgraph.schema.uploads import Upload


@strawberry.type
class UploadCounts:
    total: int
    pending: int
    processing: int
    completed: int
    failed: int


@strawberry.type
class DebtorStatusCounts:
    pending: int
    processing: int
    recovered: int
    failed: int


@strawberry.type
class CountryCount:
    country: str
    count: int


@strawberry.type(description="Debtors by VOP risk class; unchecked: no VOP check yet.")
class RiskClassCounts:
    low: int
    medium: int
    high: int
    unchecked: int


@strawberry.type
class DebtorCounts:
    total: int
    by_status: DebtorStatusCounts
    by_country: list[CountryCount] = strawberry.field(description="Most debtors first.")
    by_risk_class: RiskClassCounts
    ready_for_sync: int = strawberry.field(
        description="Billable debtors: valid, pending, VOP-checked and not high risk."
    )


@strawberry.type(description="The operator dashboard: the figures of GET /api/admin/dashboard.")
class Dashboard:
    uploads: UploadCounts
    debtors: DebtorCounts
    latest_uploads: list[Upload]
    latest_debtors: list[Debtor]

    @classmethod
    def from_figures(cls, f: DashboardFigures) -> Dashboard:
        """Shape the domain figures."""
        return cls(
            uploads=UploadCounts(total=f.uploads_total, **f.uploads_by_status),
            debtors=DebtorCounts(
                total=f.debtors_total,
                by_status=DebtorStatusCounts(**f.debtors_by_status),
                by_country=[
                    CountryCount(country=c, count=n) for c, n in f.debtors_by_country.items()
                ],
                by_risk_class=RiskClassCounts(**f.debtors_by_risk_class),
                ready_for_sync=f.ready_for_sync,
            ),
            latest_uploads=[Upload.from_model(u) for u in f.latest_uploads],
            latest_debtors=[Debtor.from_model(d) for d in f.latest_debtors],
        )


@strawberry.type
class DashboardQuery:
    @strawberry.field(description="The operator dashboard.")
    async def dashboard(self, info: Info) -> Dashboard:
        return Dashboard.from_figures(await dashboard.figures(ctx_of(info)))


@strawberry.type
class DashboardSubscription:
    @strawberry.subscription(description="The dashboard again after each upload or debtor event.")
    async def dashboard_updated(self, info: Info) -> AsyncGenerator[Dashboard, None]:
        async for node in nodes(dashboard.watch(ctx_of(info)), Dashboard.from_figures):
            yield node
