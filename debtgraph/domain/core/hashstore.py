"""A bounded store of texts named by their SHA-256, in memory or in Redis (persisted queries).

Anyone may add to it (an anonymous client registers a document by sending it with its hash), so
it must not become a memory sink: both kinds hold at most ``max_entries`` texts, forget one
``ttl_seconds`` after it was last used, and drop the least recently used first. The caller bounds
the size of each text; the in-memory store also keeps to a byte budget of its own.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

# Per API process: a full store of the largest documents stays a few megabytes.
MEMORY_BUDGET_BYTES = 8 * 1024 * 1024


class HashStore(Protocol):
    """Texts by hash; ``get`` counts as a use."""

    async def get(self, key: str) -> str | None:
        """The text stored under ``key``, or None."""
        ...

    async def put(self, key: str, text: str) -> None:
        """Store ``text`` under ``key`` (the caller checked that ``key`` is its hash)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MemoryHashStore:
    """A per-process LRU, for deployments without Redis."""

    def __init__(
        self, max_entries: int, ttl_seconds: int, budget_bytes: int = MEMORY_BUDGET_BYTES
    ) -> None:
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._budget = budget_bytes
        self._bytes = 0
        # key -> (text, size, expiry on the monotonic clock); most recently used last.
        self._entries: OrderedDict[str, tuple[str, int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> str | None:
        """The text, refreshed as the most recently used; expired texts are dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        text, size, expiry = entry
        now = time.monotonic()
        if expiry <= now:
            self._drop(key)
            return None
        self._entries[key] = (text, size, now + self._ttl)
        self._entries.move_to_end(key)
        return text

    async def put(self, key: str, text: str) -> None:
        """Store, then evict the least recently used past the entry count or the byte budget."""
        size = len(text.encode())
        if size > self._budget:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (text, size, time.monotonic() + self._ttl)
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._budget:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, size, _ = self._entries.pop(key)
        self._bytes -= size

    async def close(self) -> None:
        """Nothing to release."""


# SET the text with its TTL, note its use in the index, and trim the index (and the texts it
# names) to the entry count, atomically: concurrent registrations cannot overshoot the bound.
_PUT = """
redis.call('SET', KEYS[1] .. ARGV[1], ARGV[2], 'EX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #old, 2 do redis.call('DEL', KEYS[1] .. old[i]) end
end
return 0
"""


class RedisHashStore:
    """Shared by every API process of the deployment (its Redis database)."""

    def __init__(self, redis_url: str, prefix: str, max_entries: int, ttl_seconds: int) -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self._texts = f"{prefix}:text:"
        self._index = f"{prefix}:index"
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._put = self._redis.register_script(_PUT)

    async def get(self, key: str) -> str | None:
        """GETEX refreshes the TTL; the index records the use for the eviction order."""
        text = await self._redis.getex(self._texts + key, ex=self._ttl)
        if text is None:
            return None
        await self._redis.zadd(self._index, {key: time.time()}, xx=True)
        return str(text)

    async def put(self, key: str, text: str) -> None:
        """One script: store, index, evict."""
        await self._put(
            keys=[self._texts, self._index],
            args=[key, text, self._ttl, time.time(), self._max_entries],
        )

    async def count(self) -> int:
        """Texts indexed (at most ``max_entries``)."""
        return int(await self._redis.zcard(self._index))

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
