"""Relay of the event outbox: publishes committed events that no API process published."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from debtgraph.domain.core import outbox
from debtgraph.jobs.registry import services_of, task


@task("outbox.relay", every=30)
async def relay_outbox(ctx: dict[str, Any], event_ids: list[int] | None = None) -> int:
    """Publish the given events, or every event left unpublished for over 10 seconds."""
    services = services_of(ctx)
    async with services.session_factory() as session:
        return await outbox.relay(
            session,
            services.bus,
            services.clock,
            event_ids,
            older_than=None if event_ids is not None else timedelta(seconds=10),
            jobs=services.jobs,
        )
