"""The generic live stream of domain events (areas add typed subscriptions of their own)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.resolvers import events
from debtgraph.schema.base import ctx_of
from debtgraph.schema.live import nodes


@strawberry.type(description="A committed domain event, as webhooks carry it.")
class DomainEvent:
    id: str
    type: str
    object_type: str
    object_id: str
    created_at: datetime
    data: JSON

    @classmethod
    def from_message(cls, message: BusMessage) -> DomainEvent:
        """Shape a bus message."""
        return cls(
            id=message.id,
            type=message.type,
            object_type=message.object_type,
            object_id=message.object_id,
            created_at=datetime.fromtimestamp(message.created, UTC),
            data=message.data,
        )


@strawberry.type
class EventSubscription:
    @strawberry.subscription(
        description="Every event the caller may see, optionally only of the given types."
    )
    async def events(
        self, info: Info, types: list[str] | None = None
    ) -> AsyncGenerator[DomainEvent, None]:
        async for node in nodes(events.watch(ctx_of(info), types), DomainEvent.from_message):
            yield node
