"""What several benchmark scripts share: counting an engine's statements, a free loopback port.

Imported as ``bench.common`` with the repository root on ``sys.path`` (the scripts put it
there; ``bench/`` itself must not lead the path, or ``bench/graphql.py`` shadows graphql-core).
"""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class StatementCounter:
    """Counts the statements an engine sends while ``active``."""

    def __init__(self) -> None:
        self.count = 0
        self.active = False

    def __call__(self, *args: Any) -> None:
        if self.active:
            self.count += 1

    def listen(self, engine: AsyncEngine) -> StatementCounter:
        """Count ``engine``'s statements from now on."""
        event.listen(engine.sync_engine, "before_cursor_execute", self)
        return self


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
