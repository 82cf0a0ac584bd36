"""The operator dashboard's figures: uploads by status, debtors by status and country, latest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.debtors.models import (
    Debtor,
    DebtorStatus,
    Upload,
    UploadStatus,
    billable_condition,
)

RECENT: Final = 5
RISK_CLASSES: Final = ("low", "medium", "high")
UNCHECKED: Final = "unchecked"


@dataclass
class DashboardFigures:
    """Counts and the latest rows, as ``GET /api/admin/dashboard`` shows them."""

    uploads_by_status: dict[str, int]
    debtors_by_status: dict[str, int]
    debtors_by_country: dict[str, int]
    # VOP figures (PRODUCT.md §7): debtors by risk class ("unchecked" for none yet) and how
    # many are ready for sync (billable: debtors.models.billable_condition).
    debtors_by_risk_class: dict[str, int] = field(default_factory=dict)
    ready_for_sync: int = 0
    latest_uploads: list[Upload] = field(default_factory=list)
    latest_debtors: list[Debtor] = field(default_factory=list)

    @property
    def uploads_total(self) -> int:
        """Every upload."""
        return sum(self.uploads_by_status.values())

    @property
    def debtors_total(self) -> int:
        """Every debtor."""
        return sum(self.debtors_by_status.values())


async def figures(session: AsyncSession, recent: int = RECENT) -> DashboardFigures:
    """Every figure in six statements, whatever the number of rows."""
    uploads = dict(
        (await session.execute(select(Upload.status, func.count()).group_by(Upload.status))).all()
    )
    debtors = dict(
        (await session.execute(select(Debtor.status, func.count()).group_by(Debtor.status))).all()
    )
    countries = (
        await session.execute(
            select(Debtor.country, func.count())
            .where(Debtor.country.is_not(None))
            .group_by(Debtor.country)
            .order_by(func.count().desc(), Debtor.country)
        )
    ).all()
    risks = (
        await session.execute(
            select(
                Debtor.risk_class,
                func.count(),
                func.sum(case((billable_condition(), 1), else_=0)),
            ).group_by(Debtor.risk_class)
        )
    ).all()
    by_risk = {risk: 0 for risk in (*RISK_CLASSES, UNCHECKED)}
    for risk, count, _ready in risks:
        by_risk[risk or UNCHECKED] += int(count)
    latest_uploads = (
        await session.scalars(select(Upload).order_by(Upload.id.desc()).limit(recent))
    ).all()
    latest_debtors = (
        await session.scalars(select(Debtor).order_by(Debtor.id.desc()).limit(recent))
    ).all()
    return DashboardFigures(
        # Every documented status is shown, with 0 when there is none.
        uploads_by_status={s.value: int(uploads.get(s.value, 0)) for s in UploadStatus},
        debtors_by_status={s.value: int(debtors.get(s.value, 0)) for s in DebtorStatus},
        debtors_by_country={str(c): int(n) for c, n in countries},
        debtors_by_risk_class=by_risk,
        ready_for_sync=sum(int(ready or 0) for _risk, _count, ready in risks),
        latest_uploads=list(latest_uploads),
        latest_debtors=list(latest_debtors),
    )
