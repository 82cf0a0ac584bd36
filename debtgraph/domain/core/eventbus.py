"""The event bus that carries committed events to live subscribers, in-process or over Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

from debtgraph.domain.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)

CHANNEL = "debtgraph:events"


def channel_for(redis_url: str) -> str:
    """The pub/sub channel of the deployment that keeps its jobs in ``redis_url``'s database.

    Redis pub/sub ignores the database number, so a constant channel would hand one deployment's
    events to every other one on the same server; the database is what separates their job queues,
    so it separates their events too.
    """
    from redis.connection import parse_url

    return f"{CHANNEL}:db{parse_url(redis_url).get('db', 0)}"


@dataclass(frozen=True, slots=True)
class BusMessage:
    """A committed event as subscribers see it."""

    id: str
    type: str
    object_type: str
    object_id: str
    platform_id: int | None
    user_id: int | None
    created: int
    data: dict[str, Any] = field(default_factory=dict)


class EventBus(Protocol):
    """Publish/subscribe of committed events."""

    async def publish(self, message: BusMessage) -> None:
        """Send a message to every subscriber, in every process."""
        ...

    def subscribe(self) -> AsyncIterator[BusMessage]:
        """Messages published from now on, until the iterator is closed."""
        ...

    async def start(self) -> None:
        """Open connections."""
        ...

    async def stop(self) -> None:
        """Close connections."""
        ...


class _Fanout:
    """Hands every message to each local subscriber's queue; slow ones drop the oldest."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._queues: set[asyncio.Queue[BusMessage]] = set()
        self._maxsize = maxsize
        self.dropped = 0

    def deliver(self, message: BusMessage) -> None:
        for queue in list(self._queues):
            if queue.full():
                # A stalled reader must not hold memory or block publishers; but events lost
                # are said (once per thousand), never dropped without a word.
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                if self.dropped % 1000 == 0:
                    log.warning(
                        "a live event reader is %d events behind: its oldest are dropped"
                        " (%d so far)",
                        self._maxsize,
                        self.dropped + 1,
                    )
                self.dropped += 1
            queue.put_nowait(message)

    async def listen(self) -> AsyncIterator[BusMessage]:
        queue: asyncio.Queue[BusMessage] = asyncio.Queue(self._maxsize)
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._queues)


class InProcessEventBus:
    """The bus when no Redis is configured: subscribers in this process only."""

    def __init__(self) -> None:
        self._fanout = _Fanout()

    async def publish(self, message: BusMessage) -> None:
        """Deliver to local subscribers."""
        self._fanout.deliver(message)

    def subscribe(self) -> AsyncIterator[BusMessage]:
        """Local subscription."""
        return self._fanout.listen()

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""


class RedisEventBus:
    """Redis pub/sub, so events raised in a worker reach subscribers on any API process.

    One Redis subscription per process feeds a local fan-out, rather than one connection per
    GraphQL subscriber.
    """

    def __init__(self, redis_url: str, channel: str | None = None) -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.Redis.from_url(redis_url)
        self._channel = channel or channel_for(redis_url)
        self._fanout = _Fanout()
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def publish(self, message: BusMessage) -> None:
        """Publish on the Redis channel (local subscribers get it back from Redis)."""
        await self._redis.publish(self._channel, orjson.dumps(asdict(message)))

    def subscribe(self) -> AsyncIterator[BusMessage]:
        """Local subscription fed by the process's Redis reader."""
        return self._fanout.listen()

    async def start(self) -> None:
        """Start the reader and wait until Redis confirmed the subscription."""
        if self._reader is None:
            self._ready.clear()
            self._reader = asyncio.create_task(self._read(), name="redis-event-bus")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result when a
            # cancellation lands as the event is set, and a worker stopped while it started
            # (SIGTERM, a test's teardown) went on polling its queues for good.
            async with asyncio.timeout(10):
                await self._ready.wait()

    async def stop(self) -> None:
        """Stop the reader and close the connection pool."""
        reader, self._reader = self._reader, None
        try:
            await cancel_and_wait(reader)
        finally:
            await self._redis.aclose()

    async def _read(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self._channel)
                self._ready.set()
                try:
                    async for raw in pubsub.listen():
                        if raw.get("type") != "message":
                            continue
                        try:
                            self._fanout.deliver(BusMessage(**orjson.loads(raw["data"])))
                        except (TypeError, ValueError):
                            log.warning("dropping malformed bus message")
                finally:
                    await pubsub.aclose()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A Redis restart must not end live updates for good: reconnect.
                log.exception("event bus connection lost; reconnecting")
                await asyncio.sleep(1)
