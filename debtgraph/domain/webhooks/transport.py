"""The HTTP side of a delivery: one POST to an address the guard passed, 10 seconds at most.

The request goes to the IP address that ``targets.check`` resolved and validated, with the
name in the ``Host`` header and in TLS (SNI and certificate check), so the connection cannot
land anywhere the check did not see. Redirects are never followed (a 3xx is a failure), no
proxy from the environment is used, and only the first bytes of the answer are read.

Connections are pooled per host name (a pool per name, not per address), so a connection whose
certificate was checked for one name never carries a request for another; they are kept alive
between deliveries. The client is aiohttp's: at the delivery loop's concurrency httpx's pool
spent more CPU per request than the whole rest of a delivery (bench/webhooks.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

import aiohttp

from debtgraph.domain.webhooks.targets import Target

TIMEOUT_SECONDS = 10.0
EXCERPT_BYTES = 1024
MAX_POOLS = 256
# Per receiving host: as many as the delivery loop sends at once, so no request queues here.
MAX_CONNECTIONS = 32
USER_AGENT = "debtgraph-webhooks/1"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST gave: the status (None when no answer), latency and an excerpt."""

    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer (in time) is a delivery; anything else is retried."""
        return self.status_code is not None and 200 <= self.status_code < 300


def _authority(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    return target.host if target.port == default else f"{target.host}:{target.port}"


def _address_url(target: Target, index: int) -> str:
    address = target.addresses[index]
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{target.scheme}://{host}:{target.port}{target.path}"


class Sender:
    """Posts signed bodies; a process-wide service, closed with the runtime."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._pools: OrderedDict[str, aiohttp.ClientSession] = OrderedDict()

    def _pool(self, host: str) -> aiohttp.ClientSession:
        pool = self._pools.get(host)
        if pool is not None and not pool.closed:
            self._pools.move_to_end(host)
            return pool
        pool = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=MAX_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            # The body is only excerpted, never inflated; no proxy or netrc from the environment.
            auto_decompress=False,
            trust_env=False,
            # No cookies carried from one receiver's answer into the next delivery.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._pools[host] = pool
        while len(self._pools) > MAX_POOLS:
            _, evicted = self._pools.popitem(last=False)
            # Closing may wait on the network: never make this caller wait for it.
            task = asyncio.get_running_loop().create_task(evicted.close())
            task.add_done_callback(lambda _t: None)
        return pool

    async def post(self, target: Target, body: bytes, headers: dict[str, str]) -> AttemptResult:
        """POST ``body`` to the target's validated addresses (the next one if one refuses)."""
        started = time.perf_counter()
        sent = {
            **headers,
            # Sent as given: the URL names the address, this the host the check passed.
            "Host": _authority(target),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            # Only the first bytes are read: no compressed answer to inflate past them.
            "Accept-Encoding": "identity",
        }
        pool = self._pool(target.host)
        # TLS names (SNI) and checks the certificate of the host, not of the address dialled.
        server_hostname = target.host if target.scheme == "https" else None
        error = "no address"
        try:
            # One deadline for the whole attempt, every address included.
            async with asyncio.timeout(self.timeout):
                for index in range(len(target.addresses)):
                    try:
                        async with pool.post(
                            _address_url(target, index),
                            data=body,
                            headers=sent,
                            allow_redirects=False,
                            server_hostname=server_hostname,
                        ) as response:
                            # Leaving the block before the body's end closes the connection
                            # rather than pooling it with unread bytes.
                            excerpt = await _excerpt(response)
                            return AttemptResult(
                                response.status,
                                _elapsed(started),
                                excerpt,
                                _status_error(response),
                            )
                    except aiohttp.ClientConnectorError as exc:
                        error = f"connect error: {exc}"[:500]
                        continue
        except TimeoutError:
            return AttemptResult(None, _elapsed(started), None, f"timeout after {self.timeout:g} s")
        except aiohttp.ClientError as exc:
            return AttemptResult(
                None, _elapsed(started), None, f"{type(exc).__name__}: {exc}"[:500]
            )
        return AttemptResult(None, _elapsed(started), None, error)

    async def close(self) -> None:
        """Close every pool."""
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.close()


def _elapsed(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _status_error(response: aiohttp.ClientResponse) -> str | None:
    if 200 <= response.status < 300:
        return None
    if 300 <= response.status < 400 and "Location" in response.headers:
        return f"redirect to {response.headers['Location'][:300]} (not followed)"
    return f"HTTP {response.status}"


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    """The first bytes of the answer as text; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    while size < EXCERPT_BYTES:
        chunk = await response.content.read(EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:EXCERPT_BYTES].decode("utf-8", errors="replace")
