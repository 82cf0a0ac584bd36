"""Live event streams for subscriptions: one dispatcher per process, fanning each event out.

The cost of an event does not grow with its subscribers (DESIGN.md "Subscriptions"). One
:class:`Dispatcher` per process reads the bus once. For each event it picks the subscriptions
whose topic wants it (an in-memory test) and hands them, grouped by audience, to that
audience's lane: a task of its own with a bounded queue of events, so that an audience whose
subscriptions cost much to render falls behind alone. Past :data:`LANE_SIZE` events waiting,
its subscriptions are closed as too slow (:data:`SLOW_CLOSE_CODE`, and a warning logged);
before lanes, the one reader rendered for everyone in turn, and the bus dropped the oldest
events of every subscriber once it fell 1,000 behind. Each lane, in one unit of work for the
event:

- checks each distinct credential once (token revoked or expired, operator logged out,
  creditor suspended or deleted, API key revoked: that credential's streams end with
  :data:`REVOKED_CLOSE_CODE`);
- authorises and loads the node once per (topic, audience) — the audience being every
  operator, one platform with its scopes, or one creditor with its scopes
  (``permissions.event_audience``) — with that audience's reach, so it sees the object as it
  is after this event;
- hands the result to every matching subscription's bounded queue without waiting. A
  subscription whose queue is full (its client stopped reading) is dropped and its socket
  closed with :data:`SLOW_CLOSE_CODE`; the others never wait for it.

A face may take over the last step for a subscription (:class:`Sink`, found in :data:`SINK`
when the stream starts): the dispatcher then has the face render each result once per
(selection, audience), into what goes on the wire, and the subscription's own loop only writes
that out. A thousand identical subscriptions cost one rendering and a thousand writes, not a
thousand executions.

The dispatcher also re-checks every subscription's credentials every
``subscription_recheck_seconds`` (once per distinct credential, as for an event), so a revoked
stream ends even when no event comes. A subscription's own loop only waits on its queue: no
timer per subscription and event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from debtgraph.domain.core import outbox
from debtgraph.domain.core.errors import FieldError
from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.domain.core.events import CATALOGUE
from debtgraph.domain.core.tasks import cancel_and_wait
from debtgraph.resolvers.auth import principal_is_live
from debtgraph.resolvers.context import AppServices, Context, UnitOfWork
from debtgraph.resolvers.errors import InputError, Unauthenticated
from debtgraph.resolvers.permissions import event_audience, event_visible, require_principal
from debtgraph.resolvers.principal import Principal

log = logging.getLogger(__name__)

# Like HTTP 401 in the 4000-4999 range graphql-transport-ws leaves to applications (4401 is
# also what the protocol uses for "Unauthorized").
REVOKED_CLOSE_CODE = 4401
REVOKED_REASON = "Unauthorized: the credentials of this connection no longer work"
# Like HTTP 408: the client did not read its events in time (its queue filled up).
SLOW_CLOSE_CODE = 4408
SLOW_REASON = "Too slow: the client did not keep up with its events"
_CLOSE_GRACE_SECONDS = 30
_PORT = "events.dispatcher"
# Events an audience's lane may hold waiting: what the bus held for the one reader before lanes
# (eventbus._Fanout), so a burst (an upload's progress, a billing run) fits as it did.
LANE_SIZE = 1000

Load = Callable[[Context, BusMessage], Awaitable[Any]]


@dataclass(frozen=True)
class Topic:
    """What one subscription listens to.

    ``name`` keys the shared load: subscriptions of one audience whose topics share a name get
    the same loaded result for an event. ``match`` is the per-subscription argument filter and
    must not touch the database; ``load`` authorises and loads once per audience and returns
    None when the audience may not see the event.
    """

    name: str
    types: frozenset[str]
    load: Load
    match: Callable[[BusMessage], bool] = lambda _message: True
    # A per-subscription filter on the loaded result (in memory), for arguments the event
    # itself does not carry.
    keep: Callable[[Any], bool] = lambda _result: True
    # For a topic that loads the object as it is now: deliver it only while it still shows the
    # change the event reports (see ``shows_change``).
    current_only: bool = False


async def _superseded(ctx: Context, message: BusMessage, types: Collection[str]) -> bool:
    """Whether a later event of the topic's types about the same object was recorded.

    Asked only of an event its row no longer shows: a row may also change without an event
    (billing refusing a newly blacklisted debtor in bulk), and then this event is the last one
    there will be, to be delivered with the row as it is, or the subscriber never sees it.
    """
    async with ctx.uow.reading() as conn:
        return await outbox.later_event_exists(conn, message, types)


def shows_change(loaded: object, message: BusMessage) -> bool:
    """Whether an object loaded for an event still shows what the event says changed.

    The dispatcher loads the row when it handles the event, which may be after later changes
    of the same row committed: rendered then, the event for ``in_process`` showed ``disputed``,
    and the later event showed it again (review, under load). Such an event is not delivered
    when a later event of the object is on its way (``_superseded``), which delivers the row as
    it is. Compared: each attribute the event names as changed (its ``previous_attributes``;
    for a creation, the status), as the event's object gives it after the change.
    """
    data = message.data
    shown = data.get("object") or {}
    changed = tuple(data.get("previous_attributes") or ()) or ("status",)
    return all(
        getattr(loaded, name) == shown[name]
        for name in changed
        if name in shown and hasattr(loaded, name)
    )


class Sink(Protocol):
    """A face's direct line to one subscriber, for results it can render without the stream.

    ``render`` is called by the dispatcher once per event for all subscriptions of one audience
    whose sinks share a ``key``, with a context of that audience; what it returns (None: send
    nothing) goes to each of them in order: straight to ``write_now`` when nothing of that
    subscription is waiting, else through its bounded queue to ``send``.
    """

    @property
    def key(self) -> Hashable:
        """Sinks with equal keys render a result identically for one audience."""
        ...

    async def render(self, ctx: Context, result: Any) -> Any: ...

    def write_now(self, rendered: Any) -> bool:
        """Start writing without waiting; False when an earlier write is still under way."""
        ...

    async def send(self, rendered: Any) -> None:
        """Write after any earlier write."""
        ...


# Set by a face in the task that runs a subscription, before its stream starts: that stream's
# results then go to the sink instead of being yielded.
SINK: ContextVar[Sink | None] = ContextVar("debtgraph_event_sink", default=None)


@dataclass(eq=False)
class _Subscription:
    principal: Principal
    topic: Topic
    queue: asyncio.Queue[Any]
    end_stream: Callable[[int, str], Awaitable[None]] | None
    sink: Sink | None = None
    # Results queued for the sink and not yet written: while any are, a new one queues too.
    backlog: int = 0
    # Set once the dispatcher dropped it: (close code, reason).
    ended: tuple[int, str] | None = None
    credential: tuple[object, ...] = field(init=False)
    audience: tuple[object, ...] = field(init=False)

    def __post_init__(self) -> None:
        p = self.principal
        self.credential = (p.kind, p.token_id, p.user_id, p.platform_id)
        self.audience = event_audience(p)


@dataclass(eq=False)
class _Lane:
    """One audience's events, delivered in order by a task of its own (see the module)."""

    queue: asyncio.Queue[Any]
    members: set[_Subscription] = field(default_factory=set)
    # Set once its last subscription is gone: it ends when what it holds is drained (it is
    # never cancelled mid-event, which would cut a unit of work short).
    closed: bool = False


