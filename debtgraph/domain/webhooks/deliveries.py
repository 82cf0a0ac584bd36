"""Webhook deliveries (PRODUCT.md §5): created set-wise with the events, sent by jobs.

- **Creation.** :func:`fan_out` is an outbox relay step: in the transaction that claims a batch
  of events, one ``INSERT … SELECT`` per object type writes a delivery for every (live webhook
  taking the type, event within the webhook's platform's reach). ``UNIQUE (webhook_id,
  event_id)`` makes a second relay of an event a no-op. Then a ``webhooks.deliver`` job is queued
  with the new ids; if the process dies first, the ``webhooks.sweep`` cron finds them due.
- **Claim.** An attempt starts with an ``UPDATE … WHERE status = 'pending' AND next_attempt_at <=
  now RETURNING`` that bumps the attempt number and pushes ``next_attempt_at`` out by a lease,
  committed before the request is sent: of two workers, one gets each delivery, and one killed
  mid-request leaves a delivery the sweep retries after the lease. The lease covers a whole
  batch waiting its turn; an attempt whose turn comes too late to end within it is not made
  (the lease is given back), and an outcome moves its delivery only while its claim (the attempt
  numbers it wrote) still holds it. A delivery waits while an older delivery of the same object
  to the same webhook is pending (order per object is kept).
- **Attempt.** The URL is checked again (DNS can change) and the POST goes to the address that
  passed; a 2xx within 10 s is success. Every attempt is a row (status, latency, excerpt),
  written as soon as its request ends (with those ending within ``RECORD_WINDOW_SECONDS`` of it,
  in one transaction), so a slow endpoint delays only its own deliveries; the next delivery of
  each object that ended is claimed in that same transaction and sent in the same run (in its
  first ``RUN_SECONDS``; later ones are left due, for a fresh run).
- **Backoff.** After a failed attempt the next waits 1, 2, 4 … 2048 minutes: 13 attempts over
  about 68 hours (close to 3 days), then the delivery is ``failed``.
- **Disabling.** A delivery that fails for good on an endpoint that has not answered a single
  attempt with a 2xx since before that delivery was created disables the endpoint (no more
  deliveries; its pending ones fail) and records a ``webhook.disabled`` event.
- **Reach at send time.** Before sending, a delivery whose event its platform no longer reaches
  (grant revoked, creditor gone) fails without a request: revocation ends webhooks at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.concurrency import dialect_of
from debtgraph.domain.core.errors import ExpectedError
from debtgraph.domain.core.outbox import Event, QueuedJob
from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth.grants import EVENT_SCOPES, platform_reach
from debtgraph.domain.oauth.models import Platform
from debtgraph.domain.webhooks import changes, targets
from debtgraph.domain.webhooks.models import (
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEventType,
)
from debtgraph.domain.webhooks.signing import Signer
from debtgraph.domain.webhooks.transport import TIMEOUT_SECONDS, AttemptResult, Sender

DELIVER_TASK = "webhooks.deliver"
# Minutes before attempt n+1 after n failed attempts of a run: 12 retries, ~68 hours in all.
RETRY_DELAYS = tuple(timedelta(minutes=2**n) for n in range(12))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
BATCH = 200
CONCURRENCY = 32
# The longest one attempt takes: the URL check's DNS lookup, then the POST's one deadline.
ATTEMPT_SECONDS = targets.RESOLVE_TIMEOUT_SECONDS + TIMEOUT_SECONDS
# How long a claimed delivery is kept from other workers: long enough for the last of a batch to
# wait its turn behind the others (CONCURRENCY at a time, each up to ATTEMPT_SECONDS) and be
# sent. At 60 s, a batch against slow endpoints was still queued when its leases ran out: the
# sweep claimed those deliveries again and they went out twice.
LEASE = timedelta(seconds=(math.ceil(BATCH / CONCURRENCY) + 1) * ATTEMPT_SECONDS)
# A run takes no more successors after this long (seconds): they are due at once, for a fresh
# run (the deliver job's next round, or the sweep) with fresh URL checks. Fed by a steady
# stream of one object's events, a run went on for good with the DNS answers of its start.
RUN_SECONDS = LEASE.total_seconds()
# Attempts that end within this long of the first of a group are recorded with it: a batch of
# quick answers stays one transaction (bench/webhooks.py: one per 200 on loopback, as when a
# batch was recorded whole; 50 ms made 1.5), and no answer waits longer for a slow one.
RECORD_WINDOW_SECONDS = 0.1
EXCERPT_CHARS = 1000


def retry_delay(run_attempts: int) -> timedelta | None:
    """How long after the ``run_attempts``-th failed attempt the next one is due; None: give up."""
    if run_attempts < 1 or run_attempts > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[run_attempts - 1]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """What deliveries need from the settings (the domain cannot read them)."""

    secret_key: str
    allow_private: bool


# --- Creation --------------------------------------------------------------------------------


def _new_public_id(dialect: str) -> ColumnElement[str]:
    # Made by the database, so one INSERT … SELECT writes every delivery of a batch.
    if dialect == "postgresql":
        return literal("whd_").concat(func.replace(cast(func.gen_random_uuid(), String), "-", ""))
    return literal("whd_").concat(func.lower(func.hex(func.randomblob(16))))


def _audience(object_type: str, scope: str, now: datetime) -> ColumnElement[bool]:
    """The events of this object type the webhook's platform may see (PRODUCT.md §1)."""
    allowed = cast(Platform.allowed_scopes, String).like(f'%"{scope}"%')
    platform_allowed = exists().where(Platform.id == Webhook.platform_id, allowed)
    own_user = or_(Webhook.user_id.is_(None), Webhook.user_id == Event.user_id)
    if object_type == "webhook":
        # Notices about a platform's own endpoints.
        return platform_allowed & (Event.platform_id == Webhook.platform_id) & own_user
    reached = Event.user_id.in_(
        select(User.id).where(platform_reach(Webhook.platform_id, scope, now))
    )
    return platform_allowed & reached & own_user


