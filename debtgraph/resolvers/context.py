"""The transport-free request context: one unit of work, the caller, loaders, clock, settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from debtgraph.domain.core import outbox
from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.database import read_connection, server_closed
from debtgraph.domain.core.services import Services
from debtgraph.resolvers.loaders import Loaders
from debtgraph.resolvers.principal import Principal
from debtgraph.settings import Settings

# Requests read the settings typed; jobs get the same instance (the domain cannot name Settings).
AppServices: TypeAlias = Services[Settings]


_WROTE = "debtgraph.wrote"


def _track_writes(session: AsyncSession) -> None:
    """Mark the session once it runs an INSERT, UPDATE or DELETE (ORM flush or statement)."""

    def on_execute(state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            state.session.info[_WROTE] = True

    def on_flush(flushed: Session, _context: Any) -> None:
        flushed.info[_WROTE] = True

    event.listen(session.sync_session, "do_orm_execute", on_execute)
    event.listen(session.sync_session, "after_flush", on_flush)


def _has_writes(session: AsyncSession) -> bool:
    """Whether the open transaction wrote anything (or holds changes not flushed yet)."""
    return bool(
        session.info.get(_WROTE)
        or session.new
        or session.dirty
        or session.deleted
        or outbox.has_pending(session)
    )


class UnitOfWork:
    """One session per request, serialised by a lock because GraphQL resolves siblings at once.

    Never await a dataloader while holding the lock: its batch function takes the lock too.
    """

    def __init__(self, services: AppServices) -> None:
        self._services = services
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._ended = False
        # Reads waiting for the lock, and the read connection (with what returns it to the pool)
        # the last read handed them (see reading).
        self._readers = 0
        self._passed: tuple[AsyncConnection, AsyncExitStack] | None = None
        self._returning: set[asyncio.Task[None]] = set()
        # Counts the commits and rollbacks: reads cached before one (Context.loaders) may no
        # longer be what the database holds, or may show writes that are gone.
        self.generation = 0

    @asynccontextmanager
    async def session(
        self, *, keep_changes_on: tuple[type[Exception], ...] = ()
    ) -> AsyncIterator[AsyncSession]:
        """Exclusive use of the request's session.

        An exception leaving the block rolls back what was written since the last commit, unless
        it is one of ``keep_changes_on``: a refusal whose own writes must stand (a replayed OAuth
        code revokes its tokens), which the use case then commits itself.
        """
        async with self._lock:
            if self._ended:
                raise RuntimeError("the request is over: no session after UnitOfWork.end()")
            await self._return_passed()
            if self._session is None:
                self._session = self._services.session_factory()
                _track_writes(self._session)
            try:
                yield self._session
            except keep_changes_on:
                raise
            except Exception:
                # A use case refused or failed part-way: what it wrote (and the events and jobs
                # it queued) must not ride on the next commit of this unit of work, such as a
                # later mutation of the same GraphQL document. A read that failed (a NotFound)
                # rolls nothing back: rolling back expires every loaded row, which sibling
                # resolvers of the same query may still be reading.
                if _has_writes(self._session):
                    await self._discard(self._session)
                raise

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads of one statement each (Core, no ORM objects).

        Inside the transaction when this unit of work has one open (the read then sees what it
        wrote); otherwise a connection of its own outside any transaction, which saves a
        read-only request its BEGIN and ROLLBACK round trips. It goes back to the pool at the end
        of the block, unless another read already waits for its turn: that read gets it (the
        edges of one level of a query are read one after another), a checkout and return saved.
        It is never held while no read runs or waits: whoever takes the lock next and does not
        read returns it, and so does a waiting read that is cancelled.
        """
        self._readers += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._readers -= 1
            if not self._readers and self._passed is not None:
                self._return_passed_soon()
            raise
        self._readers -= 1
        try:
            if self._ended:
                raise RuntimeError("the request is over: no session after UnitOfWork.end()")
            if self._session is not None and self._session.in_transaction():
                await self._return_passed()
                yield await self._session.connection()
                return
            conn, stack = await self._take_passed()
            if conn is None:
                conn = await stack.enter_async_context(read_connection(self._services.engine))
            answered = False
            try:
                yield conn
                answered = True
            finally:
                if answered and self._readers and not self._ended:
                    self._passed = (conn, stack)
                else:
                    await stack.aclose()
        finally:
            self._lock.release()

    async def _take_passed(self) -> tuple[AsyncConnection | None, AsyncExitStack]:
        """The read connection the last read left and what returns it, unless the server closed
        it since (the pool's checkout refuses such a connection; one handed on is never checked
        out): then none, and an empty stack for a fresh one."""
        passed, self._passed = self._passed, None
        if passed is None:
            return None, AsyncExitStack()
        conn, stack = passed
        if server_closed(await conn.get_raw_connection()):
            await conn.invalidate()
            await stack.aclose()
            return None, AsyncExitStack()
        return conn, stack

    async def _return_passed(self) -> None:
        """Return the read connection left for a read to the pool (the lock held)."""
        passed, self._passed = self._passed, None
        if passed is not None:
            await passed[1].aclose()

    def _return_passed_soon(self) -> None:
        """Return the connection left for a read that was cancelled while it waited, once the
        lock is free (a cancelled task cannot wait for it)."""

        async def give_back() -> None:
            async with self._lock:
                if not self._readers:
                    await self._return_passed()

        task = asyncio.get_running_loop().create_task(give_back())
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def commit(self) -> None:
        """Commit once, then queue jobs and publish the transaction's events."""
        async with self._lock:
            if self._session is None:
                return
            services = self._services
            await outbox.commit_and_publish(
                self._session, services.jobs, services.bus, services.clock
            )
            self._session.info.pop(_WROTE, None)
            self.generation += 1

    async def rollback(self) -> None:
        """Drop everything written since the last commit."""
        async with self._lock:
            if self._session is not None:
                await self._discard(self._session)

    async def _discard(self, session: AsyncSession) -> None:
        """Roll back what ``session`` wrote and the events and jobs it queued (the lock held)."""
        outbox.discard_pending(session)
        await session.rollback()
        session.info.pop(_WROTE, None)
        self.generation += 1

    async def end(self) -> None:
        """Close for good when the request is over.

        graphql-core answers as soon as a non-null field fails, and a sibling resolver it left
        running may reach for the session afterwards: it must not open one that nobody closes
        (each would hold a pool connection until garbage collection).
        """
        self._ended = True
        await self.close()

    async def close(self) -> None:
        """Roll back anything uncommitted and release the connection."""
        async with self._lock:
            await self._return_passed()
            if self._session is not None:
                outbox.discard_pending(self._session)
                await self._session.close()
                self._session = None


