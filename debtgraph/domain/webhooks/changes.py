"""Registering, listing, deleting webhooks and rotating their secrets (PRODUCT.md §5).

Decisions:

- A webhook belongs to a platform. Registered with a creditor's OAuth token it also names that
  creditor, and carries only its events; either way only events within the platform's reach
  (``oauth.grants.platform_reach``) are delivered.
- ``events`` lists event types a platform can receive, or ``*``: ``receivable.created``,
  ``receivable.status_changed``, ``receivable.<status>``, ``user.updated`` and
  ``webhook.disabled``. The operator events (uploads, debtors, billing attempts) concern data
  no platform reaches, so asking for them is refused rather than accepted and never sent.
- Deleting is soft (``deleted_at``): deliveries and their attempts stay readable in the log
  for the platform, and nothing new is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core import outbox
from debtgraph.domain.core.clock import Clock, event_time
from debtgraph.domain.core.errors import PayloadReader
from debtgraph.domain.core.events import CATALOGUE, Audience
from debtgraph.domain.core.secrets import decrypt_secret, encrypt_secret, public_id
from debtgraph.domain.webhooks import signing, targets
from debtgraph.domain.webhooks.models import Webhook, WebhookEventType

ALL_EVENTS = "*"
# What a webhook may subscribe to comes from the one event catalogue: the events about objects
# a platform owns; the operator's (uploads, debtors, VOP logs, billing) are refused by name.
PLATFORM_EVENTS: tuple[str, ...] = tuple(
    name for name, entry in CATALOGUE.items() if entry.audience is Audience.OWNER
)
OPERATOR_EVENTS = frozenset(
    name for name, entry in CATALOGUE.items() if entry.audience is Audience.OPERATOR
)
MAX_EVENTS = 50
MAX_DESCRIPTION = 1000


@dataclass(frozen=True, slots=True)
class WebhookDraft:
    """A webhook to register, read from untrusted input."""

    url: str
    events: list[str]
    description: str | None


def read_draft(payload: Any) -> WebhookDraft:
    """Read a CreateWebhookRequest (JSON or the GraphQL input); problems are FieldErrors."""
    reader = PayloadReader()
    body = reader.mapping(payload, "", required=True)
    reader.raise_if_any()
    assert body is not None
    url = reader.string(body.get("url"), "url", required=True, max_length=targets.MAX_URL_LENGTH)
    raw_events = reader.array(body.get("events"), "events", required=True, max_items=MAX_EVENTS)
    description = reader.string(body.get("description"), "description", max_length=MAX_DESCRIPTION)
    events: list[str] = []
    for index, value in enumerate(raw_events or []):
        path = f"events[{index}]"
        name = reader.string(value, path, required=True, max_length=60)
        if name is None:
            continue
        if name in OPERATOR_EVENTS:
            reader.add(
                path,
                "invalid_event",
                f"{name} is an operator event: no platform webhook receives it.",
            )
        elif name != ALL_EVENTS and name not in PLATFORM_EVENTS:
            reader.add(
                path,
                "invalid_event",
                f"Unknown event type {name!r}; use * or one of: {', '.join(PLATFORM_EVENTS)}.",
            )
        elif name not in events:
            events.append(name)
    reader.raise_if_any()
    assert url is not None
    return WebhookDraft(url=url, events=events, description=description)


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    """A registered webhook and its secret in clear (shown this once)."""

    webhook: Webhook
    secret: str


async def create(
    session: AsyncSession,
    clock: Clock,
    *,
    secret_key: str,
    platform_id: int,
    user_id: int | None,
    draft: WebhookDraft,
    allow_private: bool,
) -> CreatedWebhook:
    """Check the URL (https, public addresses only) and register the webhook with a new secret."""
    target = await targets.check(draft.url, allow_private=allow_private)
    secret = signing.new_secret()
    webhook = Webhook(
        # PRODUCT.md §3's prefix; ids made before it (wh_…) stay: lookups take the whole id.
        public_id=public_id("whk"),
        platform_id=platform_id,
        user_id=user_id,
        url=target.url,
        description=draft.description,
        events=list(draft.events),
        secret_encrypted=encrypt_secret(secret_key, secret),
        created_at=clock.now(),
    )
    session.add(webhook)
    await session.flush()
    session.add_all(WebhookEventType(webhook_id=webhook.id, type=t) for t in draft.events)
    await session.flush()
    return CreatedWebhook(webhook, secret)


async def rotate_secret(
    session: AsyncSession, clock: Clock, *, secret_key: str, webhook: Webhook
) -> str:
    """A new secret; the one it replaces keeps signing beside it for 24 hours."""
    now = clock.now()
    secret = signing.new_secret()
    # Rotating twice within a day retires the oldest: two secrets sign at most.
    webhook.previous_secret_encrypted = webhook.secret_encrypted
    webhook.previous_secret_expires_at = now + signing.PREVIOUS_SECRET_TTL
    webhook.secret_encrypted = encrypt_secret(secret_key, secret)
    await session.flush()
    return secret


async def delete(session: AsyncSession, clock: Clock, webhook: Webhook) -> None:
    """Stop delivering to the webhook; its log stays."""
    webhook.deleted_at = clock.now()
    webhook.active = False
    await session.flush()


def signing_secrets(secret_key: str, webhook: Webhook, now: Any) -> list[str]:
    """The secrets that sign the webhook's deliveries now (two during a rotation's overlap)."""
    previous = (
        decrypt_secret(secret_key, webhook.previous_secret_encrypted)
        if webhook.previous_secret_encrypted
        else None
    )
    return signing.signing_secrets(
        decrypt_secret(secret_key, webhook.secret_encrypted),
        previous,
        webhook.previous_secret_expires_at,
        now,
    )


def event_object(webhook: Webhook) -> dict[str, Any]:
    """A webhook as its events carry it (never a secret)."""
    return {
        "id": webhook.public_id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "active": webhook.active,
        "disabled_at": event_time(webhook.disabled_at),
        "created_at": event_time(webhook.created_at),
    }


def record_disabled(session: AsyncSession, clock: Clock, webhook: Webhook) -> None:
    """The notice that an endpoint was disabled after failing for days."""
    outbox.record_event(
        session,
        clock,
        type="webhook.disabled",
        object_type="webhook",
        object_id=webhook.public_id,
        obj=event_object(webhook),
        previous={"active": True},
        platform_id=webhook.platform_id,
        user_id=webhook.user_id,
    )


async def of_platform(
    session: AsyncSession, platform_id: int, user_id: int | None
) -> list[Webhook]:
    """A platform's live webhooks (a creditor token's: only those it registered), oldest first."""
    query = select(Webhook).where(Webhook.platform_id == platform_id, Webhook.deleted_at.is_(None))
    if user_id is not None:
        query = query.where(Webhook.user_id == user_id)
    return list((await session.scalars(query.order_by(Webhook.id))).all())
