"""Webhook and WebhookDelivery nodes, and a mutation for every ``/v1/webhooks`` operation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.types import Info

from debtgraph.domain.webhooks.models import Webhook as WebhookModel
from debtgraph.domain.webhooks.models import WebhookDelivery as DeliveryModel
from debtgraph.domain.webhooks.models import WebhookDeliveryAttempt as AttemptModel
from debtgraph.resolvers import creditors, webhooks
from debtgraph.resolvers.pagination import check_window
from debtgraph.schema.base import (
    Connection,
    UserError,
    attempt,
    ctx_of,
    id_ref,
    nodes_in_order,
    to_connection,
)
from debtgraph.schema.creditors import User


@strawberry.type(description="One HTTP attempt of a delivery.")
class WebhookDeliveryAttempt:
    attempt_number: int
    status_code: int | None = strawberry.field(description="Null when no answer came.")
    latency_ms: int | None
    response_excerpt: str | None = strawberry.field(description="The answer's first bytes.")
    error: str | None = strawberry.field(description="Why it failed, when it did.")
    succeeded: bool
    created_at: datetime

    @classmethod
    def from_model(cls, m: AttemptModel) -> WebhookDeliveryAttempt:
        """Shape an attempt row."""
        return cls(
            attempt_number=m.attempt_number,
            status_code=m.status_code,
            latency_ms=m.latency_ms,
            response_excerpt=m.response_excerpt,
            error=m.error,
            succeeded=m.succeeded,
            created_at=m.created_at,
        )


@strawberry.type(name="Webhook", description="An endpoint a platform registered for events.")
class Webhook(relay.Node):
    id: relay.NodeID[str]
    webhook_id: str = strawberry.field(description="The id /v1/webhooks shows (whk_…).")
    url: str
    events: list[str]
    description: str | None
    active: bool = strawberry.field(description="False once deleted or disabled.")
    disabled_at: datetime | None = strawberry.field(
        description="When it was disabled after failing for days."
    )
    created_at: datetime
    model: strawberry.Private[WebhookModel]

    @classmethod
    def from_model(cls, m: WebhookModel) -> Webhook:
        """Shape a webhook (never its secret)."""
        return cls(
            id=m.public_id,
            webhook_id=m.public_id,
            url=m.url,
            events=list(m.events),
            description=m.description,
            active=m.active,
            disabled_at=m.disabled_at,
            created_at=m.created_at,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Webhook | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: webhooks.webhooks_by_public_id(ctx, ids), cls.from_model
        )

    @strawberry.field(description="Its deliveries, newest first.")
    async def deliveries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[WebhookDelivery]:
        window = check_window(first, after, last, before)
        page = await webhooks.deliveries_page(ctx_of(info), self.model.id, window)
        return to_connection(page, WebhookDelivery.from_model)

    @strawberry.field(
        description="The creditor whose OAuth token registered it; null for a platform's own."
    )
    async def user(self, info: Info) -> User | None:
        if self.model.user_id is None:
            return None
        # users:read over this creditor, as Receivable.user asks (PRODUCT.md §1).
        model = await creditors.readable_user(ctx_of(info), self.model.user_id)
        return User.from_model(model) if model else None


@strawberry.type(name="WebhookDelivery", description="One event sent (or being sent) to a webhook.")
class WebhookDelivery(relay.Node):
    id: relay.NodeID[str]
    status: str = strawberry.field(description="pending, succeeded or failed.")
    attempts_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    model: strawberry.Private[DeliveryModel]

    @classmethod
    def from_model(cls, m: DeliveryModel) -> WebhookDelivery:
        """Shape a delivery."""
        return cls(
            id=m.public_id,
            status=m.status,
            attempts_count=m.attempts_count,
            next_attempt_at=m.next_attempt_at,
            delivered_at=m.delivered_at,
            created_at=m.created_at,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[WebhookDelivery | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: webhooks.deliveries_by_public_id(ctx, ids), cls.from_model
        )

    @strawberry.field(description="The event's id (evt_…), also the webhook-id header.")
    async def event_id(self, info: Info) -> str | None:
        event = await webhooks.event_of(ctx_of(info), self.model.event_id)
        return event.public_id if event else None

    @strawberry.field(description="The event's type.")
    async def event_type(self, info: Info) -> str | None:
        event = await webhooks.event_of(ctx_of(info), self.model.event_id)
        return event.type if event else None

    @strawberry.field(description="The webhook it goes to.")
    async def webhook(self, info: Info) -> Webhook | None:
        model = await webhooks.webhook_of(ctx_of(info), self.model.webhook_id)
        return Webhook.from_model(model) if model else None

    @strawberry.field(description="Every attempt, first to last.")
    async def attempts(self, info: Info) -> list[WebhookDeliveryAttempt]:
        rows = await webhooks.attempts_of(ctx_of(info), self.model.id)
        return [WebhookDeliveryAttempt.from_model(a) for a in rows]


@strawberry.input
class WebhookCreateInput:
    url: str
    events: list[str]
    description: str | None = None


@strawberry.input
class WebhookIdInput:
    id: strawberry.ID = strawberry.field(description="A Webhook id (or its whk_… id).")


@strawberry.input
class WebhookDeliveryReplayInput:
    id: strawberry.ID = strawberry.field(description="A WebhookDelivery id.")


@strawberry.type
class WebhookSecretPayload:
    webhook: Webhook | None
    secret: str | None = strawberry.field(description="The signing secret, shown this once.")
    user_errors: list[UserError]


@strawberry.type
class WebhookDeletePayload:
    deleted_webhook_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class WebhookDeliveryReplayPayload:
    delivery: WebhookDelivery | None
    user_errors: list[UserError]


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="The caller's webhooks, oldest first (GET /v1/webhooks).")
    async def webhooks(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Webhook]:
        window = check_window(first, after, last, before, oldest_first=True)
        return to_connection(await webhooks.webhook_page(ctx_of(info), window), Webhook.from_model)


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Register a webhook (POST /v1/webhooks).")
    async def webhook_create(self, info: Info, input: WebhookCreateInput) -> WebhookSecretPayload:
        created, errors = await attempt(webhooks.create(ctx_of(info), input))
        if created is None:
            return WebhookSecretPayload(webhook=None, secret=None, user_errors=errors)
        return WebhookSecretPayload(
            webhook=Webhook.from_model(created.webhook), secret=created.secret, user_errors=[]
        )

    @strawberry.mutation(description="Delete a webhook (DELETE /v1/webhooks/{id}).")
    async def webhook_delete(self, info: Info, input: WebhookIdInput) -> WebhookDeletePayload:
        deleted, errors = await attempt(
            webhooks.delete(ctx_of(info), id_ref(str(input.id), "Webhook"))
        )
        return WebhookDeletePayload(
            deleted_webhook_id=(
                strawberry.ID(str(relay.GlobalID("Webhook", deleted.public_id)))
                if deleted
                else None
            ),
            user_errors=errors,
        )

    @strawberry.mutation(
        description="A new signing secret; the old one signs too for 24 hours "
        "(POST /v1/webhooks/{id}/rotate-secret)."
    )
    async def webhook_rotate_secret(
        self, info: Info, input: WebhookIdInput
    ) -> WebhookSecretPayload:
        rotated, errors = await attempt(
            webhooks.rotate_secret(ctx_of(info), id_ref(str(input.id), "Webhook"))
        )
        if rotated is None:
            return WebhookSecretPayload(webhook=None, secret=None, user_errors=errors)
        return WebhookSecretPayload(
            webhook=Webhook.from_model(rotated.webhook), secret=rotated.secret, user_errors=[]
        )

    @strawberry.mutation(description="Send a finished delivery again, from the first retry step.")
    async def webhook_delivery_replay(
        self, info: Info, input: WebhookDeliveryReplayInput
    ) -> WebhookDeliveryReplayPayload:
        delivery, errors = await attempt(
            webhooks.replay(ctx_of(info), id_ref(str(input.id), "WebhookDelivery"))
        )
        return WebhookDeliveryReplayPayload(
            delivery=WebhookDelivery.from_model(delivery) if delivery else None,
            user_errors=errors,
        )
