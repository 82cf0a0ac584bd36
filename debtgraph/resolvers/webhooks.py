"""Webhook use cases for both faces: register, list, delete, rotate, deliveries and replay."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select

from debtgraph.domain.core import outbox
from debtgraph.domain.core.concurrency import lock_row
from debtgraph.domain.webhooks import changes as service
from debtgraph.domain.webhooks import deliveries
from debtgraph.domain.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.errors import NotFound
from debtgraph.resolvers.loaders import Page, PageKey, Window
from debtgraph.resolvers.pagination import IdRef, keyset_page, read_id
from debtgraph.resolvers.permissions import (
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
    require_scope,
    webhook_owner,
    webhook_reach,
)
from debtgraph.resolvers.principal import Principal


@dataclass(frozen=True, slots=True)
class WithSecret:
    """A webhook and its signing secret in clear: only on create and rotate."""

    webhook: Webhook
    secret: str


async def create(ctx: Context, payload: Any) -> WithSecret:
    """Register a webhook (``webhooks:write``); the URL is checked before anything is written."""
    principal = require_scope(ctx, WEBHOOKS_WRITE)
    platform_id, user_id = webhook_owner(principal)
    draft = service.read_draft(payload)
    settings = ctx.settings
    async with ctx.uow.session() as session:
        created = await service.create(
            session,
            ctx.clock,
            secret_key=settings.secret_key,
            platform_id=platform_id,
            user_id=user_id,
            draft=draft,
            allow_private=settings.allow_private_webhook_urls,
        )
    await ctx.uow.commit()
    return WithSecret(created.webhook, created.secret)


async def list_webhooks(ctx: Context) -> list[Webhook]:
    """The caller's live webhooks, oldest first (``webhooks:read``)."""
    principal = require_scope(ctx, WEBHOOKS_READ)
    async with ctx.uow.session() as session:
        rows = await session.scalars(
            select(Webhook).where(*_live_in_reach(principal)).order_by(Webhook.id)
        )
        return list(rows.all())


def _live_in_reach(principal: Principal) -> list[ColumnElement[bool]]:
    return [webhook_reach(principal, WEBHOOKS_READ), Webhook.deleted_at.is_(None)]


async def webhook_page(ctx: Context, window: Window) -> Page[Webhook]:
    """A page of the caller's live webhooks, oldest first as REST lists them (``webhooks:read``)."""
    principal = require_scope(ctx, WEBHOOKS_READ)
    stmt = select(Webhook).where(*_live_in_reach(principal))
    async with ctx.uow.session() as session:
        return await keyset_page(session, stmt, Webhook.id, window)


async def webhooks_of_user(ctx: Context, user_id: int, window: Window) -> Page[Webhook]:
    """The live webhooks a creditor registered that the caller may read, batched across users."""
    principal = require_scope(ctx, WEBHOOKS_READ)
    loader = ctx.loaders.pages(
        Webhook.user_id, lambda _: _live_in_reach(principal), name="user.webhooks"
    )
    page: Page[Webhook] = await loader.load(PageKey(user_id, window))
    return page


async def _owned(ctx: Context, public_id: IdRef, scope: str, *, lock: bool = False) -> Webhook:
    principal = require_scope(ctx, scope)
    public_id = read_id(public_id)
    async with ctx.uow.session() as session:
        webhook = await session.scalar(
            select(Webhook).where(
                Webhook.public_id == public_id,
                Webhook.deleted_at.is_(None),
                webhook_reach(principal, scope),
            )
        )
        if webhook is None:
            raise NotFound("Webhook")
        if lock:
            # Concurrent rotations queue here, so each retires the secret the other made.
            await lock_row(session, Webhook, webhook.id)
            await session.refresh(webhook)
            if webhook.deleted_at is not None:
                raise NotFound("Webhook")
        return webhook


async def delete(ctx: Context, public_id: IdRef) -> Webhook:
    """Delete a webhook (``webhooks:write``): nothing more is delivered to it."""
    webhook = await _owned(ctx, public_id, WEBHOOKS_WRITE, lock=True)
    async with ctx.uow.session() as session:
        await service.delete(session, ctx.clock, webhook)
    await ctx.uow.commit()
    return webhook


