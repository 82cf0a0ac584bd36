"""Receivable use cases for both faces: create, read within reach, list, and every transition."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select

from debtgraph.domain.core.concurrency import dialect_of, lock_row
from debtgraph.domain.core.errors import PayloadReader, input_fields
from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.creditors.models import Role, User
from debtgraph.domain.creditors.requirements import capabilities
from debtgraph.domain.oauth.models import Platform
from debtgraph.domain.receivables import changes as service
from debtgraph.domain.receivables import status_machine as receivable_rules
from debtgraph.domain.receivables.models import (
    Contact,
    Evidence,
    Receivable,
    ReceivableEvent,
    ReceivableStatus,
)
from debtgraph.domain.receivables.parsing import validate_receivable
from debtgraph.domain.receivables.status_machine import ReceivableAction
from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.creditors import user_visible_condition
from debtgraph.resolvers.errors import (
    DomainValidationError,
    FieldError,
    InputError,
    NotFound,
)
from debtgraph.resolvers.loaders import Page, PageKey, Window
from debtgraph.resolvers.pagination import IdRef, check_first, keyset_page, query_int, read_id
from debtgraph.resolvers.permissions import (
    RECEIVABLES_READ,
    RECEIVABLES_WRITE,
    note_reach,
    receivable_reach,
    require_operator,
    require_scope,
)
from debtgraph.resolvers.principal import Principal, PrincipalKind

READ = RECEIVABLES_READ
WRITE = RECEIVABLES_WRITE


def receivable_visible_condition(
    principal: Principal, scope: str, now: datetime
) -> ColumnElement[bool]:
    """SQL condition for the receivables over which a caller may use ``scope``.

    Those of the users within that scope's reach, whichever platform submitted them.
    """
    return receivable_reach(principal, scope, now)


async def actor_of(ctx: Context) -> service.Actor:
    """The caller as a history entry names it."""
    principal = ctx.principal
    if principal is None:
        return service.SYSTEM
    if principal.kind is PrincipalKind.PLATFORM and principal.platform_id is not None:
        platform = await ctx.loaders.by(Platform.id).load(principal.platform_id)
        return service.Actor("platform", platform.public_id if platform else None)
    user = await ctx.loaders.by(User.id).load(principal.user_id)
    return service.Actor(principal.kind.value, user.public_id if user else None)


@dataclass(frozen=True, slots=True)
class Located:
    """A receivable (locked for update when changing it) with its creditor's public id."""

    receivable: Receivable
    user_public_id: str


async def locate(ctx: Context, receivable_id: IdRef, scope: str, *, lock: bool = False) -> Located:
    """A receivable within ``scope``'s reach, else NotFound (MissingScope before any read)."""
    principal = require_scope(ctx, scope)
    receivable_id = read_id(receivable_id)
    stmt = (
        select(Receivable, User.public_id)
        .join(User, User.id == Receivable.user_id)
        .where(
            Receivable.public_id == receivable_id,
            receivable_visible_condition(principal, scope, ctx.clock.now()),
        )
    )
    async with ctx.uow.session() as session:
        if lock and dialect_of(session) != "sqlite":
            # Two transitions of one receivable must not interleave: the lock is held to commit.
            # The row read under it replaces one this session already holds (an earlier
            # mutation of the same document), which another request may have changed since.
            locked = stmt.with_for_update(of=Receivable).execution_options(populate_existing=True)
            row = (await session.execute(locked)).first()
        else:
            row = (await session.execute(stmt)).first()
            if row is not None and lock:
                # SQLite ignores FOR UPDATE: take its write lock, then read again what the
                # writer we queued behind may have committed.
                await lock_row(session, Receivable, row[0].id)
                fresh = stmt.execution_options(populate_existing=True)
                row = (await session.execute(fresh)).first()
    if row is None:
        raise NotFound("Receivable")
    note_reach(ctx, "Receivable", row[0].user_id, scope)
    return Located(row[0], row[1])


async def get(ctx: Context, receivable_id: IdRef) -> Receivable:
    """``GET /v1/receivables/{id}``."""
    return (await locate(ctx, receivable_id, READ)).receivable


async def written(ctx: Context, receivable_id: IdRef) -> Receivable:
    """The receivable a write just changed: the write scope includes seeing it (PRODUCT.md §1)."""
    return (await locate(ctx, receivable_id, WRITE)).receivable


