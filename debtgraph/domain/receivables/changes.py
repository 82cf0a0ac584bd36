"""Receivable services (PRODUCT.md §3): creation with hard and soft rules, and every transition.

Each transition writes a ``ReceivableEvent`` (action, from/to status, actor, reason, time) and the
outbox events ``receivable.status_changed`` and ``receivable.<new_status>``; creation writes the
``created`` history entry and ``receivable.created``.

Decisions:

- ``next_action_at`` is the next escalation step while recovery runs (``in_process``): the start
  plus 30 days (formal notice), then plus 60 days (legal); None in any other status.
- The commission rate is fixed at submission, from the invoice's age that day.
- Adding a contact or changing metadata is history (an event row) but not a webhook event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core import outbox
from debtgraph.domain.core.base import json_amount
from debtgraph.domain.core.clock import Clock, event_time
from debtgraph.domain.core.concurrency import lock_row
from debtgraph.domain.core.errors import (
    DomainValidationError,
    FieldError,
    InvalidTransition,
    PayloadReader,
    input_fields,
)
from debtgraph.domain.core.secrets import public_id
from debtgraph.domain.creditors.models import User, UserStatus
from debtgraph.domain.receivables.commission import rate_for
from debtgraph.domain.receivables.models import (
    Contact,
    Evidence,
    Receivable,
    ReceivableEvent,
    ReceivableStatus,
)
from debtgraph.domain.receivables.parsing import (
    DEFAULT_CONTACT_LEVEL,
    MAX_CONTACTS,
    MAX_METADATA_KEYS,
    TOO_MANY_METADATA_KEYS,
    ContactDraft,
    ReceivableDraft,
    check_metadata,
    too_many_contacts_error,
)
from debtgraph.domain.receivables.recovery import (
    FORMAL_NOTICE_AFTER_DAYS,
    LEGAL_AFTER_DAYS,
    RecoveryPhase,
    indemnity_due,
    recovery_phase,
)
from debtgraph.domain.receivables.rules import (
    ExistingReceivable,
    duplicate_error,
    is_duplicate_of,
    normalize_company_name,
    phone_warning,
    time_barred_error,
)
from debtgraph.domain.receivables.status_machine import (
    CancelReason,
    PartialPaymentAction,
    ReceivableAction,
    apply_payment,
    next_status,
    remaining_due,
)

_CENT = Decimal("0.01")
ACTIVE_RECOVERY = frozenset({ReceivableStatus.IN_PROCESS.value})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``platform``, ``creditor``, ``operator`` or ``system``, with its public id."""

    type: str
    id: str | None = None


SYSTEM = Actor("system")


# --- Recovery figures -----------------------------------------------------------------------------


def _phase(receivable: Receivable, now: datetime) -> str:
    if receivable.started_at is None:
        return RecoveryPhase.AMICABLE.value
    end = receivable.recovered_at if receivable.recovered_at is not None else now
    return recovery_phase((end - receivable.started_at).days).value


def next_action_at(receivable: Receivable, now: datetime) -> datetime | None:
    """When recovery escalates next (formal notice, then legal); None when it is not running."""
    if receivable.status not in ACTIVE_RECOVERY or receivable.started_at is None:
        return None
    phase = _phase(receivable, now)
    if phase == RecoveryPhase.AMICABLE:
        return receivable.started_at + timedelta(days=FORMAL_NOTICE_AFTER_DAYS)
    if phase == RecoveryPhase.FORMAL_NOTICE:
        return receivable.started_at + timedelta(days=LEGAL_AFTER_DAYS)
    return None


def amount_remaining(receivable: Receivable) -> Decimal:
    """What the debtor still owes (never negative)."""
    return remaining_due(receivable.amount, receivable.amount_recovered)


@dataclass(frozen=True, slots=True)
class RecoveryProgress:
    """Where recovery of a receivable stands (PRODUCT.md §3)."""

    amount_recovered: Decimal
    amount_remaining: Decimal
    phase: str
    last_action: str | None
    next_action_at: datetime | None
    actions_count: int
    awaiting_decision: bool
    warnings: list[str]


def recovery_progress(receivable: Receivable, now: datetime) -> RecoveryProgress:
    """Amounts, phase, last and next action, warnings of a receivable at ``now``."""
    return RecoveryProgress(
        amount_recovered=receivable.amount_recovered,
        amount_remaining=amount_remaining(receivable),
        phase=_phase(receivable, now),
        last_action=receivable.last_action,
        next_action_at=next_action_at(receivable, now),
        actions_count=receivable.actions_count,
        awaiting_decision=receivable.awaiting_decision,
        warnings=list(receivable.warnings or []),
    )


