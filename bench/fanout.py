"""Subscription fan-out benchmark: N real WebSocket subscribers, events raised in the worker.

``DATABASE_URL=postgresql+asyncpg://… REDIS_URL=redis://…/N python bench/fanout.py
--subscribers 1000 --uploads 5`` (both required, the database disposable: the migrations create
the tables and the benchmark's rows are left behind) starts one ``debtgraph serve`` and one
``debtgraph worker``, then runs two phases with the same client processes:

* floor: a bare broadcaster (a plain ``websockets`` server in its own process, reading the same
  Redis channel and sending each raw event to every client with ``websockets.broadcast``);
* debtgraph: the same number of graphql-transport-ws subscribers to ``uploadProgress`` on the
  API process.

In each phase it posts ``--uploads`` uploads of ``--rows`` rows (above the synchronous limit,
so the worker ingests them and raises the events), one after the other. The trigger of an
event is the moment the bench's own Redis subscriber sees it published; every subscriber's
k-th message is matched with the k-th event. Prints, per phase, the share of subscribers that
heard every change and p50/p99 of receipt after the trigger.

Prints figures only; never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import free_port
from debtgraph.domain.core.clock import SystemClock
from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.core.eventbus import channel_for
from debtgraph.domain.creditors.operators import upsert_operator
from debtgraph.domain.migrations.runner import upgrade

HEADER = "first_name,last_name,iban,amount,city,postcode,address,country"
ROW = "Maria{i},Rodriguez,DE89370400440532013000,{amount},Berlin,10115,Hauptstrasse {i},DE"
SUBSCRIPTION = (
    "subscription { uploadProgress { id databaseId status processedRecords progress isComplete } }"
)
TYPES = ("upload.progress", "upload.completed", "upload.failed")


# --- The bare broadcaster (the floor) -----------------------------------------------------------


def broadcaster_main(port: int, redis_url: str, channel: str) -> None:
    """A plain websockets server sending every raw event on the channel to every client."""
    import websockets
    from redis import asyncio as aioredis
    from websockets.asyncio.server import broadcast, serve

    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        redis = aioredis.Redis.from_url(redis_url)
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(channel)
        async with serve(handler, "127.0.0.1", port, max_queue=None):
            async for raw in pubsub.listen():
                if raw.get("type") == "message":
                    message = orjson.loads(raw["data"])
                    if message["type"] in TYPES:
                        broadcast(clients, raw["data"].decode())

    del websockets
    asyncio.run(main())


# --- Client processes ---------------------------------------------------------------------------


async def _graphql_client(url: str, token: str, times: list[int], ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_queue=None,
        open_timeout=120,  # a thousand handshakes on a busy machine take a while
        ping_interval=None,
    ) as ws:
        await ws.send(
            orjson.dumps({"type": "connection_init", "payload": {"Authorization": token}}).decode()
        )
        ack = orjson.loads(await ws.recv())
        if ack["type"] != "connection_ack":
            raise RuntimeError(f"not acknowledged: {ack}")
        await ws.send(
            orjson.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
            ).decode()
        )
        ready.set()
        async for raw in ws:
            message = orjson.loads(raw)
            if message["type"] == "next":
                times.append(time.time_ns())
            elif message["type"] == "ping":
                await ws.send('{"type":"pong"}')
            elif message["type"] in ("error", "complete"):
                raise RuntimeError(f"subscription ended: {message}")


async def _bare_client(url: str, times: list[int], ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_queue=None, open_timeout=120, ping_interval=None) as ws:
        ready.set()
        async for _raw in ws:
            times.append(time.time_ns())


def client_main(conn: Connection, count: int) -> None:
    """Hold ``count`` subscribers per command from the parent; report their receipt times."""

    async def phase(mode: str, url: str, token: str) -> None:
        times: list[list[int]] = [[] for _ in range(count)]
        readies = [asyncio.Event() for _ in range(count)]
        tasks = []
        for i in range(count):
            if mode == "graphql":
                coro = _graphql_client(url, token, times[i], readies[i])
            else:
                coro = _bare_client(url, times[i], readies[i])
            tasks.append(asyncio.create_task(coro))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # do not stampede the accept queue
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110  (tasks and events)
            r.is_set() or t.done() for r, t in zip(readies, tasks, strict=True)
        ):
            await asyncio.sleep(0.05)
        failed = sum(1 for t in tasks if t.done() and t.exception() is not None)
        conn.send(("ready", sum(r.is_set() for r in readies), failed))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "report"
        errors = [repr(t.exception()) for t in tasks if t.done() and t.exception() is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send(("times", times, errors[:3]))

    while True:
        command = conn.recv()
        if command[0] == "stop":
            return
        asyncio.run(phase(*command[1:]))


# --- The run ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Probe:
    """The bench's own Redis subscriber: when each upload event was published."""

    def __init__(self, redis_url: str, channel: str) -> None:
        from redis import asyncio as aioredis

        self._redis = aioredis.Redis.from_url(redis_url)
        self._channel = channel
        self.published: list[tuple[int, str]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe and start recording."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel)

        async def read() -> None:
            async for raw in pubsub.listen():
                if raw.get("type") == "message":
                    message = orjson.loads(raw["data"])
                    if message["type"] in TYPES:
                        self.published.append((time.time_ns(), message["type"]))

        self._task = asyncio.create_task(read())

    async def stop(self) -> None:
        """Stop recording."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()


async def run_phase(
    name: str,
    pipes: list[Connection],
    command: list[str],
    probe: Probe,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Connect every subscriber, raise the uploads' events, collect and score the receipts."""
    loop = asyncio.get_running_loop()
    for pipe in pipes:
        pipe.send(("phase", *command))
    states = [await loop.run_in_executor(None, pipe.recv) for pipe in pipes]
    ready = sum(s[1] for s in states)
    await asyncio.sleep(1)  # subscriptions registered server-side
    probe.published.clear()
    body = "\n".join([HEADER] + [ROW.format(i=i, amount=10 + i) for i in range(args.rows)])
    for u in range(args.uploads):
        completed = sum(1 for _, t in probe.published if t != "upload.progress")
        r = await client.post(
            "/api/admin/uploads",
            files={"file": (f"{name}{u}.csv", body.encode())},
            headers=headers,
        )
        r.raise_for_status()
        for _ in range(600):
            if sum(1 for _, t in probe.published if t != "upload.progress") > completed:
                break
            await asyncio.sleep(0.05)
    await asyncio.sleep(args.settle)
    for pipe in pipes:
        pipe.send(("report",))
    reports = [await loop.run_in_executor(None, pipe.recv) for pipe in pipes]
    published = [t for t, _ in probe.published]
    everyone = [times for r in reports for times in r[1]]
    errors = [e for r in reports for e in r[2]]
    latencies: list[float] = []
    complete = 0
    for times in everyone:
        if len(times) >= len(published):
            complete += 1
        for k, received in enumerate(times[: len(published)]):
            latencies.append((received - published[k]) / 1e6)
    firsts = [(times[0] - published[0]) / 1e6 for times in everyone if times and published]
    return {
        "phase": name,
        "subscribers": len(everyone),
        "ready": ready,
        "events": len(published),
        "complete": complete,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "first_p50": statistics.median(firsts) if firsts else float("nan"),
        "errors": errors,
    }


async def main(args: argparse.Namespace) -> None:
    """Start the processes, run both phases, print the figures."""
    database_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        raise SystemExit("set DATABASE_URL (a disposable database) and REDIS_URL")
    engine = create_engine(database_url)
    await upgrade(engine)
    async with session_factory(engine)() as session:
        await upsert_operator(session, SystemClock(), "fanout@tether.test", "password", "Fanout")
        await session.commit()
    await engine.dispose()
    port, floor_port = free_port(), free_port()
    env = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "WS_MAX_CONNECTIONS_PER_PRINCIPAL": str(args.subscribers + 10),
        "UPLOAD_DIR": os.environ.get("UPLOAD_DIR", "/tmp/debtgraph-bench-fanout"),
    }
    cli = [sys.executable, "-m", "debtgraph.server.cli"]
    # cProfile writes its file when uvicorn exits on SIGTERM: where the API process spends it.
    profiled = ["-m", "cProfile", "-o", args.profile_server] if args.profile_server else []
    # Long-lived children for the whole run, not awaited.
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, *profiled, *cli[1:], "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
    )
    worker = subprocess.Popen([*cli, "worker"], env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
    channel = channel_for(redis_url)
    floor = mp.Process(target=broadcaster_main, args=(floor_port, redis_url, channel))
    floor.start()
    per_process = -(-args.subscribers // args.client_processes)
    pipes, clients = [], []
    for i in range(args.client_processes):
        count = min(per_process, args.subscribers - i * per_process)
        parent, child = mp.Pipe()
        process = mp.Process(target=client_main, args=(child, count))
        process.start()
        pipes.append(parent)
        clients.append(process)
    probe = Probe(redis_url, channel)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            login = await client.post(
                "/api/login", json={"email": "fanout@tether.test", "password": "password"}
            )
            login.raise_for_status()
            token = f"Bearer {login.json()['token']}"
            headers = {"Authorization": token}
            await probe.start()
            phases = (
                [] if args.skip_floor else [("floor", "bare", f"ws://127.0.0.1:{floor_port}", "")]
            )
            phases.append(("debtgraph", "graphql", f"ws://127.0.0.1:{port}/graphql", token))
            results = [
                await run_phase(name, pipes, command, probe, client, headers, args)
                for name, *command in phases
            ]
    finally:
        await probe.stop()
        for pipe in pipes:
            with contextlib.suppress(Exception):
                pipe.send(("stop",))
        for process in clients:
            process.join(10)
            if process.is_alive():
                process.terminate()
        floor.terminate()
        for child in (server, worker):
            # uvicorn re-raises SIGTERM after its shutdown, which kills cProfile before it writes
            # its file; SIGINT ends as a KeyboardInterrupt, which cProfile outlives.
            if child is server and args.profile_server:
                child.send_signal(signal.SIGINT)
            else:
                child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(15)
    print(
        f"{args.subscribers} subscribers, {args.uploads} uploads of {args.rows} rows raised in "
        f"the worker, {args.client_processes} client process(es), {os.cpu_count()} CPUs"
    )
    print(f"{'phase':<12}{'ready':>7}{'events':>8}{'heard all':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for r in results:
        share = 100 * r["complete"] / max(r["subscribers"], 1)
        print(
            f"{r['phase']:<12}{r['ready']:>7}{r['events']:>8}{share:>10.1f}%"
            f"{r['p50']:>9.1f}{r['p99']:>9.1f}"
        )
        if r["errors"]:
            print(f"  client errors ({r['phase']}): {r['errors']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the last event")
    parser.add_argument("--skip-floor", action="store_true", help="only the debtgraph phase")
    parser.add_argument(
        "--profile-server", metavar="PATH", help="write a cProfile of the API process to PATH"
    )
    asyncio.run(main(parser.parse_args()))