async def visible_by_public_id(ctx: Context, public_ids: Sequence[str]) -> dict[str, Receivable]:
    """Receivables among ``public_ids`` the caller may see (Relay node resolution)."""
    principal = ctx.principal
    if principal is None or not public_ids or not principal.has_scope(READ):
        return {}
    async with ctx.uow.session() as session:
        rows = (
            await session.scalars(
                select(Receivable).where(
                    Receivable.public_id.in_(list(public_ids)),
                    receivable_visible_condition(principal, READ, ctx.clock.now()),
                )
            )
        ).all()
    return {r.public_id: r for r in rows}


async def visible_children(
    ctx: Context, model: type[Contact] | type[Evidence] | type[ReceivableEvent], ids: Sequence[str]
) -> dict[str, Any]:
    """Contacts, evidence or history entries among ``ids`` whose receivable the caller may see."""
    principal = ctx.principal
    if principal is None or not ids or not principal.has_scope(READ):
        return {}
    reachable = select(Receivable.id).where(
        receivable_visible_condition(principal, READ, ctx.clock.now())
    )
    async with ctx.uow.session() as session:
        rows = (
            await session.scalars(
                select(model).where(
                    model.public_id.in_(list(ids)), model.receivable_id.in_(reachable)
                )
            )
        ).all()
    return {row.public_id: row for row in rows}  # type: ignore[attr-defined]


async def readable_receivable(ctx: Context, receivable_id: int) -> Receivable | None:
    """A receivable by database id if the caller may read it, batched per request.

    The parent edge of contacts, evidence and history entries: MissingScope without
    ``receivables:read``, None when the receivable is out of its reach.
    """
    principal = require_scope(ctx, READ)
    now = ctx.clock.now()

    async def batch(keys: Sequence[int]) -> list[Receivable | None]:
        condition = receivable_visible_condition(principal, READ, now)
        async with ctx.uow.session() as session:
            rows = (
                await session.scalars(select(Receivable).where(Receivable.id.in_(keys), condition))
            ).all()
        found = {r.id: r for r in rows}
        return [found.get(k) for k in keys]

    return await ctx.loaders.custom("readable_receivables", batch).load(receivable_id)  # type: ignore[no-any-return]


async def create(ctx: Context, payload: Any) -> Receivable:
    """``POST /v1/receivables``: hard rules (400, every error), user reach, then soft rules."""
    principal = require_scope(ctx, WRITE)
    payload = input_fields(payload)
    errors: list[FieldError] = []
    raw_user_id = payload.get("user_id") if isinstance(payload, Mapping) else None
    user: User | None = None
    if isinstance(raw_user_id, str) and raw_user_id.strip():
        async with ctx.uow.session() as session:
            user = await session.scalar(
                select(User).where(
                    User.public_id == raw_user_id.strip(),
                    User.role == Role.CREDITOR.value,
                    user_visible_condition(principal, WRITE, ctx.clock.now()),
                )
            )
        if user is not None:
            note_reach(ctx, "User", user.id, WRITE)
        if user is None:
            # Unknown and foreign users answer alike, so ids of other tenants do not leak.
            errors.append(FieldError("user_id", "user_not_found", "No such user."))
        elif not capabilities(user.status, bool(user.bank_iban)).send_receivables:
            errors.append(
                FieldError(
                    "user_id",
                    "user_cannot_send_receivables",
                    f"The user cannot send receivables yet (status {user.status}).",
                )
            )
    try:
        draft = validate_receivable(payload, ctx.clock.today())
    except DomainValidationError as exc:
        # The reach check already judged a string user_id; keep the payload's other errors.
        kept = [e for e in exc.errors if not (errors and e.field == "user_id")]
        raise InputError(errors + kept) from None
    if errors:
        raise InputError(errors)
    assert user is not None
    actor = await actor_of(ctx)
    async with ctx.uow.session() as session:
        receivable = await service.create_receivable(
            session,
            ctx.clock,
            draft,
            user_id=user.id,
            user_public_id=user.public_id,
            platform_id=(
                principal.platform_id if principal.platform_id is not None else user.platform_id
            ),
            actor=actor,
        )
    await ctx.uow.commit()
    return receivable


def parse_limit(raw: str | None) -> int:
    """``limit`` 1..100 (default 20); anything else is a 400 naming the field."""
    if raw is None:
        return 20
    value = query_int(raw)
    if value is None:
        raise InputError([FieldError("limit", "invalid", "limit must be an integer.")])
    return check_first(value, field="limit")