_LANE_END = object()


_WAKE = object()


class _Memos:
    """Memos shared by every subscriber handed the same delivered value.

    A face keeps there what it derives from a value once for all its subscribers (the shaped
    node, an executed and serialised result). Keyed by ``id``: each entry holds its value, so
    the id cannot be reused while the entry lives; the oldest entries are forgotten, and a
    subscriber that reads a value after that just derives it again.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[Any, dict[Any, Any]]] = OrderedDict()

    def open(self, value: Any) -> dict[Any, Any]:
        """A fresh memo for a value about to be delivered."""
        memo: dict[Any, Any] = {}
        self.link(value, memo)
        return memo

    def link(self, value: Any, memo: dict[Any, Any]) -> None:
        """Make ``value`` (derived from a delivered one) find the same memo."""
        self._entries[id(value)] = (value, memo)
        self._entries.move_to_end(id(value))
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def get(self, value: Any) -> dict[Any, Any] | None:
        entry = self._entries.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else None


_MEMOS = _Memos(4096)


def shared_memo(value: Any) -> dict[Any, Any] | None:
    """The memo every subscriber handed this very value shares; None for any other value."""
    return _MEMOS.get(value)


def share_memo(derived: Any, memo: dict[Any, Any]) -> None:
    """Let a value derived from a delivered one (a shaped node) find the delivery's memo."""
    _MEMOS.link(derived, memo)


