"""The recovery scheduler: starts pending receivables of active creditors."""

from __future__ import annotations

from typing import Any

from debtgraph.domain.core import outbox
from debtgraph.domain.receivables import changes as receivable_service
from debtgraph.jobs.registry import services_of, task

BATCH = 100


@task("receivables.start_pending", every=300)
async def start_pending(ctx: dict[str, Any]) -> int:
    """Start every pending receivable of an active creditor, a batch per transaction."""
    services = services_of(ctx)
    total = 0
    while True:
        async with services.session_factory() as session:
            started = await receivable_service.start_pending(session, services.clock, limit=BATCH)
            if not started:
                return total
            await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)
        total += len(started)
        if len(started) < BATCH:
            return total