async def rotate_secret(ctx: Context, public_id: IdRef) -> WithSecret:
    """A new secret (``webhooks:write``); the old one keeps signing for 24 hours."""
    webhook = await _owned(ctx, public_id, WEBHOOKS_WRITE, lock=True)
    async with ctx.uow.session() as session:
        secret = await service.rotate_secret(
            session, ctx.clock, secret_key=ctx.settings.secret_key, webhook=webhook
        )
    await ctx.uow.commit()
    return WithSecret(webhook, secret)


async def webhooks_by_public_id(ctx: Context, public_ids: Iterable[str]) -> dict[str, Webhook]:
    """Webhooks among ``public_ids`` the caller may read (deleted ones too: their log stays)."""
    principal = ctx.principal
    ids = list(public_ids)
    if principal is None or not ids or not principal.has_scope(WEBHOOKS_READ):
        return {}
    async with ctx.uow.session() as session:
        rows = await session.scalars(
            select(Webhook).where(
                Webhook.public_id.in_(ids), webhook_reach(principal, WEBHOOKS_READ)
            )
        )
        return {w.public_id: w for w in rows.all()}


async def deliveries_by_public_id(
    ctx: Context, public_ids: Iterable[str]
) -> dict[str, WebhookDelivery]:
    """Deliveries among ``public_ids`` to webhooks the caller may read."""
    principal = ctx.principal
    ids = list(public_ids)
    if principal is None or not ids or not principal.has_scope(WEBHOOKS_READ):
        return {}
    async with ctx.uow.session() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.public_id.in_(ids), webhook_reach(principal, WEBHOOKS_READ))
        )
        return {d.public_id: d for d in rows.all()}


async def deliveries_page(ctx: Context, webhook_id: int, window: Window) -> Page[WebhookDelivery]:
    """A page of a webhook's deliveries, newest first, one windowed query per request batch.

    The webhook was read within reach already (this is a field of a Webhook node).
    """
    loader = ctx.loaders.pages(WebhookDelivery.webhook_id, name="webhook.deliveries")
    page: Page[WebhookDelivery] = await loader.load(PageKey(webhook_id, window))
    return page


async def attempts_of(ctx: Context, delivery_id: int) -> list[WebhookDeliveryAttempt]:
    """A delivery's attempts, first to last, batched per request."""

    async def batch(keys: Sequence[int]) -> list[list[WebhookDeliveryAttempt]]:
        async with ctx.uow.session() as session:
            rows = (
                await session.scalars(
                    select(WebhookDeliveryAttempt)
                    .where(WebhookDeliveryAttempt.delivery_id.in_(keys))
                    .order_by(WebhookDeliveryAttempt.attempt_number)
                )
            ).all()
        grouped: dict[int, list[WebhookDeliveryAttempt]] = {k: [] for k in keys}
        for row in rows:
            grouped[row.delivery_id].append(row)
        return [grouped[k] for k in keys]

    return await ctx.loaders.custom("webhook_attempts", batch).load(delivery_id)  # type: ignore[no-any-return]


async def event_of(ctx: Context, event_id: int) -> outbox.Event | None:
    """The event a delivery carries."""
    return await ctx.loaders.by(outbox.Event.id).load(event_id)  # type: ignore[no-any-return]


async def webhook_of(ctx: Context, webhook_id: int) -> Webhook | None:
    """The webhook a delivery goes to (read within reach with the delivery)."""
    return await ctx.loaders.by(Webhook.id).load(webhook_id)  # type: ignore[no-any-return]


async def replay(ctx: Context, delivery_public_id: IdRef) -> WebhookDelivery:
    """Send a finished delivery again (``webhooks:write``), from the top of the schedule."""
    principal = require_scope(ctx, WEBHOOKS_WRITE)
    delivery_public_id = read_id(delivery_public_id)
    async with ctx.uow.session() as session:
        found = (
            await session.execute(
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(
                    WebhookDelivery.public_id == delivery_public_id,
                    webhook_reach(principal, WEBHOOKS_WRITE),
                )
            )
        ).first()
        if found is None:
            raise NotFound("Webhook delivery")
        delivery, webhook = found
        await deliveries.replay(session, ctx.clock, delivery, webhook)
        outbox.enqueue_after_commit(session, deliveries.DELIVER_TASK, [delivery.id])
    await ctx.uow.commit()
    return delivery