class Dispatcher:
    """The process's one reader of the bus, handing each event to its subscriptions."""

    def __init__(self, services: AppServices) -> None:
        self._services = services
        self._by_type: dict[str, set[_Subscription]] = {}
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._rechecking: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._lanes: dict[tuple[object, ...], _Lane] = {}
        # The lanes' tasks, held here: the loop keeps only weak references to tasks.
        self._draining: set[asyncio.Task[None]] = set()

    @property
    def subscribers(self) -> int:
        """Live subscriptions in this process."""
        return self._count

    async def start(self) -> None:
        """Subscribe to the bus (once); returns when the subscription is in place."""
        if self._task is None or self._task.done():
            stream = self._services.bus.subscribe()
            # The first step registers the bus queue; it runs before this caller resumes, so
            # no event slips past. Nothing is awaited before _task is set: concurrent first
            # subscribers must not start a second reader.
            first: asyncio.Future[BusMessage] = asyncio.ensure_future(anext(stream))  # type: ignore[arg-type]
            self._task = asyncio.create_task(self._run(stream, first), name="event-dispatcher")
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.create_task(self._recheck_loop(), name="event-recheck")
        await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop reading the bus."""
        lanes = list(self._draining)
        self._lanes.clear()
        try:
            await cancel_and_wait(self._task, self._rechecking, *lanes)
        finally:
            self._task = self._rechecking = None

    def add(
        self, ctx: Context, principal: Principal, topic: Topic, sink: Sink | None = None
    ) -> _Subscription:
        """Register a subscription with its bounded queue."""
        sub = _Subscription(
            principal,
            topic,
            asyncio.Queue(max(ctx.settings.ws_subscriber_queue_size, 1)),
            ctx.end_stream,
            sink,
        )
        for type_ in topic.types:
            self._by_type.setdefault(type_, set()).add(sub)
        self._count += 1
        lane = self._lanes.get(sub.audience)
        if lane is None:
            lane = self._lanes[sub.audience] = _Lane(asyncio.Queue(LANE_SIZE))
            task = asyncio.create_task(self._drain(lane), name="event-lane")
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)
        lane.members.add(sub)
        return sub

    def remove(self, sub: _Subscription) -> None:
        """Forget a subscription (idempotent)."""
        removed = False
        for type_ in sub.topic.types:
            subs = self._by_type.get(type_)
            if subs is not None and sub in subs:
                subs.discard(sub)
                removed = True
                if not subs:
                    del self._by_type[type_]
        if removed:
            self._count -= 1
        lane = self._lanes.get(sub.audience)
        if lane is not None and sub in lane.members:
            lane.members.discard(sub)
            if not lane.members:
                # Its last subscription gone: what it holds is for nobody, and it ends.
                del self._lanes[sub.audience]
                lane.closed = True
                with contextlib.suppress(asyncio.QueueFull):
                    lane.queue.put_nowait(_LANE_END)  # a full lane ends once drained

    async def _run(self, stream: AsyncIterator[BusMessage], first: Awaitable[BusMessage]) -> None:
        try:
            message = await first
            while True:
                try:
                    await self.dispatch(message)
                except Exception:
                    # One bad event must not end live updates for the whole process.
                    log.exception("dispatching event %s failed", message.id)
                message = await anext(stream)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    async def _recheck_loop(self) -> None:
        interval = max(self._services.settings.subscription_recheck_seconds, 1)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.recheck()
            except Exception:
                # A database hiccup must not end the re-checks for good; the next tick retries.
                log.exception("re-checking subscription credentials failed")

    async def recheck(self) -> None:
        """End every subscription whose credentials stopped working (one check per credential)."""
        subs = {sub for group in self._by_type.values() for sub in group}
        if not subs:
            return
        uow = UnitOfWork(self._services)
        live: dict[tuple[object, ...], bool] = {}
        try:
            for sub in subs:
                if sub.credential not in live:
                    live[sub.credential] = await _is_live(self._services, uow, sub.principal)
                if not live[sub.credential]:
                    self._end(sub, REVOKED_CLOSE_CODE, REVOKED_REASON)
        finally:
            await uow.end()

    async def dispatch(self, message: BusMessage) -> None:
        """Hand one event to the lane of each audience with a subscription that wants it."""
        candidates = self._by_type.get(message.type)
        if not candidates:
            return
        grouped: dict[tuple[object, ...], list[_Subscription]] = {}
        for sub in list(candidates):
            if sub.topic.match(message):
                grouped.setdefault(sub.audience, []).append(sub)
        for audience, subs in grouped.items():
            lane = self._lanes.get(audience)
            if lane is None:
                continue  # its subscriptions ended meanwhile
            try:
                lane.queue.put_nowait((message, subs))
            except asyncio.QueueFull:
                log.warning(
                    "%d live events wait for one %s audience: its %d subscriptions are closed"
                    " as too slow",
                    LANE_SIZE,
                    audience[0],
                    len(lane.members),
                )
                for member in list(lane.members):
                    self._end(member, SLOW_CLOSE_CODE, SLOW_REASON)

    async def _drain(self, lane: _Lane) -> None:
        while not (lane.closed and lane.queue.empty()):
            item = await lane.queue.get()
            if item is _LANE_END:
                continue
            message, subs = item
            standing = [sub for sub in subs if sub.ended is None]
            if not standing:
                continue
            try:
                await self._deliver(message, standing)
            except Exception:
                # One bad event must not end live updates for the audience.
                log.exception("dispatching event %s failed", message.id)

    async def _deliver(self, message: BusMessage, subs: list[_Subscription]) -> None:
        """Hand one event to these subscriptions of one audience that may see it."""
        uow = UnitOfWork(self._services)
        live: dict[tuple[object, ...], bool] = {}
        contexts: dict[tuple[object, ...], Context] = {}
        results: dict[tuple[object, ...], Any] = {}
        rendered: dict[tuple[object, ...], Any] = {}
        memos: set[int] = set()
        try:
            for sub in subs:
                if sub.credential not in live:
                    live[sub.credential] = await _is_live(self._services, uow, sub.principal)
                if not live[sub.credential]:
                    self._end(sub, REVOKED_CLOSE_CODE, REVOKED_REASON)
                    continue
                audience = sub.audience
                key = (sub.topic.name, *audience)
                if key not in results:
                    ctx = contexts.get(audience)
                    if ctx is None:
                        ctx = Context(services=self._services, uow=uow, principal=sub.principal)
                        contexts[audience] = ctx
                    try:
                        loaded = await sub.topic.load(ctx, message)
                        if (
                            sub.topic.current_only
                            and loaded is not None
                            and not shows_change(loaded, message)
                            and await _superseded(ctx, message, sub.topic.types)
                        ):
                            loaded = None
                        results[key] = loaded
                    except Exception:
                        # One topic failing to load must not keep the event from the others.
                        log.exception("loading %s for event %s failed", sub.topic.name, message.id)
                        results[key] = None
                result = results[key]
                if result is None or not sub.topic.keep(result):
                    continue
                if id(result) not in memos:
                    memos.add(id(result))
                    _MEMOS.open(result)
                item = result
                if sub.sink is not None:
                    # One rendering per (selection, audience, result): a keep filter may have
                    # let only some subscriptions of the audience have this result.
                    render_key = (sub.sink.key, *key, id(result))
                    if render_key not in rendered:
                        try:
                            rendered[render_key] = await sub.sink.render(contexts[audience], result)
                        except Exception:
                            log.exception("rendering %s for event %s failed", key, message.id)
                            rendered[render_key] = None
                    item = rendered[render_key]
                    if item is None or sub.ended is not None:
                        continue  # nothing to show, or closed while it was rendered
                    # Written from here when the socket takes it at once: no task wakes up
                    # per subscriber. Otherwise queued behind what waits, in order.
                    if sub.backlog == 0 and sub.sink.write_now(item):
                        continue
                    sub.backlog += 1
                try:
                    sub.queue.put_nowait(item)
                except asyncio.QueueFull:
                    self._end(sub, SLOW_CLOSE_CODE, SLOW_REASON)
        finally:
            await uow.end()

    def _end(self, sub: _Subscription, code: int, reason: str) -> None:
        """Drop a subscription and close its socket, without waiting for the client."""
        self.remove(sub)
        if sub.ended is not None:
            return
        sub.ended = (code, reason)
        with contextlib.suppress(asyncio.QueueFull):
            sub.queue.put_nowait(_WAKE)
        if sub.end_stream is not None:
            task = asyncio.create_task(_close(sub.end_stream, code, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)


async def _is_live(services: AppServices, uow: UnitOfWork, principal: Principal) -> bool:
    """Whether ``principal``'s credentials still work: the one rule every stream is re-checked
    by, and every operation on a socket before it runs (``credentials_work``)."""
    probe = Context(services=services, uow=uow, principal=principal)
    return await principal_is_live(probe, principal)


async def credentials_work(ctx: Context) -> bool:
    """Whether the credentials a socket connected with still work (True for an anonymous one):
    asked before each operation on it, as HTTP authenticates each request, so a token revoked
    after ``connection_init`` runs nothing more there (PRODUCT.md §1). One lookup, in a unit
    of work of its own (the socket's may be in use by its other operations)."""
    if ctx.principal is None:
        return True
    uow = UnitOfWork(ctx.services)
    try:
        return await _is_live(ctx.services, uow, ctx.principal)
    finally:
        await uow.end()


async def end_revoked(ctx: Context) -> None:
    """Close the socket of ``ctx`` as a stream whose credentials stopped working is closed
    (:data:`REVOKED_CLOSE_CODE`, every operation of the socket ending with it)."""
    if ctx.end_stream is not None:
        await _close(ctx.end_stream, REVOKED_CLOSE_CODE, REVOKED_REASON)


async def _close(end_stream: Callable[[int, str], Awaitable[None]], code: int, reason: str) -> None:
    # The close frame waits behind what the client has not read yet; this task ends once the
    # client reads it or the connection is lost (nothing more is queued for it meanwhile).
    with contextlib.suppress(Exception):
        await end_stream(code, reason)


async def dispatcher_for(services: AppServices) -> Dispatcher:
    """The process's dispatcher, started on first use."""
    dispatcher = services.ports.get(_PORT)
    if dispatcher is None:
        dispatcher = Dispatcher(services)
        services.ports[_PORT] = dispatcher
    await dispatcher.start()
    return dispatcher  # type: ignore[no-any-return]


async def stop_dispatcher(services: AppServices) -> None:
    """Stop the process's dispatcher, if one started."""
    dispatcher = services.ports.pop(_PORT, None)
    if dispatcher is not None:
        await dispatcher.stop()


async def _ended(ctx: Context, code: int) -> None:
    """End a stream whose socket is being closed with ``code``."""
    await ctx.uow.close()
    if ctx.end_stream is not None:
        # The face cancels this stream once the peer has gone: write nothing to a closed socket.
        await asyncio.sleep(_CLOSE_GRACE_SECONDS)
    if code == REVOKED_CLOSE_CODE:
        raise Unauthenticated("The credentials of this subscription no longer work.")
    raise SlowSubscriber()


class SlowSubscriber(Exception):
    """A subscription dropped because its client did not keep up (no WebSocket to close)."""


async def stream(ctx: Context, topic: Topic) -> AsyncIterator[Any]:
    """The results of ``topic`` for the caller, for each event from now on, in order.

    The caller must already be checked for the topic (scopes, operator) by the use case. When
    the face set a :data:`SINK` for this task, the results go to it and nothing is yielded; the
    stream still re-checks the credentials and ends as any other.
    """
    principal = require_principal(ctx)
    # Taken once: a later stream run by this task (none today) must not write to this sink.
    sink = SINK.get()
    SINK.set(None)
    dispatcher = await dispatcher_for(ctx.services)
    # Hold no connection while waiting: a dashboard may idle for hours.
    await ctx.uow.close()
    sub = dispatcher.add(ctx, principal, topic, sink)
    try:
        while True:
            item = await sub.queue.get()
            if sub.ended is not None:
                await _ended(ctx, sub.ended[0])
            if item is _WAKE:
                continue
            if sink is not None:
                await sink.send(item)
                sub.backlog -= 1
                continue
            # Fresh loaders for the fields under the node: it must show this event's state.
            ctx.refresh()
            yield item
            await ctx.uow.close()
    finally:
        dispatcher.remove(sub)


# --- Topics --------------------------------------------------------------------------------------


async def _visible_message(ctx: Context, message: BusMessage) -> BusMessage | None:
    assert ctx.principal is not None
    async with ctx.uow.session() as session:
        visible = await event_visible(session, ctx.principal, message, ctx.clock.now())
    return message if visible else None


def event_types(types: Collection[str] | None) -> frozenset[str]:
    """The catalogued types asked for (all without a list); InputError names unknown ones."""
    if not types:
        return frozenset(CATALOGUE)
    unknown = sorted(set(types) - set(CATALOGUE))
    if unknown:
        raise InputError(
            [FieldError("types", "invalid", f"Unknown event type(s): {', '.join(unknown)}.")]
        )
    return frozenset(types)


async def watch(ctx: Context, types: Collection[str] | None = None) -> AsyncIterator[BusMessage]:
    """Every event the caller may see, optionally only of the given catalogued types."""
    require_principal(ctx)
    topic = Topic("events", event_types(types), _visible_message)
    async for message in stream(ctx, topic):
        yield message


def subscriber_count(services: AppServices) -> int:
    """Subscriptions registered with this process's dispatcher (tests wait on it)."""
    dispatcher = services.ports.get(_PORT)
    return dispatcher.subscribers if dispatcher is not None else 0
