"""Counting failures per key in a fixed window (login throttling), in memory or in Redis."""

from __future__ import annotations

import math
from typing import Protocol

from debtgraph.domain.clock import Clock


class Throttle(Protocol):
    """Counts hits per key; a key over the limit is blocked until its window ends."""

    async def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it is not blocked."""
        ...

    async def hit(self, key: str) -> None:
        """Count one failure for ``key``."""
        ...

    async def clear(self, key: str) -> None:
        """Forget ``key`` (after a success)."""
        ...


class InMemoryThrottle:
    """Per-process counters: right for a single API process (the embedded default)."""

    def __init__(self, clock: Clock, limit: int, window_seconds: int) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window_seconds
        self._hits: dict[str, tuple[int, float]] = {}

    def _now(self) -> float:
        return self._clock.now().timestamp()

    async def retry_after(self, key: str) -> int | None:
        """Seconds left in the window when the limit was reached."""
        count, until = self._hits.get(key, (0, 0.0))
        now = self._now()
        if until <= now:
            self._hits.pop(key, None)
            return None
        return max(1, math.ceil(until - now)) if count >= self._limit else None

    async def hit(self, key: str) -> None:
        """Count a failure, opening a window at the first one."""
        now = self._now()
        count, until = self._hits.get(key, (0, 0.0))
        if until <= now:
            count, until = 0, now + self._window
        self._hits[key] = (count + 1, until)
        if len(self._hits) > 100_000:
            # Bound memory under a credential-stuffing flood: drop expired windows.
            self._hits = {k: v for k, v in self._hits.items() if v[1] > now}

    async def clear(self, key: str) -> None:
        """Forget the key."""
        self._hits.pop(key, None)


class RedisThrottle:
    """Counters in Redis, shared by every API process."""

    def __init__(self, redis_url: str, limit: int, window_seconds: int) -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.Redis.from_url(redis_url)
        self._limit = limit
        self._window = window_seconds

    @staticmethod
    def _key(key: str) -> str:
        return f"debtgraph:throttle:{key}"

    async def retry_after(self, key: str) -> int | None:
        """Remaining TTL when the counter reached the limit."""
        pipe = self._redis.pipeline()
        pipe.get(self._key(key))
        pipe.ttl(self._key(key))
        raw, ttl = await pipe.execute()
        if raw is None or int(raw) < self._limit:
            return None
        return max(1, int(ttl))

    async def hit(self, key: str) -> None:
        """INCR and start the window on the first hit."""
        pipe = self._redis.pipeline()
        pipe.incr(self._key(key))
        pipe.expire(self._key(key), self._window, nx=True)
        await pipe.execute()

    async def clear(self, key: str) -> None:
        """Delete the counter."""
        await self._redis.delete(self._key(key))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