def indemnity_of(receivable: Receivable) -> Decimal:
    """The fixed recovery indemnity due on the receivable's invoices."""
    return indemnity_due(len(receivable.invoice_numbers), receivable.debtor_company_type)


@dataclass(frozen=True, slots=True)
class Commission:
    """The commission rate fixed at submission and what it costs on the invoice amount."""

    rate: Decimal
    amount: Decimal
    net: Decimal


def commission_of(receivable: Receivable) -> Commission:
    """The commission rate fixed at submission and what it costs on the invoice amount."""
    rate = receivable.commission_rate or Decimal("0.00")
    amount = (receivable.amount * rate / 100).quantize(_CENT)
    return Commission(rate=rate, amount=amount, net=receivable.amount - amount)


def _event_object(receivable: Receivable, user_public_id: str, now: datetime) -> dict[str, Any]:
    """The compact, JSON-ready form carried by webhook events; amounts as REST shows them."""
    progress = recovery_progress(receivable, now)
    return {
        "id": receivable.public_id,
        "object": "receivable",
        "user_id": user_public_id,
        "status": receivable.status,
        "amount": json_amount(receivable.amount),
        "currency": receivable.currency,
        "recovery_progress": {
            "amount_recovered": json_amount(progress.amount_recovered),
            "amount_remaining": json_amount(progress.amount_remaining),
            "phase": progress.phase,
            "last_action": progress.last_action,
            "next_action_at": event_time(progress.next_action_at),
            "actions_count": progress.actions_count,
            "awaiting_decision": progress.awaiting_decision,
            "warnings": progress.warnings,
        },
        "metadata": dict(receivable.metadata_ or {}),
        "created_at": event_time(receivable.created_at),
    }


# --- Creation -------------------------------------------------------------------------------------


async def find_duplicate(
    session: AsyncSession, user_id: int, draft: ReceivableDraft
) -> Receivable | None:
    """A live receivable of the same user for the same debtor sharing an invoice number."""
    key = normalize_company_name(draft.debtor.company_name)
    same_debtor = [Receivable.debtor_name_key == key]
    if draft.debtor.siret:
        same_debtor.append(Receivable.debtor_siret == draft.debtor.siret)
    candidates = (
        await session.scalars(
            select(Receivable)
            .where(
                Receivable.user_id == user_id,
                Receivable.status != ReceivableStatus.CANCELLED.value,
                or_(*same_debtor),
            )
            .order_by(Receivable.id)
        )
    ).all()
    for candidate in candidates:
        existing = ExistingReceivable(
            debtor_siret=candidate.debtor_siret,
            debtor_name_key=candidate.debtor_name_key,
            invoice_numbers=tuple(candidate.invoice_numbers),
            status=candidate.status,
        )
        if is_duplicate_of(draft, existing):
            return candidate
    return None


def _new_contact(receivable_id: int, draft: ContactDraft, now: datetime) -> Contact:
    return Contact(
        public_id=public_id("ctc"),
        receivable_id=receivable_id,
        first_name=draft.first_name,
        last_name=draft.last_name,
        email=draft.email,
        phone=draft.phone,
        job_title=draft.job_title,
        level=draft.level,
        created_at=now,
    )