async def list_receivables(
    ctx: Context,
    *,
    user_id: IdRef | None = None,
    status: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
    window: Window | None = None,
) -> Page[Receivable]:
    """Newest first, filtered; ``starting_after`` must be a receivable the caller can see.

    REST pages by ``limit``/``starting_after``; GraphQL passes its cursor ``window`` instead.
    """
    principal = require_scope(ctx, READ)
    user_id = read_id(user_id) if user_id is not None else None
    check_first(limit, field="limit")
    statuses = [s.value for s in ReceivableStatus]
    if status is not None and status not in statuses:
        raise InputError(
            [
                FieldError(
                    "status", "invalid_choice", f"status must be one of: {', '.join(statuses)}."
                )
            ]
        )
    visible = receivable_visible_condition(principal, READ, ctx.clock.now())
    conditions: list[ColumnElement[bool]] = [visible]
    if status is not None:
        conditions.append(Receivable.status == status)
    if user_id is not None:
        conditions.append(Receivable.user_id.in_(select(User.id).where(User.public_id == user_id)))
    async with ctx.uow.session() as session:
        after_id = None
        if starting_after is not None:
            after_id = await session.scalar(
                select(Receivable.id).where(Receivable.public_id == starting_after, visible)
            )
            if after_id is None:
                raise InputError(
                    [
                        FieldError(
                            "starting_after",
                            "resource_missing",
                            f"No such receivable: {starting_after!r}.",
                        )
                    ]
                )
        return await keyset_page(
            session,
            select(Receivable).where(*conditions),
            Receivable.id,
            window or Window(limit, after_id),
        )


async def receivables_of_user(
    ctx: Context, user_id: int, window: Window, status: str | None
) -> Page[Receivable]:
    """A creditor's receivables, newest first, those within the caller's read reach (batched)."""
    principal = require_scope(ctx, READ)
    visible = receivable_visible_condition(principal, READ, ctx.clock.now())

    def conditions(filters: dict[str, Any]) -> list[ColumnElement[bool]]:
        status_filter = filters.get("status")
        extra = [Receivable.status == status_filter] if status_filter else []
        return [visible, *extra]

    filters = (("status", status),) if status else ()
    loader = ctx.loaders.pages(Receivable.user_id, conditions, name="visible_by_user")
    return await loader.load(PageKey(user_id, window, filters))


async def contacts_of(ctx: Context, receivables: Sequence[Receivable]) -> list[list[Contact]]:
    """Each receivable's contacts, in one statement for all of them."""
    loader = ctx.loaders.many(Contact.receivable_id, order_by=[Contact.id])
    return list(await loader.load_many([r.id for r in receivables]))


async def user_public_ids(ctx: Context, receivables: Sequence[Receivable]) -> list[str]:
    """Each receivable's creditor public id, in one statement for all of them."""
    users = await ctx.loaders.by(User.id).load_many([r.user_id for r in receivables])
    return [u.public_id if u else "" for u in users]


@dataclass(frozen=True, slots=True)
class ReceivableView:
    """A receivable with what showing it needs: its creditor's public id, contacts, progress."""

    receivable: Receivable
    user_public_id: str
    contacts: list[Contact]
    progress: service.RecoveryProgress


async def views(ctx: Context, receivables: Sequence[Receivable]) -> list[ReceivableView]:
    """Receivables ready to show (two statements whatever their number)."""
    if not receivables:
        return []
    contacts = await contacts_of(ctx, receivables)
    owners = await user_public_ids(ctx, receivables)
    now = ctx.clock.now()
    return [
        ReceivableView(r, owner, c, service.recovery_progress(r, now))
        for r, owner, c in zip(receivables, owners, contacts, strict=True)
    ]


# --- Creditor's changes (REST and GraphQL) ------------------------------------------------------


async def update_metadata(ctx: Context, receivable_id: IdRef, payload: Any) -> Receivable:
    """``PATCH /v1/receivables/{id}``: metadata only."""
    located = await locate(ctx, receivable_id, WRITE, lock=True)
    actor = await actor_of(ctx)
    async with ctx.uow.session() as session:
        await service.update_metadata(session, ctx.clock, located.receivable, actor, payload)
    await ctx.uow.commit()
    return located.receivable


async def cancel(ctx: Context, receivable_id: IdRef, payload: Any) -> Receivable:
    """Stop recovery (any state but recovered/cancelled) with a documented reason."""
    located = await locate(ctx, receivable_id, WRITE, lock=True)
    actor = await actor_of(ctx)
    async with ctx.uow.session() as session:
        await service.cancel(
            session, ctx.clock, located.receivable, located.user_public_id, actor, payload
        )
    await ctx.uow.commit()
    return located.receivable


async def add_contact(ctx: Context, receivable_id: IdRef, payload: Any) -> Contact:
    """Add a debtor contact."""
    located = await locate(ctx, receivable_id, WRITE, lock=True)
    draft = service.validate_contact(payload)
    actor = await actor_of(ctx)
    async with ctx.uow.session() as session:
        contact = await service.add_contact(session, ctx.clock, located.receivable, actor, draft)
    await ctx.uow.commit()
    return contact


