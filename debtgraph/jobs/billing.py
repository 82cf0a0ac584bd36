"""Billing jobs: submitting attempts to the gateway, and the retry cron.

``billing.submit`` sends a batch of new gateway attempts; the sandbox answers at once, so the
same job settles them (the answer reaches the attempt after the request that created it has
answered: asynchronous, like a real gateway's). ``billing.retry`` presents retryable failures
again once their five days have passed (the injectable clock decides) and re-queues attempts a
lost job left unsent.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from debtgraph.domain.core import outbox
from debtgraph.domain.payments import billing
from debtgraph.domain.payments.gateways import SandboxGateway
from debtgraph.domain.payments.models import BillingAttempt, BillingChannel, BillingStatus
from debtgraph.jobs.registry import services_of, task

log = logging.getLogger(__name__)

GATEWAY_PORT = "billing_gateway"
# An attempt still unsent this long after its creation has lost its submit job.
UNSENT_AFTER = timedelta(minutes=10)


def gateway_of(services: Any) -> billing.BillingGateway:
    """The configured gateway (the sandbox unless the composition root set another)."""
    gateway = services.ports.get(GATEWAY_PORT)
    return gateway if gateway is not None else SandboxGateway()


@task(billing.SUBMIT_TASK)
async def submit(ctx: dict[str, Any], attempt_ids: list[int]) -> int:
    """Send pending, unsent gateway attempts; apply the answers the gateway gives at once."""
    services = services_of(ctx)
    gateway = gateway_of(services)
    async with services.session_factory() as session:
        attempts, debits = await billing.debits_to_submit(session, attempt_ids)
        if not attempts:
            await session.rollback()
            return 0
        answers = await gateway.submit(debits)
        billing.mark_submitted(attempts, gateway.mid_reference, services.clock.now())
        await session.flush()
        await billing.settle(
            session, services.clock, answers, channel=BillingChannel.GATEWAY, strict=False
        )
        await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)
    return len(attempts)


@task("billing.retry", every=3600)
async def retry_due(ctx: dict[str, Any]) -> int:
    """Create the next attempt of every retryable failure that is due, a batch at a time."""
    services = services_of(ctx)
    clock = services.clock
    total = 0
    while True:
        async with services.session_factory() as session:
            created = await billing.retry_attempts(session, clock)
            await outbox.commit_and_publish(session, services.jobs, services.bus, clock)
        total += len(created)
        if len(created) < billing.SUBMIT_BATCH:
            break
    async with services.session_factory() as session:
        unsent = (
            await session.scalars(
                select(BillingAttempt.id).where(
                    BillingAttempt.status == BillingStatus.PENDING.value,
                    BillingAttempt.channel == BillingChannel.GATEWAY.value,
                    BillingAttempt.mid_reference.is_(None),
                    BillingAttempt.created_at <= clock.now() - UNSENT_AFTER,
                )
            )
        ).all()
    for start in range(0, len(unsent), billing.SUBMIT_BATCH):
        await services.jobs.enqueue(
            billing.SUBMIT_TASK, list(unsent[start : start + billing.SUBMIT_BATCH])
        )
    if total:
        log.info("billing retries created: %s", total)
    return total
