"""The VOP step inside ingestion: its decline lookup outlives no caller, chunks fit the lease."""

from __future__ import annotations

import asyncio

import pytest

from debtgraph.domain.payments.providers import HttpVopProvider
from debtgraph.domain.payments.verification import settle
from debtgraph.domain.payments.vop import SandboxVopProvider
from debtgraph.jobs.uploads import CHUNK_ROWS, chunk_rows


async def test_a_cancelled_caller_waits_for_its_lookup_before_unwinding() -> None:
    finished: list[bool] = []

    async def lookup() -> set[str]:
        await asyncio.sleep(0.05)
        finished.append(True)
        return set()

    inner = asyncio.ensure_future(lookup())
    outer = asyncio.ensure_future(settle(inner))
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    # The cancellation reached the caller only once the lookup (on its session) was over.
    assert inner.done()
    assert finished == [True]


async def test_a_failed_lookup_does_not_mask_the_callers_error() -> None:
    async def lookup() -> set[str]:
        raise ValueError("lookup failed")

    inner = asyncio.ensure_future(lookup())
    await settle(inner)  # the caller's own error is the one that propagates
    assert isinstance(inner.exception(), ValueError)


def test_chunks_hold_two_remote_calls_at_most() -> None:
    assert chunk_rows(SandboxVopProvider()) == CHUNK_ROWS
    assert chunk_rows(HttpVopProvider("http://vop.test", batch_size=500)) == 1000
    assert chunk_rows(HttpVopProvider("http://vop.test", batch_size=50_000)) == CHUNK_ROWS
