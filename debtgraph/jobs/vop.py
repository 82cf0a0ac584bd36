"""The VOP phase of large uploads: check awaiting debtors batch by batch, resumable.

Each batch (``verification.BATCH`` debtors) is checked and committed with one
``upload.progress`` event, so a run that dies leaves whole batches behind and the next run (a
retry, the ingestion job's own call, or the periodic sweep) continues with the debtors still
unmarked; the UPDATE … WHERE risk_class IS NULL guard keeps two concurrent runs from logging
one check twice.
"""

from __future__ import annotations

import logging
from typing import Any

from debtgraph.domain.core import outbox
from debtgraph.domain.core.services import Services
from debtgraph.domain.payments import providers, verification
from debtgraph.jobs.registry import services_of, task

log = logging.getLogger(__name__)


async def check_upload_in_batches(
    services: Services[Any], upload_id: int, size: int = verification.BATCH
) -> int:
    """Check an upload's awaiting debtors, committing each batch; returns how many were checked.

    A provider failure stops the run (what was committed stays) and is logged; the periodic
    sweep queues the upload again.
    """
    provider = providers.provider_in(services.ports)
    clock = services.clock
    total = 0
    after = 0
    async with services.session_factory() as session:
        while True:
            try:
                batch = await verification.check_batch(
                    session, clock, provider, upload_id, after, size
                )
            except providers.VopUnavailable as exc:
                await session.rollback()
                log.warning("VOP of upload %s stopped: %s", upload_id, exc.message)
                return total
            if batch.last_id is None:
                break
            after = batch.last_id
            total += len(batch.checks)
            verification.record_progress(
                session, clock, upload_id, len(batch.checks), remaining=True
            )
            await outbox.commit_and_publish(session, services.jobs, services.bus, clock)
        if total:
            verification.record_progress(session, clock, upload_id, 0, remaining=False)
            await outbox.commit_and_publish(session, services.jobs, services.bus, clock)
    return total


@task("vop.check_upload")
async def check_upload(ctx: dict[str, Any], upload_id: int) -> int:
    """Run the VOP phase over an upload's debtors awaiting a check."""
    return await check_upload_in_batches(services_of(ctx), upload_id)


@task("vop.resume", every=300)
async def resume_checks(ctx: dict[str, Any]) -> int:
    """Queue the VOP phase again for completed uploads that still hold unchecked debtors."""
    services = services_of(ctx)
    async with services.session_factory() as session:
        ids = await verification.uploads_awaiting_checks(session)
    for upload_id in ids:
        await services.jobs.enqueue("vop.check_upload", upload_id)
    return len(ids)
