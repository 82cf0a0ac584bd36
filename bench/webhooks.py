"""Webhook delivery benchmark: signed deliveries per second of one worker's delivery loop.

``python bench/webhooks.py --deliveries 2000`` starts a raw asyncio HTTP receiver on loopback,
writes that many events on ``DATABASE_URL`` (default: a temporary SQLite file; a PostgreSQL
database must be disposable), relays them (which creates the deliveries set-wise), then runs the
delivery loop one worker runs (claim, sign, POST, record the attempts) until every delivery is
done, and prints deliveries/s beside the floor: bare aiohttp posts (the sender's client) of the
same signed bodies to the same receiver, with the same concurrency and no database; and, for
comparison, bare httpx posts. Target: >= 300/s per worker.
Prints figures only; never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debtgraph.domain.core import outbox
from debtgraph.domain.core.clock import SystemClock
from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.eventbus import InProcessEventBus
from debtgraph.domain.core.secrets import encrypt_secret, public_id
from debtgraph.domain.creditors.models import User
from debtgraph.domain.migrations.runner import upgrade
from debtgraph.domain.oauth.platforms import register_platform
from debtgraph.domain.webhooks import deliveries, signing
from debtgraph.domain.webhooks.models import Webhook, WebhookDelivery, WebhookEventType
from debtgraph.domain.webhooks.transport import Sender

SECRET_KEY = "bench-secret-key-bench-secret-key-0123"


class Receiver:
    """Answers 200 to every POST, keeping connections alive; counts what it got."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                with self.counter.get_lock():
                    self.counter.value += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _run_receiver(ports: Any, counter: Any) -> None:
    """The receiver in a process of its own: it must not share the worker's event loop."""

    async def serve() -> None:
        receiver = Receiver(counter)
        server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
        ports.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(serve())


async def arrange(url: str, n: int, receiver_url: str) -> tuple[object, list[int]]:
    """A platform, a creditor, a webhook on the receiver, n events relayed into deliveries."""
    engine = create_engine(url)
    await upgrade(engine)
    factory = session_factory(engine)
    clock = SystemClock()
    outbox.register_relay_step(deliveries.fan_out)
    async with factory() as session:
        created = await register_platform(session, clock, "Bench", ["https://bench.test/cb"])
        user = User(
            public_id=public_id("usr"),
            role="creditor",
            email=f"bench-{public_id('x')}@bench.test",
            platform_id=created.platform.id,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(user)
        await session.flush()
        hook = Webhook(
            public_id=public_id("whk"),
            platform_id=created.platform.id,
            url=receiver_url,
            events=["*"],
            secret_encrypted=encrypt_secret(SECRET_KEY, signing.new_secret()),
            created_at=clock.now(),
        )
        session.add(hook)
        await session.flush()
        hook_id = hook.id
        session.add(WebhookEventType(webhook_id=hook_id, type="*"))
        for i in range(n):
            outbox.record_event(
                session,
                clock,
                type="receivable.created",
                object_type="receivable",
                object_id=f"rcv_{i}",
                obj={"id": f"rcv_{i}", "amount": 1200.0, "status": "pending"},
                platform_id=created.platform.id,
                user_id=user.id,
            )
        await session.commit()
        bus = InProcessEventBus()
        while await outbox.relay(session, bus, clock, older_than=None, limit=500):
            pass
        ids = list(
            (
                await session.scalars(
                    select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == hook_id)
                )
            ).all()
        )
    return (engine, factory, clock, hook_id), ids


async def floor(bodies: list[bytes], url: str) -> float:
    """Bare aiohttp posts (the client the sender uses) of the same signed bodies, the same
    concurrency, no database: what the machine allows the delivery loop."""
    signer = signing.Signer([signing.new_secret()])
    gate = asyncio.Semaphore(deliveries.CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=deliveries.CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def one(i: int, body: bytes) -> None:
            async with gate:
                headers = signer.headers(f"evt_{i}", datetime.now(UTC), body)
                async with client.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
        return len(bodies) / (time.perf_counter() - started)


async def httpx_floor(bodies: list[bytes], url: str) -> float:
    """The same with httpx, which deliveries used before: for comparison only."""
    signer = signing.Signer([signing.new_secret()])
    gate = asyncio.Semaphore(deliveries.CONCURRENCY)
    limits = httpx.Limits(max_connections=deliveries.CONCURRENCY)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(i: int, body: bytes) -> None:
            async with gate:
                headers = signer.headers(f"evt_{i}", datetime.now(UTC), body)
                response = await client.post(url, content=body, headers=headers)
                assert response.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
        return len(bodies) / (time.perf_counter() - started)


async def main() -> None:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--httpx-posts", type=int, default=500, help="posts of the httpx figure")
    args = parser.parse_args()
    ports: Any = multiprocessing.Queue()
    counter: Any = multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=_run_receiver, args=(ports, counter), daemon=True)
    process.start()
    port = ports.get(timeout=30)
    receiver_url = f"http://127.0.0.1:{port}/hook"
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='bench-webhooks-')) / 'b.db'}"
    )
    (engine, factory, clock, _hook_id), ids = await arrange(url, args.deliveries, receiver_url)
    config = deliveries.DeliveryConfig(secret_key=SECRET_KEY, allow_private=True)
    sender = Sender()
    started = time.perf_counter()
    sent = 0
    async with factory() as session:  # type: ignore[operator]
        while True:
            n = await deliveries.deliver_batch(session, clock, sender, config)  # type: ignore[arg-type]
            await session.commit()
            if not n:
                break
            sent += n
    elapsed = time.perf_counter() - started
    async with factory() as session:  # type: ignore[operator]
        done = await session.scalar(
            select(func.count()).where(
                WebhookDelivery.status == "succeeded", WebhookDelivery.id.in_(ids)
            )
        )
        async with factory() as s2:  # type: ignore[operator]
            events = (await s2.scalars(select(outbox.Event).limit(len(ids)))).all()
    bodies = [deliveries.payload_of(e) for e in events]
    await sender.close()
    bare = await floor(bodies, receiver_url)
    bare_httpx = await httpx_floor(bodies[: args.httpx_posts], receiver_url)
    process.terminate()
    process.join()
    await engine.dispose()  # type: ignore[attr-defined]
    print(f"database: {url.split('@')[-1]}")
    got = counter.value - len(bodies) - min(len(bodies), args.httpx_posts)
    rate = sent / elapsed
    print(f"deliveries: {sent} sent, {done} succeeded, the receiver got {got}")
    print(f"delivery loop (one worker): {rate:8.0f} deliveries/s   target >= 300")
    print(f"floor (bare aiohttp, no DB): {bare:7.0f} posts/s   loop/floor {rate / bare:.2f}")
    print(f"bare httpx, for comparison: {bare_httpx:8.0f} posts/s")


if __name__ == "__main__":
    asyncio.run(main())