async def submit_evidence(ctx: Context, receivable_id: IdRef, payload: Any) -> Evidence:
    """Evidence against a dispute; recovery resumes."""
    located = await locate(ctx, receivable_id, WRITE, lock=True)
    actor = await actor_of(ctx)
    async with ctx.uow.session() as session:
        evidence = await service.submit_evidence(
            session, ctx.clock, located.receivable, located.user_public_id, actor, payload
        )
    await ctx.uow.commit()
    return evidence


async def decide_partial_payment(ctx: Context, receivable_id: IdRef, payload: Any) -> Receivable:
    """After a partial payment: ``continue_recovery`` or ``mark_complete``."""
    located = await locate(ctx, receivable_id, WRITE, lock=True)
    actor = await actor_of(ctx)
    async with ctx.uow.session() as session:
        await service.decide_partial_payment(
            session, ctx.clock, located.receivable, located.user_public_id, actor, payload
        )
    await ctx.uow.commit()
    return located.receivable


def allowed_actions(ctx: Context, receivable: Receivable) -> list[ReceivableAction]:
    """What the caller may do next to ``receivable``, given its state and who is asking."""
    principal = ctx.principal
    if principal is None:
        return []
    if not principal.is_operator and not principal.has_scope(WRITE):
        # A read-only creditor token can change nothing.
        return []
    return receivable_rules.allowed_actions(
        receivable.status,
        fully_paid=receivable.amount_recovered >= receivable.amount,
        awaiting_decision=receivable.awaiting_decision,
        operator=principal.is_operator,
    )


# --- Operator's changes (GraphQL) -------------------------------------------------------------


async def _operator_locate(ctx: Context, receivable_id: IdRef) -> tuple[Located, service.Actor]:
    require_operator(ctx)
    located = await locate(ctx, receivable_id, READ, lock=True)
    return located, await actor_of(ctx)


async def start(ctx: Context, receivable_id: IdRef) -> Receivable:
    """Operators start recovery of a pending receivable."""
    located, actor = await _operator_locate(ctx, receivable_id)
    async with ctx.uow.session() as session:
        await service.start(session, ctx.clock, located.receivable, located.user_public_id, actor)
    await ctx.uow.commit()
    return located.receivable


async def record_payment(
    ctx: Context, receivable_id: IdRef, amount: Any, reference: str | None = None
) -> Receivable:
    """Operators record a debtor payment (full or partial)."""
    located, actor = await _operator_locate(ctx, receivable_id)
    reader = PayloadReader()
    value = reader.money(amount, "amount", required=True, positive=True)
    reader.raise_if_any()
    assert isinstance(value, Decimal)
    async with ctx.uow.session() as session:
        await service.record_payment(
            session,
            ctx.clock,
            located.receivable,
            located.user_public_id,
            actor,
            value,
            reference=reference,
        )
    await ctx.uow.commit()
    return located.receivable


async def operator_action(
    ctx: Context, receivable_id: IdRef, action: ReceivableAction, reason: str | None = None
) -> Receivable:
    """Operators pay out, open a dispute or request evidence."""
    located, actor = await _operator_locate(ctx, receivable_id)
    async with ctx.uow.session() as session:
        await service.apply_action(
            session,
            ctx.clock,
            located.receivable,
            located.user_public_id,
            action,
            actor,
            reason=reason,
        )
    await ctx.uow.commit()
    return located.receivable


async def _load_receivable(ctx: Context, message: BusMessage) -> Receivable | None:
    return (await visible_by_public_id(ctx, [message.object_id])).get(message.object_id)


async def watch_status_changes(
    ctx: Context, *, receivable_id: IdRef | None = None, user_id: IdRef | None = None
) -> AsyncIterator[Receivable]:
    """Each receivable in the caller's reach after its status changes, as it is then.

    Optionally only one receivable, or those of one creditor (public ids); without either,
    every one in reach (PRODUCT.md §11). Needs ``receivables:read``.
    """
    require_scope(ctx, READ)
    receivable_id = read_id(receivable_id) if receivable_id is not None else None
    user_id = read_id(user_id) if user_id is not None else None

    def match(message: BusMessage) -> bool:
        if receivable_id is not None and message.object_id != receivable_id:
            return False
        return user_id is None or message.data.get("object", {}).get("user_id") == user_id

    topic = events.Topic(
        "receivable",
        frozenset({"receivable.status_changed"}),
        _load_receivable,
        match,
        current_only=True,
    )
    async for model in events.stream(ctx, topic):
        yield model
