"""Forgetting ``Idempotency-Key`` records once their 24 hours are over."""

from __future__ import annotations

from typing import Any

from debtgraph.domain.core import idempotency as idempotency_service
from debtgraph.jobs.registry import services_of, task


@task("idempotency.purge", every=3600)
async def purge(ctx: dict[str, Any]) -> int:
    """Delete expired idempotency records."""
    services = services_of(ctx)
    async with services.session_factory() as session:
        deleted = await idempotency_service.purge_expired(session, services.clock.now())
        await session.commit()
    return deleted
