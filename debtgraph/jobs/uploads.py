"""Ingestion of large uploads: ranges of rows stored and validated by several jobs at once.

``uploads.ingest`` (queued by the upload request, and again by the sweep) marks the upload
processing and queues one ``uploads.ingest_range`` lane job per unfinished range. A lane job
claims a range (debtors/ranges.py), reads it from its byte offset, and stores it chunk by chunk
(``CHUNK_ROWS`` rows): each chunk is parsed and turned into records in a worker thread (the
next one while the current one is written), then renews the claim, is judged, VOP-checked,
stored and counted in one transaction that also writes an ``upload.progress`` event, so
``processed_records``/``failed_records`` always agree with the rows stored. It then claims the
next range, until none is left. A run that dies leaves whole chunks behind; whoever claims the
range next starts after its highest stored row. The job that closes the last range completes
the upload: every row validated, status ``completed``, an ``upload.completed`` event, as for a
small upload handled in the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import aclosing
from datetime import timedelta
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core import outbox
from debtgraph.domain.core.services import Services
from debtgraph.domain.debtors import ingestion, ranges
from debtgraph.domain.debtors import validation as debtor_validation
from debtgraph.domain.debtors.csv_reader import CsvFormatError
from debtgraph.domain.debtors.models import Upload, UploadRange
from debtgraph.domain.payments import providers, verification, vop
from debtgraph.jobs.registry import RetryLater, services_of, task
from debtgraph.jobs.vop import check_upload_in_batches

log = logging.getLogger(__name__)

CHUNK_ROWS = ingestion.CHUNK_ROWS


def chunk_rows(provider: vop.VopProvider) -> int:
    """Rows per ingestion chunk with this VOP provider.

    A chunk asks the provider inside its transaction, between two renewals of the range's
    claim. The sandbox answers in-process, so chunks are ``CHUNK_ROWS``; a remote service is
    asked ``batch_size`` IBANs per call, each call with its own timeout, so a chunk holds two
    calls at most: the worst case (two timeouts, 20 s by default) stays far inside the lease
    (120 s), where a 5,000-row chunk was ten calls and could outlive it, letting another lane
    take the range over mid-chunk.
    """
    if isinstance(provider, vop.LocalVopProvider):
        return CHUNK_ROWS
    batch = getattr(provider, "batch_size", providers.DEFAULT_BATCH)
    return max(1, min(CHUNK_ROWS, 2 * int(batch)))


# A live job touches its upload once per chunk; one untouched this long has lost its job.
STALE_AFTER = timedelta(minutes=10)
UNREADABLE = "The stored file could not be read: {reason}"
# A lane job goes on to claim further ranges only within this time: well inside arq's
# job_timeout (600 s), which would cancel it mid-range; the jobs still queued (one per
# range) carry on with the rest.
LANE_BUDGET_SECONDS = 120.0


def _driver_errors() -> tuple[type[BaseException], ...]:
    # COPY runs on the asyncpg connection itself, so its errors arrive unwrapped.
    try:
        import asyncpg
    except ImportError:  # pragma: no cover  (asyncpg is a dependency)
        return ()
    return (
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.InterfaceError,
    )


# The database went away under the job (restart, failover, a terminated backend): the work
# of the chunk in hand is rolled back with its transaction, so trying again later is safe.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    # The session's connection broke in an earlier statement (a terminated backend during a
    # flush or the outbox's publish) and the session was used again before its rollback.
    sa_exc.PendingRollbackError,
    ConnectionError,
    TimeoutError,
    *_driver_errors(),
)


# Tries of a lane job whose error is not a recognised lost connection.
LANE_TRIES_ON_ERROR = 3
FAILED_ON_EVERY_TRY = "The upload could not be processed: the same error stopped it on every try."


def _connection_lost(exc: BaseException | None) -> bool:
    # The error in hand may be the consequence (a driver state error, a failed rollback) of the
    # lost connection it was raised while handling.
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, _CONNECTION_LOST):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


async def _commit(session: AsyncSession, services: Services[Any]) -> None:
    await outbox.commit_and_publish(session, services.jobs, services.bus, services.clock)


async def _fail(
    session: AsyncSession, services: Services[Any], upload_id: int, message: str
) -> str:
    await session.rollback()
    upload = await session.get(Upload, upload_id, populate_existing=True)
    if upload is None or upload.is_complete:
        return "skipped"
    await ingestion.fail(session, services.clock, upload, message)
    ingestion.record_upload_event(session, services.clock, "upload.failed", upload)
    await _commit(session, services)
    return "failed"


def _lease(services: Services[Any]) -> timedelta:
    return timedelta(seconds=float(services.settings.upload_range_lease_seconds))


@task("uploads.ingest")
async def ingest_upload(ctx: dict[str, Any], upload_id: int) -> str:
    """Start or resume a queued upload: one lane job per range not yet done."""
    services = services_of(ctx)
    clock = services.clock
    async with services.session_factory() as session:
        # Locked: a lane job may be completing (or failing) this upload right now; read without
        # the lock, its final status would be overwritten with "processing" below.
        upload = await session.get(Upload, upload_id, with_for_update=True, populate_existing=True)
        if upload is None or upload.is_complete:
            return "skipped"
        if not upload.storage_path:
            return await _fail(session, services, upload_id, "The upload has no stored file.")
        await ranges.ensure_ranges(session, upload)
        await ingestion.start_processing(session, clock, upload)
        ingestion.record_upload_event(session, clock, "upload.progress", upload)
        positions = await ranges.unfinished_positions(session, upload_id)
        for position in positions:
            outbox.enqueue_after_commit(session, "uploads.ingest_range", upload_id, position)
        await _commit(session, services)
    if not positions:
        # Every range was closed but the job that closed the last one died before completing.
        return await complete_upload(services, upload_id)
    return "queued"


@task("uploads.ingest_range", lane=True)
async def ingest_range(ctx: dict[str, Any], upload_id: int, position: int) -> str:
    """Ingest range ``position`` of an upload, then any other range still claimable.

    The claim token is the job's id, which arq keeps across the tries of one job: a retry
    takes back its own range at once, while another job waits for the lease to run out.
    """
    services = services_of(ctx)
    token = str(ctx.get("job_id") or uuid.uuid4().hex)
    try:
        return await _run_lane(services, upload_id, position, token)
    except Exception as exc:
        tries = int(ctx.get("job_try") or 1)
        # A range resumes after its last stored row, so trying again is safe. A lost database
        # shows as many errors besides the driver's (a session left 'prepared' by a COMMIT cut
        # off, a pending rollback): any error is tried again a few times, a lost connection
        # until arq's own limit.
        if not _connection_lost(exc) and tries >= LANE_TRIES_ON_ERROR:
            # The same error on every try is no passing trouble: left processing, the upload
            # was re-queued by uploads.resume every few minutes for good, and refused by
            # validation as still processing. It fails, as an unreadable file does.
            log.exception("range %s of upload %s failed on every try", position, upload_id)
            async with services.session_factory() as session:
                return await _fail(session, services, upload_id, FAILED_ON_EVERY_TRY)
        log.warning("range %s of upload %s failed (%r): retrying", position, upload_id, exc)
        raise RetryLater(defer=min(2.0**tries, 60.0)) from exc


async def _run_lane(services: Services[Any], upload_id: int, position: int, token: str) -> str:
    clock = services.clock
    lease = _lease(services)
    outcome = "skipped"
    wanted: int | None = position
    deadline = time.monotonic() + LANE_BUDGET_SECONDS
    async with services.session_factory() as session:
        while time.monotonic() < deadline:
            claimed = await ranges.claim(session, clock, upload_id, token, lease, wanted)
            if claimed is None and wanted is not None:
                wanted = None
                claimed = await ranges.claim(session, clock, upload_id, token, lease)
            await session.commit()
            if claimed is None:
                # A retry of the job that closed the last range may find its completion undone.
                return await _complete_if_closed(services, upload_id) or outcome
            wanted = None
            result = await _ingest_claimed(session, services, claimed, token)
            if result in ("failed", "skipped"):
                return result
            if result == "last":
                return await complete_upload(services, upload_id)
            outcome = "ingested"
    return outcome


async def _ingest_claimed(
    session: AsyncSession, services: Services[Any], claimed: UploadRange, token: str
) -> str:
    """Store one claimed range; "done", "last" (it closed the upload's last range), "lost"
    (another job took it over), "failed" (the upload failed) or "skipped" (no upload)."""
    clock = services.clock
    upload_id = claimed.upload_id
    upload = await session.get(Upload, upload_id, populate_existing=True)
    if upload is None or upload.is_complete or not upload.storage_path:
        await session.rollback()
        return "skipped"
    after = await ranges.resume_after(session, claimed)
    await session.commit()
    try:
        handle, rows = await asyncio.to_thread(
            ingestion.read_range,
            upload.storage_path,
            claimed.byte_offset,
            claimed.first_row,
            after,
            claimed.last_row,
        )
    except (CsvFormatError, OSError) as exc:
        reason = exc.message if isinstance(exc, CsvFormatError) else type(exc).__name__
        return await _fail(session, services, upload_id, UNREADABLE.format(reason=reason))
    # The VOP phase rides along: each chunk is checked before it is stored.
    provider = providers.provider_in(services.ports)
    checks = verification.RecordChecks(clock, provider)
    try:
        async with aclosing(
            ingestion.record_chunks(
                rows, upload_id, clock, chunk_rows(provider), judge=True, prepare=checks.prepare
            )
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
                if not await ranges.renew(session, clock, claimed.id, token):
                    await session.rollback()
                    return "lost"
                await ingestion.ingest_chunk(session, clock, upload, records, checks)
                ingestion.record_upload_event(session, clock, "upload.progress", upload)
                await _commit(session, services)
    finally:
        handle.close()
    closed = await ranges.close(session, clock, claimed, token)
    if closed is None:
        await session.rollback()
        return "lost"
    await session.commit()
    done, total = closed
    return "last" if done >= total else "done"


async def _complete_if_closed(services: Services[Any], upload_id: int) -> str | None:
    async with services.session_factory() as session:
        upload = await session.get(Upload, upload_id)
        closed = (
            upload is not None
            and not upload.is_complete
            and upload.ranges_total > 0
            and upload.ranges_done >= upload.ranges_total
        )
    return await complete_upload(services, upload_id) if closed else None


async def complete_upload(services: Services[Any], upload_id: int) -> str:
    """Complete an upload whose ranges are all done (the one job that closed the last)."""
    clock = services.clock
    async with services.session_factory() as session:
        upload = await session.get(Upload, upload_id)
        if upload is None or upload.is_complete:
            return "skipped"
        # Rows a crashed run stored but did not validate cannot exist (same transaction), but
        # validating leftovers keeps the end state right even if they did.
        await debtor_validation.validate_upload_debtors(session, clock, upload.id)
        await debtor_validation.recount(session, clock, upload)
        if not await ingestion.finish(session, clock, upload):
            await session.rollback()
            return "skipped"
        ingestion.record_upload_event(session, clock, "upload.completed", upload)
        await _commit(session, services)
    # Debtors left unchecked (a provider failure, rows a resumed run validated) are
    # checked batch by batch in their own transactions; a failing provider leaves the
    # upload completed with debtors awaiting their check, for the periodic sweep.
    await check_upload_in_batches(services, upload_id)
    log.info("upload %s ingested: %s rows", upload_id, upload.total_records)
    return "completed"


@task("uploads.resume", every=300)
async def resume_stale_uploads(ctx: dict[str, Any]) -> int:
    """Queue again what lost its job (the cron's safety net): idle uploads, and ranges whose
    claim was not renewed within the lease."""
    services = services_of(ctx)
    async with services.session_factory() as session:
        ids = await ingestion.stale_uploads(session, services.clock, STALE_AFTER)
        stalled = await ranges.stalled(session, services.clock, _lease(services))
    for upload_id in ids:
        await services.jobs.enqueue("uploads.ingest", upload_id)
    for upload_id, position in stalled:
        if upload_id not in ids:
            await services.jobs.enqueue("uploads.ingest_range", upload_id, position)
    return len(ids) + len(stalled)
