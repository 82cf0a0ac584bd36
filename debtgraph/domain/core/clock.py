"""The injectable "now": production reads the system clock, tests move a frozen one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol


def event_time(value: datetime | None) -> str | None:
    """A UTC datetime as event payloads carry it (ISO 8601 ending in ``Z``, whole seconds)."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Clock(Protocol):
    """Source of the current time."""

    def now(self) -> datetime:
        """Current aware UTC datetime."""
        ...

    def today(self) -> date:
        """Current UTC date."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current aware UTC datetime."""
        return datetime.now(UTC)

    def today(self) -> date:
        """Current UTC date."""
        return self.now().date()


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """The frozen instant."""
        return self._at

    def today(self) -> date:
        """The frozen date."""
        return self._at.date()

    def advance(self, delta: timedelta) -> None:
        """Move time forward."""
        self._at += delta

    def set(self, at: datetime) -> None:
        """Jump to an instant."""
        self._at = at.astimezone(UTC)