async def fan_out(session: AsyncSession, clock: Clock, events: Sequence[Event]) -> list[QueuedJob]:
    """Relay step: write the deliveries of these events; the job that sends them."""
    now = clock.now()
    dialect = dialect_of(session)
    event_ids = [e.id for e in events]
    object_types = {e.object_type for e in events} & EVENT_SCOPES.keys()
    created: list[int] = []
    for object_type in sorted(object_types):
        takes_type = exists().where(
            WebhookEventType.webhook_id == Webhook.id,
            WebhookEventType.type.in_([Event.type, literal(changes.ALL_EVENTS)]),
        )
        rows = (
            select(
                _new_public_id(dialect),
                Webhook.id,
                Event.id,
                literal(DeliveryStatus.PENDING.value),
                literal(0),
                literal(0),
                literal(now, type_=WebhookDelivery.__table__.c.next_attempt_at.type),
                literal(now, type_=WebhookDelivery.__table__.c.created_at.type),
                literal(now, type_=WebhookDelivery.__table__.c.updated_at.type),
            )
            .select_from(Event)
            .join(Webhook, true())
            .where(
                Event.id.in_(event_ids),
                Event.object_type == object_type,
                Webhook.active.is_(True),
                Webhook.deleted_at.is_(None),
                takes_type,
                _audience(object_type, EVENT_SCOPES[object_type], now),
            )
        )
        columns = [
            "public_id",
            "webhook_id",
            "event_id",
            "status",
            "attempts_count",
            "run_attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ]
        dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            dialect_insert(WebhookDelivery)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
            .returning(WebhookDelivery.id)
        )
        created.extend((await session.scalars(statement)).all())
    if not created:
        return []
    return [(DELIVER_TASK, (sorted(created),))]