def _history(
    session: AsyncSession,
    receivable: Receivable,
    action: str,
    actor: Actor,
    now: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> ReceivableEvent:
    event = ReceivableEvent(
        public_id=public_id("rev"),
        receivable_id=receivable.id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_type=actor.type,
        actor_id=actor.id,
        reason=reason,
        data=data or {},
        created_at=now,
    )
    session.add(event)
    receivable.actions_count += 1
    receivable.last_action = action
    receivable.updated_at = now
    return event


async def create_receivable(
    session: AsyncSession,
    clock: Clock,
    draft: ReceivableDraft,
    *,
    user_id: int,
    user_public_id: str,
    platform_id: int | None,
    actor: Actor,
) -> Receivable:
    """Apply the soft rules (unless forced) and store the receivable with its contacts."""
    now, today = clock.now(), clock.today()
    if not draft.force_proceed:
        soft: list[FieldError] = []
        # Concurrent creations for one creditor take turns from here to the commit, so the
        # duplicate check sees every receivable committed before it (PRODUCT-DECISIONS, issue 7).
        await lock_row(session, User, user_id)
        duplicate = await find_duplicate(session, user_id, draft)
        if duplicate is not None:
            soft.append(duplicate_error(duplicate.public_id))
        barred = time_barred_error(draft.invoice.due_date, today)
        if barred is not None:
            soft.append(barred)
        if soft:
            raise DomainValidationError(soft)
    warning = phone_warning(draft.debtor.contacts)
    invoice, debtor = draft.invoice, draft.debtor
    receivable = Receivable(
        public_id=public_id("rcv"),
        user_id=user_id,
        platform_id=platform_id,
        status=ReceivableStatus.PENDING.value,
        invoice_numbers=list(invoice.numbers),
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        service_description=invoice.service_description,
        amount=invoice.amount,
        amount_before_tax=invoice.amount_before_tax,
        tax_amount=invoice.tax_amount,
        currency=invoice.currency,
        debtor_company_name=debtor.company_name,
        debtor_name_key=normalize_company_name(debtor.company_name),
        debtor_company_type=debtor.company_type,
        debtor_siret=debtor.siret,
        debtor_vat_number=debtor.vat_number,
        debtor_address=debtor.address.as_dict() if debtor.address else None,
        metadata_=dict(draft.metadata),
        forced=draft.force_proceed,
        commission_rate=rate_for(invoice.due_date, today),
        amount_recovered=Decimal("0.00"),
        warnings=[warning] if warning else [],
        actions_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(receivable)
    await session.flush()
    for contact in debtor.contacts:
        session.add(_new_contact(receivable.id, contact, now))
    _history(
        session,
        receivable,
        "created",
        actor,
        now,
        to_status=receivable.status,
        data={"forced": draft.force_proceed},
    )
    await session.flush()
    outbox.record_event(
        session,
        clock,
        type="receivable.created",
        object_type="receivable",
        object_id=receivable.public_id,
        obj=_event_object(receivable, user_public_id, now),
        platform_id=platform_id,
        user_id=user_id,
    )
    return receivable


# --- Changes --------------------------------------------------------------------------------------


def _transition(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    user_public_id: str,
    action: ReceivableAction,
    target: ReceivableStatus,
    actor: Actor,
    *,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> ReceivableEvent:
    now = clock.now()
    previous = receivable.status
    receivable.status = target.value
    event = _history(
        session,
        receivable,
        action.value,
        actor,
        now,
        from_status=previous,
        to_status=target.value,
        reason=reason,
        data=data,
    )
    obj = _event_object(receivable, user_public_id, now)
    for event_type in ("receivable.status_changed", f"receivable.{target.value}"):
        outbox.record_event(
            session,
            clock,
            type=event_type,
            object_type="receivable",
            object_id=receivable.public_id,
            obj=obj,
            previous={"status": previous},
            platform_id=receivable.platform_id,
            user_id=receivable.user_id,
        )
    return event


def _fully_paid(receivable: Receivable) -> bool:
    return receivable.amount_recovered >= receivable.amount


async def start(
    session: AsyncSession, clock: Clock, receivable: Receivable, user_public_id: str, actor: Actor
) -> Receivable:
    """``pending`` → ``in_process``: recovery begins (amicable phase)."""
    target = next_status(receivable.status, ReceivableAction.START)
    receivable.started_at = clock.now()
    receivable.phase = RecoveryPhase.AMICABLE.value
    _transition(session, clock, receivable, user_public_id, ReceivableAction.START, target, actor)
    receivable.next_action_at = next_action_at(receivable, clock.now())
    await session.flush()
    return receivable


async def record_payment(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    user_public_id: str,
    actor: Actor,
    amount: Decimal,
    *,
    reference: str | None = None,
) -> Receivable:
    """A debtor payment on an ``in_process`` receivable; partial ones await the decision."""
    outcome = apply_payment(
        receivable.status, receivable.amount, receivable.amount_recovered, amount
    )
    receivable.amount_recovered = outcome.amount_recovered
    receivable.awaiting_decision = outcome.awaiting_decision
    _transition(
        session,
        clock,
        receivable,
        user_public_id,
        ReceivableAction.PAYMENT,
        outcome.status,
        actor,
        reason="full" if outcome.fully_paid else "partial",
        data={"amount": str(amount), "reference": reference},
    )
    receivable.next_action_at = None
    await session.flush()
    return receivable


async def apply_action(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    user_public_id: str,
    action: ReceivableAction,
    actor: Actor,
    *,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> Receivable:
    """Any transition but ``start`` and ``payment`` (payout, decisions, dispute, cancel…)."""
    target = next_status(
        receivable.status,
        action,
        fully_paid=_fully_paid(receivable),
        awaiting_decision=receivable.awaiting_decision,
    )
    now = clock.now()
    # A decision is awaited in payment_received only: the decision itself, a payout or a
    # cancellation leaves it, and the flag with it (a cancelled receivable still said it
    # awaited a decision nothing could take any more).
    receivable.awaiting_decision = (
        receivable.awaiting_decision and target is ReceivableStatus.PAYMENT_RECEIVED
    )
    if target is ReceivableStatus.RECOVERED:
        receivable.recovered_at = now
    _transition(
        session, clock, receivable, user_public_id, action, target, actor, reason=reason, data=data
    )
    receivable.next_action_at = next_action_at(receivable, now)
    await session.flush()
    return receivable


def _choice_and_notes(payload: Any, field: str, choices: list[str]) -> tuple[str, str | None]:
    """A creditor decision's required choice and optional notes, or the input errors of both."""
    payload = input_fields(payload)
    reader = PayloadReader()
    choice = reader.choice(payload.get(field), field, choices, default=None)
    notes = reader.string(payload.get("notes"), "notes", max_length=2000)
    reader.raise_if_any()
    assert choice is not None  # raise_if_any refused a missing or invalid choice
    return choice, notes


async def cancel(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    user_public_id: str,
    actor: Actor,
    payload: Mapping[str, Any],
) -> Receivable:
    """The creditor stops recovery, with one of the documented reasons."""
    reason, notes = _choice_and_notes(payload, "reason", [r.value for r in CancelReason])
    next_status(receivable.status, ReceivableAction.CANCEL)
    receivable.cancel_reason = reason
    receivable.cancel_notes = notes
    return await apply_action(
        session,
        clock,
        receivable,
        user_public_id,
        ReceivableAction.CANCEL,
        actor,
        reason=reason,
        data={"notes": notes} if notes else None,
    )


async def decide_partial_payment(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    user_public_id: str,
    actor: Actor,
    payload: Mapping[str, Any],
) -> Receivable:
    """The creditor's decision after a partial payment: continue recovery or call it complete."""
    choices = [a.value for a in PartialPaymentAction]
    action, notes = _choice_and_notes(payload, "action", choices)
    return await apply_action(
        session,
        clock,
        receivable,
        user_public_id,
        ReceivableAction(action),
        actor,
        reason=notes,
    )


MAX_EVIDENCE_DOCUMENTS = 20


async def submit_evidence(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    user_public_id: str,
    actor: Actor,
    payload: Mapping[str, Any],
) -> Evidence:
    """Documents and a statement against a dispute; recovery resumes (``in_process``)."""
    payload = input_fields(payload)
    reader = PayloadReader()
    statement = reader.string(payload.get("statement"), "statement", max_length=10000)
    documents: list[dict[str, Any]] = []
    items = reader.array(payload.get("documents"), "documents", max_items=MAX_EVIDENCE_DOCUMENTS)
    for index, item in enumerate(items or []):
        path = f"documents[{index}]"
        raw = reader.mapping(item, path, required=True)
        if raw is None:
            continue
        document = {
            "type": reader.string(raw.get("type"), f"{path}.type", max_length=100),
            "file": reader.string(raw.get("file"), f"{path}.file", required=True, max_length=2000),
            "description": reader.string(
                raw.get("description"), f"{path}.description", max_length=2000
            ),
        }
        documents.append(document)
    if statement is None and not items:
        reader.add("statement", "required", "Send a statement or at least one document.")
    reader.raise_if_any()
    next_status(receivable.status, ReceivableAction.SUBMIT_EVIDENCE)
    evidence = Evidence(
        public_id=public_id("evd"),
        receivable_id=receivable.id,
        statement=statement,
        documents=documents,
        submitted_by=actor.id,
        created_at=clock.now(),
    )
    session.add(evidence)
    await session.flush()
    await apply_action(
        session,
        clock,
        receivable,
        user_public_id,
        ReceivableAction.SUBMIT_EVIDENCE,
        actor,
        data={"evidence_id": evidence.public_id, "documents": len(documents)},
    )
    return evidence


def validate_contact(payload: Any) -> ContactDraft:
    """A ``Contact`` body (``POST /v1/receivables/{id}/contacts``): email required, level 0..10."""
    payload = input_fields(payload)
    if not isinstance(payload, Mapping):
        raise DomainValidationError(
            [FieldError("", "invalid_type", "The request body must be a JSON object.")]
        )
    reader = PayloadReader()
    email = reader.email(payload.get("email"), "email", required=True)
    draft = ContactDraft(
        email=email or "",
        first_name=reader.string(payload.get("first_name"), "first_name", max_length=100),
        last_name=reader.string(payload.get("last_name"), "last_name", max_length=100),
        phone=reader.phone(payload.get("phone"), "phone"),
        job_title=reader.string(payload.get("job_title"), "job_title", max_length=100),
        level=reader.integer(
            payload.get("level"), "level", default=DEFAULT_CONTACT_LEVEL, minimum=0, maximum=10
        )
        or 0,
    )
    reader.raise_if_any()
    return draft


async def add_contact(
    session: AsyncSession,
    clock: Clock,
    receivable: Receivable,
    actor: Actor,
    draft: ContactDraft,
) -> Contact:
    """Add a debtor contact; refused once the receivable is closed or has its most contacts.

    The caller holds the receivable's row lock (``lock_row`` or ``FOR UPDATE``) to the commit,
    so two additions to a receivable one short of the cap cannot both count one place left.
    """
    if receivable.status in (ReceivableStatus.RECOVERED, ReceivableStatus.CANCELLED):
        raise InvalidTransition(
            receivable.status, "add_contact", "A closed receivable takes no new contacts."
        )
    held = await session.scalar(
        select(func.count()).select_from(Contact).where(Contact.receivable_id == receivable.id)
    )
    if (held or 0) >= MAX_CONTACTS:
        raise DomainValidationError([too_many_contacts_error()])
    now = clock.now()
    contact = _new_contact(receivable.id, draft, now)
    session.add(contact)
    await session.flush()
    _history(
        session, receivable, "contact_added", actor, now, data={"contact_id": contact.public_id}
    )
    if draft.phone:
        # The "no phone" warning no longer holds once a contact with a phone exists.
        receivable.warnings = [
            w for w in (receivable.warnings or []) if w.get("code") != "no_phone_contact"
        ]
    await session.flush()
    return contact


async def update_metadata(
    session: AsyncSession, clock: Clock, receivable: Receivable, actor: Actor, payload: Any
) -> Receivable:
    """``PATCH``: merge ``metadata`` keys (Stripe style: an empty string or null removes a key)."""
    reader = PayloadReader()
    payload = input_fields(payload)
    if not isinstance(payload, Mapping):
        raise DomainValidationError(
            [FieldError("", "invalid_type", "The request body must be a JSON object.")]
        )
    raw = reader.free_mapping(payload.get("metadata"), "metadata", required=True)
    if raw is not None:
        check_metadata(reader, raw, "metadata", held=receivable.metadata_ or {})
    reader.raise_if_any()
    assert raw is not None
    merged = dict(receivable.metadata_ or {})
    keys_before = len(merged)
    for key, value in raw.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_METADATA_KEYS and len(merged) > keys_before:
        # Counted after the merge: 50 new keys per PATCH grew one receivable without bound. A
        # PATCH that leaves no more keys than were held passes (metadata from before the bound).
        reader.add("metadata", "too_many", TOO_MANY_METADATA_KEYS)
        reader.raise_if_any()
    receivable.metadata_ = merged
    _history(session, receivable, "metadata_updated", actor, clock.now(), data={"keys": list(raw)})
    await session.flush()
    return receivable


async def start_pending(session: AsyncSession, clock: Clock, *, limit: int = 100) -> list[str]:
    """Start up to ``limit`` pending receivables of active creditors (the recovery scheduler).

    Rows are locked and skipped when another worker holds them (PostgreSQL), and only
    ``pending`` rows are picked, so running twice never starts a receivable twice.
    """
    rows = (
        await session.execute(
            select(Receivable, User.public_id)
            .join(User, User.id == Receivable.user_id)
            .where(
                Receivable.status == ReceivableStatus.PENDING.value,
                User.status == UserStatus.ACTIVE.value,
                User.deleted_at.is_(None),
            )
            .order_by(Receivable.id)
            .limit(limit)
            .with_for_update(of=Receivable, skip_locked=True)
        )
    ).all()
    started = []
    for receivable, user_public_id in rows:
        await start(session, clock, receivable, user_public_id, SYSTEM)
        started.append(receivable.public_id)
    return started