@dataclass
class Context:
    """Everything a use case needs, built once per request by either face."""

    services: AppServices
    uow: UnitOfWork
    principal: Principal | None = None
    client_ip: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Filled by Strawberry's WebSocket handlers with the connection_init payload.
    connection_params: dict[str, Any] | None = None
    # Fresh per request, and after each commit or rollback of its unit of work (``loaders``).
    _loaders: Loaders = field(init=False, repr=False)
    _generation: int = field(init=False, repr=False)
    # ``scheme://host[:port]`` the request came to (after trusted proxies' headers), for links.
    base_url: str = ""
    # Set by a WebSocket face: closes the connection with a close code and reason (a stream
    # whose credentials stopped working ends this way).
    end_stream: Callable[[int, str], Awaitable[None]] | None = None
    # The scopes the request's checks asked of its caller (permissions.require_scope): kept
    # with an idempotent answer, a replay asks them again of the caller it is replayed to.
    required_scopes: set[str] = field(default_factory=set)
    # The creditors the request reached, each with its kind of object and the scope of the
    # reach (permissions.note_reach): a replay checks the caller still reaches them.
    reached: set[tuple[str, int, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._loaders = Loaders(self.uow)
        self._generation = self.uow.generation

    @property
    def loaders(self) -> Loaders:
        """The request's dataloaders: what they cached is forgotten once the unit of work
        commits or rolls back, so a read after a write sees it (the second mutation of a
        document reading the pages the first one's payload read; a use case writing what it
        had read). Checked here, not told by the unit of work: contexts may share one."""
        if self._generation != self.uow.generation:
            self.refresh()
        return self._loaders

    @property
    def clock(self) -> Clock:
        """The injectable clock."""
        return self.services.clock

    @property
    def settings(self) -> Settings:
        """The process settings."""
        return self.services.settings

    @property
    def public_base_url(self) -> str:
        """Base of the links we hand out: PUBLIC_BASE_URL when set, else where the request came."""
        return self.settings.public_base_url or self.base_url

    def refresh(self) -> None:
        """Forget cached loads (between subscription events, which outlive one request)."""
        self._loaders.clear()
        self._loaders = Loaders(self.uow)
        self._generation = self.uow.generation

    @classmethod
    def create(
        cls, services: AppServices, *, client_ip: str = "", request_id: str | None = None
    ) -> Context:
        """A fresh context with its own unit of work."""
        return cls(
            services=services,
            uow=UnitOfWork(services),
            client_ip=client_ip,
            request_id=request_id or uuid.uuid4().hex,
        )
