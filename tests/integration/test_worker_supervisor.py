"""The worker supervisor lives and dies with its whole set of processes."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.conftest import REDIS_URL
from tests.integration.test_upload_ranges_processes import _alive, _worker, _worker_children

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="worker processes need REDIS_URL")


async def test_a_worker_process_killed_stops_the_set_and_the_supervisor_fails(
    migrated: str,
) -> None:
    supervisor = _worker(migrated, "--processes", "2")
    try:
        children: list[int] = []
        for _ in range(600):
            children = _worker_children(supervisor.pid)
            if len(children) == 2:
                break
            assert supervisor.poll() is None
            await asyncio.sleep(0.1)
        assert len(children) == 2
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
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=30)
