"""The one bundle of process-wide services, shared by requests and background jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.eventbus import EventBus
from debtgraph.domain.core.outbox import JobQueue
from debtgraph.domain.core.throttle import Throttle

SettingsT = TypeVar("SettingsT")


@dataclass
class Services(Generic[SettingsT]):
    """Process-wide collaborators, wired once by the composition root (server).

    The same instance serves requests (``Context.services``) and jobs (their context's
    ``"services"``). It is generic in its settings because the domain may not import
    ``debtgraph.settings``: the composition root builds a ``Services[Settings]``, and code above the
    domain reads the settings fully typed.
    """

    settings: SettingsT
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    bus: EventBus
    jobs: JobQueue
    clock: Clock
    throttle: Throttle
    # Ports added by later areas (VOP provider, SEPA gateway, …) register here by name.
    ports: dict[str, Any] = field(default_factory=dict)
