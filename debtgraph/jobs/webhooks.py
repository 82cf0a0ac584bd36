"""Webhook deliveries: send the ones a relay created, and sweep up every delivery that is due."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core import outbox
from debtgraph.domain.core.services import Services
from debtgraph.domain.webhooks import deliveries
from debtgraph.domain.webhooks.transport import Sender
from debtgraph.jobs.registry import services_of, task

SENDER_PORT = "webhooks.sender"


def sender_of(services: Services[Any]) -> Sender:
    """The process's webhook sender (one connection pool per receiving host)."""
    sender = services.ports.get(SENDER_PORT)
    if sender is None:
        sender = services.ports[SENDER_PORT] = Sender()
    assert isinstance(sender, Sender)
    return sender


def config_of(services: Services[Any]) -> deliveries.DeliveryConfig:
    """What deliveries read from the settings."""
    settings = services.settings
    return deliveries.DeliveryConfig(
        secret_key=settings.secret_key, allow_private=settings.allow_private_webhook_urls
    )


async def _deliver(services: Services[Any], delivery_ids: list[int] | None) -> int:
    async def commit(session: AsyncSession) -> None:
        # A recording may disable an endpoint, whose webhook.disabled event is relayed here.
        await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)

    async with services.session_factory() as session:
        return await deliveries.deliver_batch(
            session,
            services.clock,
            sender_of(services),
            config_of(services),
            delivery_ids,
            commit=commit,
        )


@task(deliveries.DELIVER_TASK)
async def deliver(ctx: dict[str, Any], delivery_ids: list[int]) -> int:
    """Attempt these deliveries now (those still due: a re-run of this job sends nothing twice)."""
    services = services_of(ctx)
    total = 0
    for start in range(0, len(delivery_ids), deliveries.BATCH):
        total += await _deliver(services, delivery_ids[start : start + deliveries.BATCH])
    if total:
        # A later event of an object waits for the earlier one's delivery (order per object),
        # possibly sent by another job that was running meanwhile: send whatever that made due
        # now rather than at the next sweep. Each round attempts deliveries no earlier round
        # did (a claim given back unused is not counted), and failures are due only later, so
        # this ends.
        while sent := await _deliver(services, None):
            total += sent
    return total


@task("webhooks.sweep", every=30)
async def sweep(ctx: dict[str, Any]) -> int:
    """Attempt every delivery that is due: retries, and those whose job never ran."""
    services = services_of(ctx)
    total = 0
    while True:
        sent = await _deliver(services, None)
        total += sent
        if sent < deliveries.BATCH:
            return total
