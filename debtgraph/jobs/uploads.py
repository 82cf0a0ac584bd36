"""Ingestion of large uploads: stage A and stage B chunk by chunk, resumable.

Each chunk (``CHUNK_ROWS`` rows) is parsed and turned into records in a worker thread (the
next one while the current one is written), then stored, validated and counted in one
transaction that also writes an ``upload.progress`` event, so
``processed_records``/``failed_records`` always agree with the rows stored. A run
that dies leaves whole chunks behind; the next run starts after the highest stored row. The
end state equals that of a small upload handled in the request: every row validated, status
``completed``, an ``upload.completed`` event.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core import outbox
from debtgraph.domain.core.services import Services
from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors import validation as debtor_validation
from debtgraph.domain.debtors.csv_reader import CsvFormatError
from debtgraph.domain.debtors.models import Upload
from debtgraph.domain.payments import providers, verification
from debtgraph.jobs.registry import services_of, task
from debtgraph.jobs.vop import check_upload_in_batches

log = logging.getLogger(__name__)

CHUNK_ROWS = ingestion.CHUNK_ROWS
# A live job touches its upload once per chunk; one untouched this long has lost its job.
STALE_AFTER = timedelta(minutes=10)
UNREADABLE = "The stored file could not be read: {reason}"


async def _commit(session: AsyncSession, services: Services[Any]) -> None:
    await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)


async def _fail(
    session: AsyncSession, services: Services[Any], upload_id: int, message: str
) -> str:
    await session.rollback()
    upload = await session.get(Upload, upload_id)
    if upload is None:
        return "skipped"
    await ingestion.fail(session, services.clock, upload, message)
    ingestion.record_upload_event(session, services.clock, "upload.failed", upload)
    await _commit(session, services)
    return "failed"


@task("uploads.ingest")
async def ingest_upload(ctx: dict[str, Any], upload_id: int) -> str:
    """Store and validate a queued upload's rows in chunks, resuming after stored rows."""
    services = services_of(ctx)
    clock = services.clock
    async with services.session_factory() as session:
        upload = await session.get(Upload, upload_id)
        if upload is None or upload.is_complete:
            return "skipped"
        after = await ingestion.last_stored_row(session, upload.id)
        await ingestion.start_processing(session, clock, upload)
        # Counters of a resumed run restart from what the earlier run committed.
        await debtor_validation.recount(session, clock, upload)
        ingestion.record_upload_event(session, clock, "upload.progress", upload)
        await _commit(session, services)
        if not upload.storage_path:
            return await _fail(session, services, upload_id, "The upload has no stored file.")
        try:
            handle, rows = await asyncio.to_thread(
                ingestion.read_rows_after, upload.storage_path, after
            )
        except (CsvFormatError, OSError) as exc:
            reason = exc.message if isinstance(exc, CsvFormatError) else type(exc).__name__
            return await _fail(session, services, upload_id, UNREADABLE.format(reason=reason))
        # The VOP phase rides along: each chunk is checked before it is stored.
        checks = verification.RecordChecks(clock, providers.provider_in(services.ports))
        try:
            # The next chunk is derived and judged in a worker thread while this one is stored.
            async with aclosing(
                ingestion.record_chunks(rows, upload.id, clock, CHUNK_ROWS, judge=True)
            ) as chunks:
                while True:
                    try:
                        records = await anext(chunks, None)
                    except CsvFormatError as exc:
                        return await _fail(
                            session, services, upload_id, UNREADABLE.format(reason=exc.message)
                        )
                    if records is None:
                        break
                    await ingestion.ingest_chunk(session, clock, upload, records, checks)
                    ingestion.record_upload_event(session, clock, "upload.progress", upload)
                    await _commit(session, services)
        finally:
            handle.close()
        # Rows a crashed run stored but did not validate cannot exist (same transaction), but
        # validating leftovers keeps the end state right even if they did.
        await debtor_validation.validate_upload_debtors(session, clock, upload.id)
        await debtor_validation.recount(session, clock, upload)
        await ingestion.finish(session, clock, upload)
        ingestion.record_upload_event(session, clock, "upload.completed", upload)
        await _commit(session, services)
        # Debtors left unchecked (a provider failure, rows a resumed run validated) are
        # checked batch by batch in their own transactions; a failing provider leaves the
        # upload completed with debtors awaiting their check, for the periodic sweep.
        await check_upload_in_batches(services, upload.id)
        log.info("upload %s ingested: %s rows", upload.id, upload.total_records)
        return "completed"


@task("uploads.resume", every=300)
async def resume_stale_uploads(ctx: dict[str, Any]) -> int:
    """Queue the ingestion again for uploads whose job died (the cron's safety net)."""
    services = services_of(ctx)
    async with services.session_factory() as session:
        ids = await ingestion.stale_uploads(session, services.clock, STALE_AFTER)
    for upload_id in ids:
        await services.jobs.enqueue("uploads.ingest", upload_id)
    return len(ids)
