"""The event outbox: state changes write their event in the same transaction; relayed after commit.

Services call :func:`record_event` and :func:`enqueue_after_commit` with the session they change
state in. Both only append to the session; nothing leaves the process until the caller commits
through :func:`commit_and_publish`, so a rollback drops the events and the jobs together.

:func:`commit_and_publish` is the one commit path, for requests and jobs alike, with one policy:
once the transaction commits the change stands, so a queue or bus failure after it is logged and
never raised; the task's periodic sweep and the ``outbox.relay`` cron finish what was not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeAlias

from sqlalchemy import ForeignKey, Index, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base
from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.concurrency import flush_refusing_duplicates
from debtgraph.domain.core.eventbus import BusMessage, EventBus
from debtgraph.domain.core.events import event_type
from debtgraph.domain.core.secrets import public_id

log = logging.getLogger(__name__)

_OUTBOX_KEY = "debtgraph.outbox"
_JOBS_KEY = "debtgraph.jobs"


class Event(Base):
    """A domain event (``evt_…``), kept as the outbox and as the webhook payload source."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_published_at_id", "published_at", "id"),
        Index("ix_events_object_type_object_id_id", "object_type", "object_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(40))
    # Who may see it: the owning platform / creditor; operators see everything.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="SET NULL"), default=None, index=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None] = mapped_column(default=None)


class JobQueue(Protocol):
    """Port to the job runner (arq, or in-process)."""

    async def enqueue(self, name: str, *args: Any) -> None:
        """Queue task ``name`` with JSON-able arguments."""
        ...


QueuedJob: TypeAlias = tuple[str, tuple[Any, ...]]
# A step of the relay run inside the transaction that claims events: it writes what must exist
# durably for each claimed event (webhook deliveries) and names the jobs to queue once that
# transaction commits. Areas above core register theirs (core cannot import them).
RelayStep: TypeAlias = Callable[[AsyncSession, Clock, Sequence[Event]], Awaitable[list[QueuedJob]]]
_RELAY_STEPS: list[RelayStep] = []


def register_relay_step(step: RelayStep) -> None:
    """Run ``step`` on every batch of events the relay claims (registering twice is a no-op)."""
    if step not in _RELAY_STEPS:
        _RELAY_STEPS.append(step)


def record_event(
    session: AsyncSession,
    clock: Clock,
    *,
    type: str,
    object_type: str,
    object_id: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None = None,
    platform_id: int | None = None,
    user_id: int | None = None,
) -> Event:
    """Write an event row in the current transaction, to be relayed once it commits.

    ``type`` must be in the catalogue (:mod:`debtgraph.domain.core.events`) with this
    ``object_type``: an uncatalogued event would reach no subscriber or webhook filter.
    """
    event_type(type, object_type)
    event = Event(
        public_id=public_id("evt"),
        type=type,
        object_type=object_type,
        object_id=object_id,
        platform_id=platform_id,
        user_id=user_id,
        data={"object": obj, "previous_attributes": previous or {}},
        created_at=clock.now(),
    )
    session.add(event)
    session.info.setdefault(_OUTBOX_KEY, []).append(event)
    return event


def enqueue_after_commit(session: AsyncSession, name: str, *args: Any) -> None:
    """Queue a job that runs only if the current transaction commits."""
    session.info.setdefault(_JOBS_KEY, []).append((name, args))


def has_pending(session: AsyncSession) -> bool:
    """Whether the transaction queued events or jobs that its commit would send."""
    return bool(session.info.get(_OUTBOX_KEY) or session.info.get(_JOBS_KEY))


def discard_pending(session: AsyncSession) -> None:
    """Forget events and jobs of a transaction that was rolled back."""
    session.info.pop(_OUTBOX_KEY, None)
    session.info.pop(_JOBS_KEY, None)


async def commit(session: AsyncSession, jobs: JobQueue) -> list[int]:
    """Commit, then queue the transaction's jobs and the relay of its events; return event ids.

    A duplicate the flush finds in a unique column is raised as the error the column documents.
    """
    await flush_refusing_duplicates(session)
    events: list[Event] = session.info.pop(_OUTBOX_KEY, [])
    queued: list[tuple[str, tuple[Any, ...]]] = session.info.pop(_JOBS_KEY, [])
    event_ids = [e.id for e in events]
    try:
        await session.commit()
    except BaseException:
        discard_pending(session)
        raise
    for name, args in queued:
        try:
            await jobs.enqueue(name, *args)
        except Exception:
            # The transaction is committed: failing the caller now would report a change that
            # happened as failed. The rows stay pending and the task's periodic sweep runs them.
            log.exception("could not enqueue %s after commit; its sweep will pick it up", name)
    return event_ids


async def commit_and_publish(
    session: AsyncSession, jobs: JobQueue, bus: EventBus, clock: Clock
) -> None:
    """Commit, then queue the transaction's jobs and publish its events; only the commit raises."""
    event_ids = await commit(session, jobs)
    if not event_ids:
        return
    try:
        await relay(session, bus, clock, event_ids, jobs=jobs)
    except Exception:
        # Committed already: failing the caller would report a change that happened as failed.
        # relay() handed the unsent events back, and the relay cron publishes them.
        log.exception("publishing events after commit failed; the relay will retry")


async def later_event_exists(connection: Any, message: BusMessage, types: Collection[str]) -> bool:
    """Whether an event of ``types`` about the same object was recorded after ``message``'s.

    Through ``ix_events_object_type_object_id_id``; a message whose event is not in the
    outbox (none of its rows) has no later one.
    """
    this = select(Event.id).where(Event.public_id == message.id).scalar_subquery()
    later = (
        select(Event.id)
        .where(
            Event.object_type == message.object_type,
            Event.object_id == message.object_id,
            Event.id > this,
            Event.type.in_(sorted(types)),
        )
        .limit(1)
    )
    return (await connection.execute(later)).first() is not None


def to_message(event: Event) -> BusMessage:
    """The bus form of an event."""
    return BusMessage(
        id=event.public_id,
        type=event.type,
        object_type=event.object_type,
        object_id=event.object_id,
        platform_id=event.platform_id,
        user_id=event.user_id,
        created=int(event.created_at.timestamp()),
        data=event.data,
    )


async def relay(
    session: AsyncSession,
    bus: EventBus,
    clock: Clock,
    event_ids: Sequence[int] | None = None,
    *,
    older_than: timedelta | None = None,
    limit: int = 500,
    jobs: JobQueue | None = None,
) -> int:
    """Claim unpublished events (given ids, or stale ones), commit the claim, publish them.

    The claim is an UPDATE guarded by ``published_at IS NULL`` so the API process and the relay
    cron never publish the same event twice. The registered relay steps run in the claim's
    transaction, so what they write (webhook deliveries) exists exactly when the claim does;
    the jobs they name are queued on ``jobs`` after it commits (their own sweeps cover a
    process that dies in between).
    """
    now = clock.now()
    cond = [Event.published_at.is_(None)]
    if event_ids is not None:
        if not event_ids:
            return 0
        cond.append(Event.id.in_(list(event_ids)))
    else:
        cutoff = now - (older_than or timedelta(0))
        ids = (
            await session.scalars(
                select(Event.id)
                .where(Event.published_at.is_(None), Event.created_at <= cutoff)
                .order_by(Event.id)
                .limit(limit)
            )
        ).all()
        if not ids:
            await session.rollback()
            return 0
        cond.append(Event.id.in_(ids))
    claimed = (
        await session.scalars(
            update(Event)
            .where(*cond)
            .values(published_at=now)
            .returning(Event)
            .execution_options(synchronize_session=False)
        )
    ).all()
    ordered = sorted(claimed, key=lambda e: e.id)
    messages = [to_message(e) for e in ordered]
    queued: list[QueuedJob] = []
    for step in _RELAY_STEPS:
        if ordered:
            queued.extend(await step(session, clock, ordered))
    await session.commit()
    for name, args in queued if jobs is not None else ():
        try:
            await jobs.enqueue(name, *args)  # type: ignore[union-attr]
        except Exception:
            log.exception("could not enqueue %s after the relay; its sweep will pick it up", name)
    for sent, message in enumerate(messages):
        try:
            await bus.publish(message)
        except Exception:
            # Hand what was not sent back to the relay cron rather than losing it.
            unsent = [e.id for e in ordered[sent:]]
            await session.execute(
                update(Event)
                .where(Event.id.in_(unsent))
                .values(published_at=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            raise
    return len(messages)
