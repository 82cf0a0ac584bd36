"""Counting attempts per key in a fixed window (login throttling), in memory or in Redis.

An attempt is counted *before* the work it guards (argon2), in one atomic step that also says
whether it may go on: checking first and counting after the work lets a burst of concurrent
attempts all pass the check before the first one is counted. A success clears the key.

A sign-in counts three keys: the client's address for any email (a cap that naming a new email
each time cannot escape), first, then the email alone (a cap that spreading guesses over many
client addresses cannot escape), then the email with the address (the tighter cap).
"""

from __future__ import annotations

import math
from typing import Protocol

from debtgraph.domain.core.clock import Clock


class Throttle(Protocol):
    """Counts attempts per key; past the limit a key is refused until its window ends."""

    async def acquire(self, key: str, limit: int | None = None) -> int | None:
        """Count one attempt for ``key``: None when it may go on, else seconds to wait.

        ``limit`` overrides the throttle's own for this key (one window for every key).
        """
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

    async def acquire(self, key: str, limit: int | None = None) -> int | None:
        """Count and decide in one step: no ``await`` between the read and the write."""
        now = self._clock.now().timestamp()
        count, until = self._hits.get(key, (0, 0.0))
        if until <= now:
            count, until = 0, now + self._window
        count += 1
        self._hits[key] = (count, until)
        if len(self._hits) > 100_000:
            # Bound memory under a credential-stuffing flood: drop expired windows.
            self._hits = {k: v for k, v in self._hits.items() if v[1] > now}
        if count <= (self._limit if limit is None else limit):
            return None
        return max(1, math.ceil(until - now))

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

    async def acquire(self, key: str, limit: int | None = None) -> int | None:
        """INCR, open the window on the first attempt and read its TTL, in one MULTI/EXEC."""
        name = self._key(key)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, self._window, nx=True)
        pipe.ttl(name)
        count, _, ttl = await pipe.execute()
        if int(count) <= (self._limit if limit is None else limit):
            return None
        return max(1, int(ttl))

    async def clear(self, key: str) -> None:
        """Delete the counter."""
        await self._redis.delete(self._key(key))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
