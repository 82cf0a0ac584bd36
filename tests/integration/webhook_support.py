"""A real HTTP receiver on loopback for webhook tests and the bench."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An asyncio HTTP/1.1 server: records requests, answers ``status`` (after ``delay``).

    With ``hold``, every answer also waits until the test sets it: a slow endpoint whose
    slowness lasts exactly as long as the test needs, not a guessed number of seconds.
    """

    status: int = 200
    delay: float = 0.0
    hold: asyncio.Event | None = None
    location: str | None = None
    record: bool = True
    received: list[Received] = field(default_factory=list)
    count: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """Where webhooks should point."""
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def wait_for(self, n: int, timeout: float) -> None:
        """Until ``n`` requests came, or ``timeout`` seconds passed (the caller checks which)."""
        try:
            async with asyncio.timeout(timeout):
                while self.count < n:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            pass

    async def stop(self) -> None:
        """Close the listening socket."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.count += 1
                if self.record:
                    self.received.append(Received(path, headers, body))
                self._arrived.set()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.hold is not None:
                    await self.hold.wait()
                extra = f"Location: {self.location}\r\n" if self.location else ""
                answer = b"ok" if self.status < 300 else b"nope"
                head_out = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(answer)}\r\n"
                writer.write(f"{head_out}{extra}\r\n".encode() + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
