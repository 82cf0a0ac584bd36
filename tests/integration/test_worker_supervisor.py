"""The worker supervisor lives and dies with its whole set of processes."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.conftest import REDIS_URL
from tests.integration.test_upload_ranges_processes import (
    _alive,
    _running,
    _started_children,
    _stop_set,
    _worker,
)

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="worker processes need REDIS_URL")


async def test_a_worker_process_killed_stops_the_set_and_the_supervisor_fails(
    migrated: str,
) -> None:
    supervisor = _worker(migrated, "--processes", "2")
    children: list[int] = []
    try:
        await _started_children(supervisor, children)
        victim, survivor = children
        os.kill(victim, signal.SIGKILL)
        for _ in range(600):
            if supervisor.poll() is not None:
                break
            await asyncio.sleep(0.1)
        # A half-strength set must not run on silently: the supervisor stops the survivor and
        # reports the failure, so the service manager restarts the whole set.
        assert supervisor.returncode == 1
        assert not _alive(survivor)
    finally:
        _stop_set(supervisor, children)


async def test_the_worker_processes_of_a_killed_supervisor_stop(migrated: str) -> None:
    supervisor = _worker(migrated, "--processes", "2")
    children: list[int] = []
    try:
        await _started_children(supervisor, children)
        # Killed outright, it forwards no signal: left running, its processes would serve the
        # queues unsupervised (and with stale code) beside whatever set replaces it.
        supervisor.kill()
        supervisor.wait(timeout=30)
        for _ in range(600):
            if not any(_running(pid) for pid in children):
                break
            await asyncio.sleep(0.1)
        assert [pid for pid in children if _running(pid)] == []
    finally:
        _stop_set(supervisor, children)