# --- Sending ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker holds the lease of, with the attempt number it is making."""

    id: int
    webhook_id: int
    event_id: int
    attempt_number: int
    run_attempts: int
    created_at: datetime
    lease_ends: datetime


def _head_of_object(this_event: type[Event]) -> ColumnElement[bool]:
    """No older delivery of the same object to the same webhook is still pending.

    ``this_event`` is the candidate delivery's event, joined by the caller. The older events of
    the object are found first, through ``ix_events_object_type_object_id_id``, and only then
    their deliveries: the other way round SQLite walked every earlier pending delivery of the
    webhook for each candidate (quadratic in the backlog).
    """
    earlier = aliased(WebhookDelivery)
    earlier_event = aliased(Event)
    # Correlated explicitly: implicit correlation reaches only the enclosing SELECT, and the
    # candidate delivery is two levels up.
    pending_earlier = (
        exists()
        .where(
            earlier.webhook_id == WebhookDelivery.webhook_id,
            earlier.event_id == earlier_event.id,
            earlier.status == DeliveryStatus.PENDING.value,
        )
        .correlate(WebhookDelivery, earlier_event)
    )
    return ~exists().where(
        earlier_event.object_type == this_event.object_type,
        earlier_event.object_id == this_event.object_id,
        earlier_event.id < this_event.id,
        pending_earlier,
    )


async def _successors(session: AsyncSession, ended: Sequence[int]) -> list[int]:
    """The pending deliveries of later events of the same objects to the same webhooks as these.

    Walked from the ended deliveries through ``ix_events_object_type_object_id_id``, never from
    the pending backlog (possibly large), and run on its own: inside the claim's UPDATE,
    PostgreSQL walked the due backlog instead, checking each row against it (70 ms per
    recording with 2,000 pending, usually to find nothing). The claim keeps the head of each.
    """
    done = aliased(WebhookDelivery)
    done_event = aliased(Event)
    later_event = aliased(Event)
    later = aliased(WebhookDelivery)
    query = (
        select(later.id)
        .select_from(done)
        .join(done_event, done_event.id == done.event_id)
        .join(
            later_event,
            and_(
                later_event.object_type == done_event.object_type,
                later_event.object_id == done_event.object_id,
                later_event.id > done_event.id,
            ),
        )
        .join(later, and_(later.webhook_id == done.webhook_id, later.event_id == later_event.id))
        .where(done.id.in_(list(ended)), later.status == DeliveryStatus.PENDING.value)
    )
    return list((await session.scalars(query)).all())


async def claim(
    session: AsyncSession, clock: Clock, delivery_ids: Sequence[int] | None, limit: int = BATCH
) -> list[Claimed]:
    """Take the lease of due deliveries (these ids, or any), committed before sending."""
    claimed = await _claim_rows(session, clock, delivery_ids, limit)
    await session.commit()
    return claimed


