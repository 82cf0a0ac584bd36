"""Deployments sharing one Redis server hear only their own events (pub/sub ignores the db)."""

from __future__ import annotations

import asyncio
import os

import pytest

from debtgraph.domain.core.eventbus import BusMessage, RedisEventBus, channel_for

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def test_the_channel_is_named_for_the_redis_database() -> None:
    assert channel_for("redis://127.0.0.1:6379/3") == "debtgraph:events:db3"
    assert channel_for("redis://127.0.0.1:6379") == "debtgraph:events:db0"
    assert channel_for("redis://h:1/0?db=7") == "debtgraph:events:db7"


def _message(object_id: str) -> BusMessage:
    return BusMessage(
        id=f"evt_{object_id}",
        type="receivable.created",
        object_type="receivable",
        object_id=object_id,
        platform_id=1,
        user_id=1,
        created=0,
    )


async def _first(bus: RedisEventBus, timeout: float) -> BusMessage | None:
    stream = bus.subscribe()
    try:
        async with asyncio.timeout(timeout):
            return await anext(stream)
    except TimeoutError:
        return None
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_a_deployment_on_another_redis_database_hears_nothing() -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("runs with the suite's Redis (REDIS_URL)")
    base = REDIS_URL.rsplit("/", 1)[0]
    # Only pub/sub is used: no key is written in either database.
    ours, theirs, same = (
        RedisEventBus(f"{base}/14"),
        RedisEventBus(f"{base}/13"),
        RedisEventBus(f"{base}/14"),
    )
    for bus in (ours, theirs, same):
        await bus.start()
    try:
        other = asyncio.create_task(_first(ours, 1.0))
        await asyncio.sleep(0.2)
        await theirs.publish(_message("rcv_theirs"))
        assert await other is None
        mine = asyncio.create_task(_first(ours, 5.0))
        await asyncio.sleep(0.2)
        await same.publish(_message("rcv_ours"))
        heard = await mine
        assert heard is not None
        assert heard.object_id == "rcv_ours"
    finally:
        for bus in (ours, theirs, same):
            await bus.stop()


async def test_a_start_cancelled_as_the_subscription_is_confirmed_is_cancelled() -> None:
    """A worker's startup opens the bus; a stop (SIGTERM, a test's teardown) that cancels it
    just as Redis confirms the subscription must end it. Python 3.11's wait_for returned the
    result instead, and the worker went on polling its queues after it was told to stop."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("runs with the suite's Redis (REDIS_URL)")
    # Cancel at each of the loop turns between the confirmation and start() resuming.
    for turns in range(4):
        bus = RedisEventBus(REDIS_URL)
        start = asyncio.create_task(bus.start())
        try:
            # One loop turn at a time, not awaiting the event: the cancel must land on the
            # very turn it is set, before start() resumes.
            while not bus._ready.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0)
            for _ in range(turns):
                await asyncio.sleep(0)
            if start.done():
                break
            start.cancel()
            with pytest.raises(asyncio.CancelledError):
                await start
        finally:
            await bus.stop()
