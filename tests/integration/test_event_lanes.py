"""Each audience's events go through a lane of its own (outside review).

One creditor's subscriptions, costly to render, held the process's one event reader: every
other subscriber waited behind them, and once the bus held 1,000 events the oldest were dropped
for everyone, without a word. Here the rendering of one audience is held still; the others get
every event at once, and the held audience's subscriptions are closed as too slow once its
lane is full, with a warning logged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Hashable
from typing import Any

import pytest

from debtgraph.domain.core.eventbus import BusMessage
from debtgraph.resolvers import events
from debtgraph.resolvers.context import Context, UnitOfWork
from debtgraph.resolvers.principal import Principal, PrincipalKind

_IDS = itertools.count(1)


class _Sink:
    """A subscriber's socket: what it was written, and a rendering that may be held."""

    def __init__(self, held: asyncio.Event | None = None) -> None:
        self.held = held
        self.written: list[Any] = []

    @property
    def key(self) -> Hashable:
        return id(self)

    async def render(self, ctx: Context, result: Any) -> Any:
        if self.held is not None:
            await self.held.wait()
        return result.id

    def write_now(self, rendered: Any) -> bool:
        self.written.append(rendered)
        return True

    async def send(self, rendered: Any) -> None:
        self.written.append(rendered)


async def _load(_ctx: Context, message: BusMessage) -> BusMessage:
    return message


def _message() -> BusMessage:
    return BusMessage(str(next(_IDS)), "upload.updated", "upload", "1", None, None, 0)


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


async def test_an_audience_slow_to_render_delays_no_other_and_is_closed_alone(
    runtime: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(events, "LANE_SIZE", 4)

    async def live(*_args: Any) -> bool:
        return True  # the credentials are not what this test is about

    monkeypatch.setattr(events, "_is_live", live)
    services = runtime.services
    ctx = Context(services=services, uow=UnitOfWork(services))
    dispatcher = await events.dispatcher_for(services)
    topic = events.Topic("lanes", frozenset({"upload.updated"}), _load)
    operator = Principal(PrincipalKind.OPERATOR, user_id=1, token_id=1)
    creditor = Principal(PrincipalKind.CREDITOR, user_id=2, token_id=2)
    held = asyncio.Event()
    slow, fast = _Sink(held), _Sink()
    slow_sub = dispatcher.add(ctx, creditor, topic, slow)
    fast_sub = dispatcher.add(ctx, operator, topic, fast)
    try:
        sent = [_message() for _ in range(10)]
        with caplog.at_level(logging.WARNING, logger="debtgraph.resolvers.events"):
            for message in sent:
                await dispatcher.dispatch(message)
                await asyncio.sleep(0)
            # The operator got every event while the creditor's rendering was held, in order.
            await _until(lambda: len(fast.written) == len(sent))
        assert fast.written == [m.id for m in sent]
        assert slow.written == []
        # Past its lane's size, the held audience was closed as too slow, and said so.
        assert slow_sub.ended == (events.SLOW_CLOSE_CODE, events.SLOW_REASON)
        assert fast_sub.ended is None
        assert "its 1 subscriptions are closed as too slow" in caplog.text
        held.set()
        await asyncio.sleep(0.05)
        assert slow.written == []  # nothing rendered for it goes out once it is closed
    finally:
        held.set()
        dispatcher.remove(slow_sub)
        dispatcher.remove(fast_sub)