async def _claim_rows(
    session: AsyncSession, clock: Clock, delivery_ids: Sequence[int] | None, limit: int
) -> list[Claimed]:
    """The claim's UPDATE, not committed yet."""
    now = clock.now()
    due = and_(
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        WebhookDelivery.next_attempt_at <= now,
    )
    this_event = aliased(Event)
    candidates = (
        select(WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .join(this_event, this_event.id == WebhookDelivery.event_id)
        .where(due, Webhook.active.is_(True), _head_of_object(this_event))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if delivery_ids is not None:
        candidates = candidates.where(WebhookDelivery.id.in_(list(delivery_ids)))
    # The due condition is repeated on the UPDATE itself: PostgreSQL re-checks it on a row
    # another worker just claimed, so that worker's claim wins and this one skips the row.
    rows = (
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(candidates.scalar_subquery()), due)
            .values(
                attempts_count=WebhookDelivery.attempts_count + 1,
                run_attempts=WebhookDelivery.run_attempts + 1,
                next_attempt_at=now + LEASE,
                updated_at=now,
            )
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.webhook_id,
                WebhookDelivery.event_id,
                WebhookDelivery.attempts_count,
                WebhookDelivery.run_attempts,
                WebhookDelivery.created_at,
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    return [Claimed(*row, now + LEASE) for row in rows]


def payload_of(event: Event) -> bytes:
    """The body every webhook gets for an event: ``{id, type, created, data}``."""
    return orjson.dumps(
        {
            "id": event.public_id,
            "type": event.type,
            "created": int(event.created_at.timestamp()),
            "data": event.data,
        }
    )


async def _still_reached(
    session: AsyncSession, clock: Clock, claimed: Sequence[Claimed], object_types: set[str]
) -> set[int]:
    """The claimed deliveries whose event (of these object types) the webhook's platform still
    reaches."""
    now = clock.now()
    reached: set[int] = set()
    ids = [c.id for c in claimed]
    # One query per object type the batch holds (usually one), not per type there is.
    for object_type, scope in EVENT_SCOPES.items():
        if object_type not in object_types:
            continue
        query = (
            select(WebhookDelivery.id)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.id.in_(ids),
                Event.object_type == object_type,
                _audience(object_type, scope, now),
            )
        )
        reached.update((await session.scalars(query)).all())
    return reached


log = logging.getLogger("debtgraph.webhooks")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One attempt's result, to be written."""

    claimed: Claimed
    result: AttemptResult


_OUT_OF_REACH = AttemptResult(None, 0, None, "not sent: the event is no longer within reach")
# Not an attempt: the delivery's turn came too late to end before its lease (a stalled process);
# the lease is given back unused rather than sent while another worker may claim it.
_TOO_LATE = AttemptResult(None, 0, None, "not sent: its lease would end before the attempt")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the requests of some claimed deliveries need, read out of the database."""

    reached: set[int]
    urls: dict[int, str]
    signers: dict[int, Signer | Exception]
    bodies: dict[int, tuple[str, bytes]]


async def _prepare(
    session: AsyncSession, clock: Clock, config: DeliveryConfig, claimed: Sequence[Claimed]
) -> _Prepared:
    webhook_ids = {c.webhook_id for c in claimed}
    event_ids = {c.event_id for c in claimed}
    webhooks = {
        w.id: w for w in (await session.scalars(select(Webhook).where(Webhook.id.in_(webhook_ids))))
    }
    events = {
        e.id: e for e in (await session.scalars(select(Event).where(Event.id.in_(event_ids))))
    }
    reached = await _still_reached(
        session, clock, claimed, {e.object_type for e in events.values()}
    )
    now = clock.now()
    # Everything the requests need is read out before the connection goes back (a rollback
    # expires the rows).
    urls = {w.id: w.url for w in webhooks.values()}
    signers: dict[int, Signer | Exception] = {}
    for w in webhooks.values():
        try:
            signers[w.id] = Signer(changes.signing_secrets(config.secret_key, w, now))
        except Exception as exc:  # e.g. InvalidToken after a SECRET_KEY change
            # Kept per webhook: one secret that no longer decrypts fails only its deliveries.
            signers[w.id] = exc
    bodies = {e.id: (e.public_id, payload_of(e)) for e in events.values()}
    # Nothing is written while the requests run: give the connection back meanwhile.
    await session.rollback()
    return _Prepared(reached, urls, signers, bodies)


class _Sending:
    """The requests of one run: at most ``CONCURRENCY`` at once, each URL checked once."""

    def __init__(self, sender: Sender, config: DeliveryConfig, clock: Clock) -> None:
        self.sender = sender
        self.config = config
        self.clock = clock
        self.attempt_time = timedelta(
            seconds=targets.RESOLVE_TIMEOUT_SECONDS + float(sender.timeout)
        )
        self.gate = asyncio.Semaphore(CONCURRENCY)
        self.checked: dict[int, asyncio.Task[targets.Target]] = {}
        self.logged: set[int] = set()

    def start(self, prepared: _Prepared, claimed: Sequence[Claimed]) -> set[asyncio.Task[Outcome]]:
        """One task per delivery, each ending with its outcome (it never raises)."""
        return {asyncio.ensure_future(self._one(prepared, c)) for c in claimed}

    async def _target_of(self, prepared: _Prepared, webhook_id: int) -> targets.Target:
        # Checked again at send time, once per webhook and run: DNS may have changed.
        if webhook_id not in self.checked:
            self.checked[webhook_id] = asyncio.ensure_future(
                targets.check(prepared.urls[webhook_id], allow_private=self.config.allow_private)
            )
        return await self.checked[webhook_id]

    async def _attempt(self, prepared: _Prepared, c: Claimed, started: float) -> AttemptResult:
        signer = prepared.signers[c.webhook_id]
        if isinstance(signer, Exception):
            raise signer
        try:
            target = await self._target_of(prepared, c.webhook_id)
        except targets.TargetRefused as refused:
            message = refused.errors[0].message
            return AttemptResult(None, _elapsed_ms(started), None, f"not sent: {message}")
        message_id, body = prepared.bodies[c.event_id]
        # Receivers compare webhook-timestamp with their own clock: the wall clock's.
        headers = signer.headers(message_id, datetime.now(UTC), body)
        return await self.sender.post(target, body, headers)

    async def _one(self, prepared: _Prepared, c: Claimed) -> Outcome:
        if c.id not in prepared.reached:
            return Outcome(c, _OUT_OF_REACH)
        async with self.gate:
            if self.clock.now() + self.attempt_time > c.lease_ends:
                return Outcome(c, _TOO_LATE)
            started = time.perf_counter()
            try:
                return Outcome(c, await self._attempt(prepared, c, started))
            except Exception as exc:  # one bad delivery must not sink the run
                # Anything unforeseen (a secret that no longer decrypts, a client error) is a
                # failed attempt of this delivery only; the trace is logged once per webhook.
                if c.webhook_id not in self.logged:
                    self.logged.add(c.webhook_id)
                    log.exception("webhook %s: delivery %s could not be sent", c.webhook_id, c.id)
                error = f"not sent: {type(exc).__name__}: {exc}"[:500]
                return Outcome(c, AttemptResult(None, _elapsed_ms(started), None, error))


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _held(claimed: Sequence[Claimed], *statuses: DeliveryStatus) -> ColumnElement[bool]:
    """The deliveries (in one of ``statuses``) these claims still hold.

    A claim is known by the attempt numbers it wrote (``attempts_count`` and ``run_attempts``):
    once its lease has ended, another worker's claim writes the next ones, and only that
    worker's outcome may move the delivery on. A replay starts a new run (``run_attempts`` 0),
    so no claim of an earlier run holds it; a claim given back unused restores the numbers of
    the claim before it, which then holds again (its attempt was the last one made).
    """
    return and_(
        # Found by id first: SQLite, given the row values alone, walked every pending delivery.
        WebhookDelivery.id.in_([c.id for c in claimed]),
        tuple_(
            WebhookDelivery.id, WebhookDelivery.attempts_count, WebhookDelivery.run_attempts
        ).in_([(c.id, c.attempt_number, c.run_attempts) for c in claimed]),
        WebhookDelivery.status.in_([s.value for s in statuses]),
    )


async def _moved(
    session: AsyncSession,
    claimed: Sequence[Claimed],
    values: dict[str, Any],
    *statuses: DeliveryStatus,
) -> set[int]:
    """Apply ``values`` to the deliveries these claims still hold (pending, unless other
    ``statuses`` are given); the ids it was applied to."""
    if not claimed:
        return set()
    rows = await session.scalars(
        update(WebhookDelivery)
        .where(_held(claimed, *(statuses or (DeliveryStatus.PENDING,))))
        .values(**values)
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    return set(rows.all())


async def _record(session: AsyncSession, clock: Clock, outcomes: Sequence[Outcome]) -> set[int]:
    """Write every attempt and move each delivery on, set-wise, in one transaction.

    Every attempt made is logged. Its outcome moves the delivery only while its claim still
    holds it (:func:`_held`): the late answer of a claim whose lease ran out changes the
    delivery's state no further (a failure no longer overwrites the success of the claim that
    followed). A 2xx also ends a delivery failed while it was in flight (its endpoint disabled
    meanwhile): the receiver has it. Returns the ids of the deliveries that ended here.
    """
    now = clock.now()
    too_late = [o.claimed for o in outcomes if o.result is _TOO_LATE]
    # Given back as if never claimed: due now, and its attempt number and backoff step unused.
    await _moved(
        session,
        too_late,
        {
            "attempts_count": WebhookDelivery.attempts_count - 1,
            "run_attempts": WebhookDelivery.run_attempts - 1,
            "next_attempt_at": now,
            "updated_at": now,
        },
    )
    outcomes = [o for o in outcomes if o.result is not _TOO_LATE]
    if not outcomes:
        return set()
    await session.execute(
        insert(WebhookDeliveryAttempt),
        [
            {
                "delivery_id": o.claimed.id,
                "attempt_number": o.claimed.attempt_number,
                "status_code": o.result.status_code,
                "latency_ms": o.result.latency_ms,
                "response_excerpt": (o.result.excerpt or "")[:EXCERPT_CHARS] or None,
                "error": o.result.error,
                "succeeded": o.result.succeeded,
                "created_at": now,
            }
            for o in outcomes
        ],
    )
    succeeded = [o.claimed for o in outcomes if o.result.succeeded]
    failed = [o.claimed for o in outcomes if not o.result.succeeded]
    ended = await _moved(
        session,
        succeeded,
        {
            "status": DeliveryStatus.SUCCEEDED.value,
            "delivered_at": now,
            "next_attempt_at": None,
            "updated_at": now,
        },
        DeliveryStatus.PENDING,
        DeliveryStatus.FAILED,
    )
    by_delay: dict[timedelta | None, list[Claimed]] = {}
    for c in failed:
        by_delay.setdefault(retry_delay(c.run_attempts), []).append(c)
    given_up: list[Claimed] = []
    for delay, claims in by_delay.items():
        if delay is not None:
            await _moved(session, claims, {"next_attempt_at": now + delay, "updated_at": now})
            continue
        values = {"status": DeliveryStatus.FAILED.value, "next_attempt_at": None, "updated_at": now}
        failed_now = await _moved(session, claims, values)
        ended |= failed_now
        given_up.extend(c for c in claims if c.id in failed_now)
    answering = {c.webhook_id for c in succeeded}
    failing = {c.webhook_id for c in failed} - answering
    if failing:
        await session.execute(
            update(Webhook)
            .where(Webhook.id.in_(failing), Webhook.failing_since.is_(None))
            .values(failing_since=now)
            .execution_options(synchronize_session=False)
        )
    if answering:
        await session.execute(
            update(Webhook)
            .where(Webhook.id.in_(answering), Webhook.failing_since.is_not(None))
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )
    await _disable_dead(session, clock, given_up)
    return ended


async def _disable_dead(session: AsyncSession, clock: Clock, given_up: Sequence[Claimed]) -> None:
    """Disable endpoints that answered nothing since before their given-up deliveries began."""
    if not given_up:
        return
    now = clock.now()
    oldest: dict[int, datetime] = {}
    for c in given_up:
        oldest[c.webhook_id] = min(oldest.get(c.webhook_id, c.created_at), c.created_at)
    for webhook_id, since in oldest.items():
        webhook = await session.scalar(
            update(Webhook)
            .where(
                Webhook.id == webhook_id,
                Webhook.active.is_(True),
                Webhook.failing_since.is_not(None),
                Webhook.failing_since <= since,
            )
            .values(active=False, disabled_at=now)
            .returning(Webhook)
            .execution_options(synchronize_session=False)
        )
        if webhook is None:
            continue
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.FAILED.value, next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        changes.record_disabled(session, clock, webhook)


Commit = Callable[[AsyncSession], Awaitable[None]]


async def _commit_only(session: AsyncSession) -> None:
    await session.commit()


async def deliver_batch(
    session: AsyncSession,
    clock: Clock,
    sender: Sender,
    config: DeliveryConfig,
    delivery_ids: Sequence[int] | None = None,
    *,
    limit: int = BATCH,
    commit: Commit = _commit_only,
) -> int:
    """Claim due deliveries (these, or any), send them, record every attempt; how many attempts
    were made (a claim given back unused is not one: a job that loops until a run makes none
    ends even if every claim were given back).

    Attempts are recorded and committed (``commit``: the job's ``commit_and_publish``, which
    relays the ``webhook.disabled`` events a recording may write) as their requests end, those
    that ended together in one transaction; the next delivery of an object whose delivery ended
    is claimed in that transaction and sent in this run (in its first ``RUN_SECONDS``), so
    counted in the result.
    """
    claimed = await claim(session, clock, delivery_ids, limit)
    if not claimed:
        return 0
    total = len(claimed)
    began = time.monotonic()
    sending = _Sending(sender, config, clock)
    in_flight = sending.start(await _prepare(session, clock, config, claimed), claimed)
    try:
        while in_flight:
            # Recorded as they end, not once the whole batch has: an object's next delivery to a
            # webhook is claimed only after the previous one is recorded, so recording with the
            # batch held every healthy endpoint's next event until the slowest endpoint of the
            # batch answered or timed out (10 s), once per event.
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            if in_flight:
                more, in_flight = await asyncio.wait(in_flight, timeout=RECORD_WINDOW_SECONDS)
                done |= more
            outcomes = [task.result() for task in done]
            total -= sum(1 for o in outcomes if o.result is _TOO_LATE)
            ended = await _record(session, clock, outcomes)
            # The next delivery of each object that ended is claimed here too, not only by the
            # job that relayed its event: that job may have looked before this recording
            # committed, found the ended one still pending, and claimed nothing.
            taking = ended and time.monotonic() - began < RUN_SECONDS
            successors = await _successors(session, sorted(ended)) if taking else []
            following = (
                await _claim_rows(session, clock, successors, len(successors)) if successors else []
            )
            await commit(session)
            if following:
                total += len(following)
                prepared = await _prepare(session, clock, config, following)
                in_flight |= sending.start(prepared, following)
    finally:
        # Cancelled mid-run (a worker stopping): the leases run out and the sweep retries.
        for task in in_flight:
            task.cancel()
    return total


async def next_due(session: AsyncSession, clock: Clock) -> datetime | None:
    """When the next pending delivery is due (None: none pending)."""
    return await session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == DeliveryStatus.PENDING.value
        )
    )


# --- Replay ----------------------------------------------------------------------------------


class ReplayRefused(ExpectedError):
    """The delivery cannot be replayed now (409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def replay(
    session: AsyncSession, clock: Clock, delivery: WebhookDelivery, webhook: Webhook
) -> WebhookDelivery:
    """Send a finished delivery again, from the top of the backoff schedule."""
    if not webhook.active:
        raise ReplayRefused(
            "webhook_inactive",
            "The webhook is deleted or disabled: its deliveries cannot be replayed.",
        )
    now = clock.now()
    won = await session.scalar(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status != DeliveryStatus.PENDING.value,
        )
        .values(
            status=DeliveryStatus.PENDING.value,
            run_attempts=0,
            next_attempt_at=now,
            delivered_at=None,
            updated_at=now,
        )
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    )
    if won is None:
        raise ReplayRefused(
            "delivery_pending", "The delivery is still being attempted; replay it once it ends."
        )
    await session.refresh(delivery)
    return delivery
