"""SEPA direct-debit billing: which debtors are billable, and every change of an attempt.

An attempt is ``pending`` from the moment it is created until an answer settles it
(``approved`` / ``declined`` / ``error``) or an operator voids it (``voided``). Its debtor is
``processing`` while the series runs, ``recovered`` once an attempt is approved and ``failed``
once the series ends without one (PRODUCT.md §6, §8).

No debtor is ever charged twice, whoever races whom:

* starting a collection claims debtors with one conditional ``UPDATE … WHERE status='pending'
  RETURNING``: of two concurrent starts, the second finds the rows already ``processing``;
* a debtor's n-th attempt is unique in the database (``debtor_id, attempt_number``);
* answers, voids and retries lock the attempts they change and only change ``pending`` ones (or,
  for a retry, those whose ``next_retry_at`` is still set), so a second worker, a late callback
  or a replayed bank file finds nothing left to do.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

from sqlalchemy import ColumnElement, exists, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.base import UTCDateTime, json_amount
from debtgraph.domain.core.clock import Clock, event_time
from debtgraph.domain.core.concurrency import dialect_of, is_unique_violation
from debtgraph.domain.core.errors import DomainValidationError, FieldError, InvalidTransition
from debtgraph.domain.core.outbox import enqueue_after_commit, record_event
from debtgraph.domain.debtors import validation as debtor_validation
from debtgraph.domain.debtors.fields import full_name
from debtgraph.domain.debtors.models import (
    BlacklistedIban,
    Debtor,
    DebtorStatus,
    FinalDecline,
    Upload,
    ValidationStatus,
    billable_condition,
    still_collectable_condition,
)
from debtgraph.domain.debtors.rules import IBAN_BLACKLISTED
from debtgraph.domain.payments.models import (
    FINAL_DECLINE_CODES,
    RETRY_INTERVAL,
    SEPA_REASONS,
    BillingAttempt,
    BillingChannel,
    BillingStatus,
    attempt_may_follow,
    retryable_condition,
)

SUBMIT_TASK: Final = "billing.submit"
# Attempts handed to one submit job: bounded payloads, a bounded transaction per job.
SUBMIT_BATCH: Final = 500
NOTHING_TO_BILL: Final = "The upload has no debtor ready for billing."
VOID_APPROVED: Final = "An approved billing attempt cannot be voided."
VOID_SETTLED: Final = "Only a pending billing attempt can be voided."
VOID_SENT: Final = "This billing attempt was already sent; its answer settles it."
NOT_RETRYABLE: Final = "This billing attempt cannot be retried."
# A bank's or gateway's reference (pain.002 AcctSvcrRef): ISO 20022 Max35Text.
MAX_UNIQUE_ID: Final = 35
NOT_COLLECTABLE: Final = "The debtor can no longer be charged (blacklisted, or changed)."

AnswerStatus = Literal["approved", "declined", "error"]


@dataclass(frozen=True, slots=True)
class Debit:
    """What a gateway is asked to collect for one attempt."""

    transaction_id: str
    iban: str
    bic: str | None
    name: str
    amount: Decimal
    currency: str
    attempt_number: int


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """A gateway's (or bank's) verdict on one attempt, named by our ``transaction_id``."""

    transaction_id: str
    status: AnswerStatus
    error_code: str | None = None
    error_message: str | None = None
    unique_id: str | None = None


class BillingGateway(Protocol):
    """The port to a SEPA direct-debit gateway."""

    @property
    def mid_reference(self) -> str:
        """The merchant account the debits are sent under (the attempts' ``mid_reference``)."""
        ...

    async def submit(self, debits: Sequence[Debit]) -> list[GatewayAnswer]:
        """Send debits. Answers known at once are returned; the others arrive later."""
        ...


def new_transaction_id() -> str:
    """Our reference of one attempt, also the SEPA EndToEndId (≤ 35 characters)."""
    return "TXN-" + secrets.token_hex(8).upper()


def attempt_event_payload(attempt: BillingAttempt) -> dict[str, Any]:
    """The event object of a billing attempt (the seed's fields)."""
    return {
        "id": attempt.id,
        "debtor_id": attempt.debtor_id,
        "upload_id": attempt.upload_id,
        "transaction_id": attempt.transaction_id,
        "unique_id": attempt.unique_id,
        "amount": json_amount(attempt.amount),
        "currency": attempt.currency,
        "status": attempt.status,
        "attempt_number": attempt.attempt_number,
        "mid_reference": attempt.mid_reference,
        "error_code": attempt.error_code,
        "error_message": attempt.error_message,
        "is_approved": attempt.is_approved,
        "is_final": attempt.is_final,
        "can_retry": attempt.can_retry,
        "processed_at": event_time(attempt.processed_at),
        "created_at": event_time(attempt.created_at),
    }


def _attempt_event(
    session: AsyncSession,
    clock: Clock,
    attempt: BillingAttempt,
    previous: str | None,
    *,
    changed: dict[str, Any] | None = None,
) -> None:
    """The attempt's event: its status before (None for a creation), or what else changed."""
    record_event(
        session,
        clock,
        type="billing_attempt.updated",
        object_type="billing_attempt",
        object_id=str(attempt.id),
        obj=attempt_event_payload(attempt),
        previous=changed or ({"status": previous} if previous else None),
    )


async def _set_debtor_status(
    session: AsyncSession, clock: Clock, debtor_ids: Iterable[int], status: str, previous: str
) -> list[int]:
    """Move debtors from ``previous`` to ``status`` set-wise, with one event each."""
    ids = sorted(set(debtor_ids))
    if not ids:
        return []
    rows = (
        await session.execute(
            update(Debtor)
            .where(Debtor.id.in_(ids), Debtor.status == previous)
            .values(status=status, updated_at=clock.now())
            .returning(Debtor.id, Debtor.upload_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for debtor_id, upload_id in rows:
        _debtor_event(session, clock, debtor_id, upload_id, status, previous)
    return [row[0] for row in rows]


def _debtor_event(
    session: AsyncSession,
    clock: Clock,
    debtor_id: int,
    upload_id: int,
    status: str,
    previous: str,
) -> None:
    record_event(
        session,
        clock,
        type="debtor.status_changed",
        object_type="debtor",
        object_id=str(debtor_id),
        obj={"id": debtor_id, "upload_id": upload_id, "status": status},
        previous={"status": previous},
    )


async def _next_numbers(session: AsyncSession, debtor_ids: Sequence[int]) -> dict[int, int]:
    """The number each debtor's next attempt takes (1 for a debtor never billed)."""
    if not debtor_ids:
        return {}
    rows = (
        await session.execute(
            select(BillingAttempt.debtor_id, func.max(BillingAttempt.attempt_number))
            .where(BillingAttempt.debtor_id.in_(list(debtor_ids)))
            .group_by(BillingAttempt.debtor_id)
        )
    ).all()
    highest = {int(d): int(n) for d, n in rows}
    return {d: highest.get(d, 0) + 1 for d in debtor_ids}


async def _insert_attempts(
    session: AsyncSession, clock: Clock, rows: list[dict[str, Any]]
) -> list[BillingAttempt]:
    """Insert attempts in one statement and record their events."""
    if not rows:
        return []
    now = clock.now()
    values = [
        {
            "transaction_id": new_transaction_id(),
            "status": BillingStatus.PENDING.value,
            "created_at": now,
            "updated_at": now,
            **row,
        }
        for row in rows
    ]
    attempts = list(
        (await session.scalars(insert(BillingAttempt).returning(BillingAttempt), values)).all()
    )
    for attempt in attempts:
        _attempt_event(session, clock, attempt, None)
    return attempts


def _queue_submission(session: AsyncSession, attempts: Sequence[BillingAttempt]) -> None:
    gateway_ids = [a.id for a in attempts if a.channel == BillingChannel.GATEWAY]
    for start in range(0, len(gateway_ids), SUBMIT_BATCH):
        enqueue_after_commit(session, SUBMIT_TASK, gateway_ids[start : start + SUBMIT_BATCH])


async def _refuse_newly_blacklisted(session: AsyncSession, clock: Clock, upload_id: int) -> None:
    """Apply validation's blacklist rule to valid rows whose IBAN was listed since.

    Such a row is never billed (``debtors.models.billable_condition``); marking it as validation
    would keeps
    the upload's validation stats (``blacklisted``, ``ready_for_sync``) agreeing with billing.
    """
    now = clock.now()
    result: Any = await session.execute(
        update(Debtor)
        .where(
            Debtor.upload_id == upload_id,
            Debtor.validation_status == ValidationStatus.VALID.value,
            Debtor.status == DebtorStatus.PENDING.value,
            exists().where(BlacklistedIban.iban == Debtor.iban),
        )
        .values(
            blacklisted=True,
            validation_status=ValidationStatus.INVALID.value,
            validation_errors=[IBAN_BLACKLISTED],
            validated_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        upload = await session.get(Upload, upload_id)
        if upload is not None:
            await debtor_validation.recount(session, clock, upload)


async def start_billing(
    session: AsyncSession,
    clock: Clock,
    upload_id: int,
    *,
    channel: BillingChannel = BillingChannel.GATEWAY,
) -> list[BillingAttempt]:
    """Create a pending attempt for every billable debtor of an upload and claim the debtors.

    Gateway attempts are submitted by a job once this transaction commits; file attempts wait
    for the pain.002 that settles them. Raises when no debtor is billable (nothing changes).
    """
    await _refuse_newly_blacklisted(session, clock, upload_id)
    claimed = (
        await session.execute(
            update(Debtor)
            .where(Debtor.upload_id == upload_id, billable_condition())
            .values(status=DebtorStatus.PROCESSING.value, updated_at=clock.now())
            .returning(Debtor.id, Debtor.amount, Debtor.currency)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not claimed:
        raise DomainValidationError([FieldError("upload_id", "nothing_to_bill", NOTHING_TO_BILL)])
    claimed = sorted(claimed, key=lambda row: row[0])
    numbers = await _next_numbers(session, [row[0] for row in claimed])
    for debtor_id, _amount, _currency in claimed:
        _debtor_event(
            session,
            clock,
            debtor_id,
            upload_id,
            DebtorStatus.PROCESSING.value,
            DebtorStatus.PENDING.value,
        )
    attempts = await _insert_attempts(
        session,
        clock,
        [
            {
                "debtor_id": debtor_id,
                "upload_id": upload_id,
                "amount": amount,
                "currency": currency or "EUR",
                "attempt_number": numbers[debtor_id],
                "channel": channel.value,
            }
            for debtor_id, amount, currency in claimed
        ],
    )
    _queue_submission(session, attempts)
    return attempts


async def lock_attempts(
    session: AsyncSession, *conditions: ColumnElement[bool], limit: int | None = None
) -> list[BillingAttempt]:
    """The attempts matching ``conditions``, write-locked until the transaction ends.

    PostgreSQL locks the rows (and re-checks the conditions on rows a concurrent writer just
    changed); SQLite has no row locks, so a write that changes nothing takes its database lock
    first and the read after it sees every committed change.
    """
    stmt = select(BillingAttempt).where(*conditions).order_by(BillingAttempt.id).limit(limit)
    if dialect_of(session) == "sqlite":
        # The whole database's write lock, taken by a write that changes nothing.
        await session.execute(
            update(BillingAttempt)
            .where(BillingAttempt.id.in_(stmt.with_only_columns(BillingAttempt.id)))
            .values(status=BillingAttempt.status)
            .execution_options(synchronize_session=False)
        )
    else:
        stmt = stmt.with_for_update()
    stmt = stmt.execution_options(populate_existing=True)
    return list((await session.scalars(stmt)).all())


# Transaction ids bound per statement: PostgreSQL takes at most 32,767 parameters, and a bank's
# status report may name more transactions (a 500 before).
_IDS_PER_STATEMENT = 5000


async def lock_named_attempts(
    session: AsyncSession, transaction_ids: Sequence[str], *conditions: ColumnElement[bool]
) -> list[BillingAttempt]:
    """:func:`lock_attempts` of the attempts among ``transaction_ids`` matching
    ``conditions``, a statement per few thousand ids."""
    ids = list(dict.fromkeys(transaction_ids))
    locked: list[BillingAttempt] = []
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start : start + _IDS_PER_STATEMENT]
        locked += await lock_attempts(
            session, BillingAttempt.transaction_id.in_(chunk), *conditions
        )
    return locked


def _apply(attempt: BillingAttempt, answer: GatewayAnswer, now: datetime) -> None:
    attempt.status = answer.status
    attempt.error_code = answer.error_code if answer.status != BillingStatus.APPROVED else None
    attempt.error_message = answer.error_message or (
        SEPA_REASONS.get(answer.error_code or "") if answer.status != "approved" else None
    )
    if answer.unique_id:
        attempt.unique_id = answer.unique_id
    attempt.processed_at = now
    attempt.updated_at = now
    # A retryable failure is presented again RETRY_INTERVAL later (the retry cron's mark).
    may_follow = attempt_may_follow(attempt.status, attempt.error_code, attempt.attempt_number)
    attempt.next_retry_at = now + RETRY_INTERVAL if may_follow else None


async def _settle_debtors(
    session: AsyncSession, clock: Clock, attempts: Sequence[BillingAttempt]
) -> None:
    recovered = [a.debtor_id for a in attempts if a.is_approved]
    failed = [a.debtor_id for a in attempts if a.is_final and not a.is_approved]
    processing = DebtorStatus.PROCESSING.value
    await _set_debtor_status(session, clock, recovered, DebtorStatus.RECOVERED.value, processing)
    await _set_debtor_status(session, clock, failed, DebtorStatus.FAILED.value, processing)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What applying a set of answers changed."""

    settled: list[BillingAttempt]
    # Transaction ids named by no attempt, or by one already settled (skipped when not strict).
    unknown: list[str]
    already_settled: list[str]


async def settle(
    session: AsyncSession,
    clock: Clock,
    answers: Sequence[GatewayAnswer],
    *,
    channel: BillingChannel,
    strict: bool,
    mid_reference: str | None = None,
    among: Sequence[ColumnElement[bool]] = (),
) -> Settlement:
    """Apply answers to the pending attempts of ``channel`` they name, and move their debtors.

    An answer names only attempts sent its way: a gateway answers debits it was sent, a bank's
    status report the transactions of a pain.008 file; another channel's attempt is unknown.

    ``strict`` (a bank file an operator imports): an unknown or already settled transaction, or
    one named twice, refuses the whole set before anything changes. Otherwise (gateway answers,
    which may arrive twice) those are skipped. ``among``: the attempts an answer may name (a
    status report: those of the file it answers).
    """
    by_id: dict[str, GatewayAnswer] = {}
    twice: list[str] = []
    for answer in answers:
        if answer.transaction_id in by_id:
            twice.append(answer.transaction_id)
        by_id[answer.transaction_id] = answer
    if not by_id:
        return Settlement([], [], [])
    locked = await lock_named_attempts(
        session, list(by_id), BillingAttempt.channel == channel.value, *among
    )
    found = {a.transaction_id: a for a in locked}
    unknown = sorted(set(by_id) - set(found))
    already = sorted(
        {t for t, a in found.items() if a.status != BillingStatus.PENDING} | set(twice)
    )
    if strict and (unknown or already):
        errors = []
        if unknown:
            errors.append(
                FieldError(
                    "file",
                    "unknown_transactions",
                    "The status report names unknown transactions: " + ", ".join(unknown) + ".",
                )
            )
        if already:
            errors.append(
                FieldError(
                    "file",
                    "already_settled",
                    "The status report settles transactions already settled: "
                    + ", ".join(already)
                    + ".",
                )
            )
        raise DomainValidationError(errors)
    applied = {
        t: a for t, a in by_id.items() if t in found and found[t].status == BillingStatus.PENDING
    }
    field = "file" if strict else "unique_id"
    reference_errors = await _unique_id_errors(session, applied, field)
    if reference_errors:
        raise DomainValidationError(reference_errors)
    now = clock.now()
    settled: list[BillingAttempt] = []
    for transaction_id, answer in by_id.items():
        attempt = found.get(transaction_id)
        if attempt is None or attempt.status != BillingStatus.PENDING:
            continue
        _apply(attempt, answer, now)
        if mid_reference and attempt.mid_reference is None:
            attempt.mid_reference = mid_reference
        settled.append(attempt)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two answers racing with one reference: the checks above saw neither.
        if not is_unique_violation(exc, BillingAttempt.__tablename__, "unique_id"):
            raise
        raise DomainValidationError(
            [FieldError(field, "duplicate_reference", DUPLICATE_REFERENCE)]
        ) from None
    for attempt in settled:
        _attempt_event(session, clock, attempt, BillingStatus.PENDING.value)
    await _record_final_declines(session, now, settled)
    await _settle_debtors(session, clock, settled)
    return Settlement(settled, unknown, already)


async def _record_final_declines(
    session: AsyncSession, now: datetime, settled: Sequence[BillingAttempt]
) -> None:
    """Note the IBAN each final decline debited (``FinalDecline``), in one statement.

    The debtor's IBAN is the one the attempt debited: it cannot change once billing has claimed
    the debtor (``validation.lock_changeable``).
    """
    declined = [a.id for a in settled if a.error_code in FINAL_DECLINE_CODES]
    if not declined:
        return
    await session.execute(
        insert(FinalDecline).from_select(
            ["attempt_id", "iban", "created_at"],
            select(BillingAttempt.id, Debtor.iban, literal(now, UTCDateTime()))
            .join(Debtor, Debtor.id == BillingAttempt.debtor_id)
            .where(BillingAttempt.id.in_(declined), Debtor.iban.is_not(None)),
        )
    )


DUPLICATE_REFERENCE: Final = "A bank reference (unique_id) names another billing attempt."


async def _unique_id_errors(
    session: AsyncSession, answers: Mapping[str, GatewayAnswer], field: str
) -> list[FieldError]:
    """The answers' references that are too long or would name two attempts (none written)."""
    too_long = sorted(
        t for t, a in answers.items() if a.unique_id and len(a.unique_id) > MAX_UNIQUE_ID
    )
    owners: dict[str, set[str]] = {}
    for transaction_id, answer in answers.items():
        if answer.unique_id:
            owners.setdefault(answer.unique_id, set()).add(transaction_id)
    if owners:
        # One query for the set: a reference already kept by an attempt of another transaction.
        taken = await session.execute(
            select(BillingAttempt.unique_id, BillingAttempt.transaction_id).where(
                BillingAttempt.unique_id.in_(list(owners))
            )
        )
        for unique_id, transaction_id in taken.all():
            owners[str(unique_id)].add(transaction_id)
    repeated = sorted(u for u, ts in owners.items() if len(ts) > 1)
    errors: list[FieldError] = []
    if too_long:
        errors.append(
            FieldError(
                field,
                "reference_too_long",
                f"A bank reference (unique_id) must not exceed {MAX_UNIQUE_ID} characters: "
                + ", ".join(too_long)
                + ".",
            )
        )
    if repeated:
        errors.append(
            FieldError(
                field,
                "duplicate_reference",
                "A bank reference (unique_id) names more than one billing attempt: "
                + ", ".join(repeated)
                + ".",
            )
        )
    return errors


async def void_attempt(session: AsyncSession, clock: Clock, attempt_id: int) -> BillingAttempt:
    """Cancel a pending attempt before settlement; its debtor's collection ends (``failed``).

    Raises LookupError when there is no such attempt, InvalidTransition when it is settled or
    already sent (to the gateway or in an exported pain.008).
    """
    locked = await lock_attempts(session, BillingAttempt.id == attempt_id)
    if not locked:
        raise LookupError(attempt_id)
    attempt = locked[0]
    if attempt.status == BillingStatus.APPROVED:
        raise InvalidTransition(attempt.status, "void", VOID_APPROVED)
    if attempt.status != BillingStatus.PENDING:
        raise InvalidTransition(attempt.status, "void", VOID_SETTLED)
    if attempt.mid_reference is not None:
        # Already with the gateway or in a bank's pain.008: the bank still collects, so voiding
        # here would mark as failed a debit that may succeed. Its answer settles it instead.
        raise InvalidTransition(attempt.status, "void", VOID_SENT)
    now = clock.now()
    attempt.status = BillingStatus.VOIDED.value
    attempt.processed_at = now
    attempt.updated_at = now
    attempt.next_retry_at = None
    await session.flush()
    _attempt_event(session, clock, attempt, BillingStatus.PENDING.value)
    await _settle_debtors(session, clock, [attempt])
    return attempt


async def retry_attempts(
    session: AsyncSession,
    clock: Clock,
    *,
    attempt_id: int | None = None,
    limit: int = SUBMIT_BATCH,
) -> list[BillingAttempt]:
    """Present retryable failures again: the given one now, or every one whose time has come.

    Each failure is claimed by clearing its ``next_retry_at`` under a lock, so two workers (or
    an operator and the cron) create its next attempt once; the unique attempt number is the
    database's last word. A failure whose debtor may no longer be charged ends its series
    instead (claimed all the same, the debtor ``failed``), whoever asked: the operator's retry
    answers no new attempt then, and the caller refuses it once that is committed. Each claimed
    failure gets an event, its ``can_retry`` being false from then on. Returns the new attempts.
    """
    # Retryable includes a next_retry_at still set: the claim below clears it.
    conditions: list[ColumnElement[bool]] = [retryable_condition()]
    if attempt_id is not None:
        conditions.append(BillingAttempt.id == attempt_id)
    else:
        conditions.append(BillingAttempt.next_retry_at <= clock.now())
    due = await lock_attempts(session, *conditions, limit=limit)
    if attempt_id is not None and not due:
        raise InvalidTransition("settled", "retry", NOT_RETRYABLE)
    # The debtor is checked again: the blacklist may have grown since the first attempt.
    collectable = set(
        (
            await session.scalars(
                select(Debtor.id).where(
                    Debtor.id.in_({a.debtor_id for a in due}), still_collectable_condition()
                )
            )
        ).all()
    )
    now = clock.now()
    for attempt in due:
        attempt.next_retry_at = None
        attempt.updated_at = now
    await session.flush()
    for attempt in due:
        # Its status is unchanged, its can_retry is not: live dashboards and event payloads
        # would otherwise keep offering a retry that is refused.
        _attempt_event(session, clock, attempt, None, changed={"can_retry": True})
    ended = [a.debtor_id for a in due if a.debtor_id not in collectable]
    # Their series ends here: no new attempt, the debtor's collection has failed.
    await _set_debtor_status(
        session, clock, ended, DebtorStatus.FAILED.value, DebtorStatus.PROCESSING.value
    )
    due = [a for a in due if a.debtor_id in collectable]
    attempts = await _insert_attempts(
        session,
        clock,
        [
            {
                "debtor_id": a.debtor_id,
                "upload_id": a.upload_id,
                "amount": a.amount,
                "currency": a.currency,
                "attempt_number": a.attempt_number + 1,
                "channel": a.channel,
            }
            for a in due
        ],
    )
    _queue_submission(session, attempts)
    return attempts


async def debits_to_submit(
    session: AsyncSession, attempt_ids: Sequence[int]
) -> tuple[list[BillingAttempt], list[Debit]]:
    """The given gateway attempts still pending and not yet sent, locked, with their debits."""
    attempts = await lock_attempts(
        session,
        BillingAttempt.id.in_(list(attempt_ids)),
        BillingAttempt.status == BillingStatus.PENDING.value,
        BillingAttempt.channel == BillingChannel.GATEWAY.value,
        BillingAttempt.mid_reference.is_(None),
    )
    if not attempts:
        return [], []
    debtors = {
        d.id: d
        for d in (
            await session.scalars(
                select(Debtor).where(Debtor.id.in_({a.debtor_id for a in attempts}))
            )
        ).all()
    }
    debits = [
        Debit(
            transaction_id=a.transaction_id,
            iban=debtors[a.debtor_id].iban or "",
            bic=debtors[a.debtor_id].bic,
            name=full_name(debtors[a.debtor_id].first_name, debtors[a.debtor_id].last_name) or "",
            amount=a.amount,
            currency=a.currency,
            attempt_number=a.attempt_number,
        )
        for a in attempts
    ]
    return attempts, debits


def mark_submitted(attempts: Sequence[BillingAttempt], mid_reference: str, now: datetime) -> None:
    """Record the merchant account the attempts were sent under (so they are sent once)."""
    for attempt in attempts:
        attempt.mid_reference = mid_reference
        attempt.updated_at = now
