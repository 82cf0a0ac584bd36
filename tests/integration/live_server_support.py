"""A real ``debtgraph serve`` on a free loopback port, on the test database (for browsers)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from debtgraph.settings import Settings

STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class LiveServer:
    """Where the server listens."""

    port: int

    @property
    def url(self) -> str:
        """Its base URL, as a browser on this machine reaches it."""
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving_in_thread(app: Any, what: str) -> Iterator[int]:
    """Serve a small ASGI app (a fake bank, a fake gateway) in a thread; yields its port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {what} test server did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.asynccontextmanager
async def live_server(
    settings: Settings, args: Sequence[str] = (), **env: str
) -> AsyncIterator[LiveServer]:
    """Run ``debtgraph serve --port N [args]`` (PUBLIC_BASE_URL unset) until the block ends."""
    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL", "FORWARDED_ALLOW_IPS")
    }
    environ |= {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key,
        "UPLOAD_DIR": settings.upload_dir,
        "ALLOW_PRIVATE_WEBHOOK_URLS": "true",
        "LOG_LEVEL": "WARNING",
        **({"REDIS_URL": settings.redis_url} if settings.redis_url else {}),
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "debtgraph.server.cli", "serve"],
        *["--host", "127.0.0.1", "--port", str(port), *args],
        env=environ,
        stdin=asyncio.subprocess.DEVNULL,
    )
    server = LiveServer(port)
    try:
        async with (
            httpx.AsyncClient(base_url=server.url) as client,
            asyncio.timeout(STARTUP_TIMEOUT),
        ):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"debtgraph serve exited with {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
