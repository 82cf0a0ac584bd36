"""Structured (JSON lines) logs carrying the request id of the request that wrote them."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


# uvicorn (and the websockets library it drives) log each socket's handshake, open and close on
# ``uvicorn.error`` at INFO; the app logs one line per connection itself.
WEBSOCKET_LOGGER = "uvicorn.websocket"
_WEBSOCKET_MESSAGES = ("connection open", "connection closed")


class WebSocketChatter(logging.Filter):
    """Moves uvicorn's per-WebSocket INFO lines to ``uvicorn.websocket`` at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a WebSocket line; keep it only when that logger is enabled for DEBUG."""
        message = str(record.msg)
        if record.levelno != logging.INFO or not (
            message in _WEBSOCKET_MESSAGES or message.startswith('%s - "WebSocket ')
        ):
            return True
        record.name = WEBSOCKET_LOGGER
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(WEBSOCKET_LOGGER).isEnabledFor(logging.DEBUG)


def configure_logging(level: str = "INFO") -> None:
    """Send JSON logs to stderr; quiet uvicorn's per-WebSocket lines (see WebSocketChatter)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, WebSocketChatter) for f in server_log.filters):
        server_log.addFilter(WebSocketChatter())
