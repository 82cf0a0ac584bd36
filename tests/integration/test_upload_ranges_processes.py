"""Real `debtgraph worker` processes: one killed mid-range, another takes the range over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from debtgraph.domain.core.clock import SystemClock
from debtgraph.domain.core.database import create_engine, session_factory
from debtgraph.domain.debtors.models import Debtor, Upload, UploadRange
from debtgraph.jobs.queue import ArqJobQueue
from tests.conftest import REDIS_URL
from tests.integration.uploads_support import queued_upload

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="worker processes need REDIS_URL")

ROWS = 24_000
RANGE_ROWS = 12_000


def _worker(database_url: str, *options: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL or "",
        "UPLOAD_RANGE_LEASE_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "debtgraph.server.cli", "worker", *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_worker_killed_mid_range_is_taken_over_without_duplicates(
    migrated: str, tmp_path: Path
) -> None:
    from redis import asyncio as aioredis

    engine = create_engine(migrated)
    factory = session_factory(engine)
    clock = SystemClock()
    upload_id = await queued_upload(factory, clock, tmp_path / "stored.csv", ROWS, RANGE_ROWS)
    queue = ArqJobQueue(REDIS_URL or "")
    first = _worker(migrated)
    second = None
    try:
        await queue.enqueue("uploads.ingest", upload_id)
        stored = 0
        async with factory() as session:
            for _ in range(1200):
                stored = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(Debtor)
                        .where(Debtor.upload_id == upload_id)
                    )
                    or 0
                )
                await session.commit()
                if stored:
                    break
                assert first.poll() is None
                await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        async with factory() as session:
            # Lane jobs queued in the same millisecond are taken in arq's (random) id order:
            # the killed worker held whichever range it had claimed, not necessarily range 0.
            held = await session.scalar(
                select(UploadRange).where(
                    UploadRange.upload_id == upload_id, UploadRange.status == "running"
                )
            )
            at_kill = await session.scalar(
                select(func.count()).select_from(Debtor).where(Debtor.upload_id == upload_id)
            )
        assert held is not None
        # Killed in the middle of its first range: some chunks stored, the range not closed.
        assert held.status == "running"
        assert 0 < int(at_kill or 0) < RANGE_ROWS
        # Nothing may store rows or renew the claim now: if something does, the range is held
        # by another worker serving this Redis db (one left over by an earlier run), and what
        # follows would test that worker, not the takeover.
        await asyncio.sleep(1.0)
        async with factory() as session:
            renewed = await session.scalar(
                select(UploadRange.heartbeat_at).where(UploadRange.id == held.id)
            )
            later = await session.scalar(
                select(func.count()).select_from(Debtor).where(Debtor.upload_id == upload_id)
            )
        assert (renewed, later) == (held.heartbeat_at, at_kill), "another worker holds the range"

        second = _worker(migrated)
        done = None
        for tick in range(1800):
            async with factory() as session:
                done = await session.get(Upload, upload_id)
            if done is not None and done.status == "completed":
                break
            assert second.poll() is None
            if tick % 60 == 59:
                # What the cron does every five minutes: queue stalled ranges again.
                await queue.enqueue("uploads.resume")
            await asyncio.sleep(0.1)
        assert done is not None
        assert done.status == "completed"
        async with factory() as session:
            total = await session.scalar(
                select(func.count()).select_from(Debtor).where(Debtor.upload_id == upload_id)
            )
            distinct = await session.scalar(
                select(func.count(func.distinct(Debtor.row_number))).where(
                    Debtor.upload_id == upload_id
                )
            )
            spans = list(
                (
                    await session.scalars(
                        select(UploadRange)
                        .where(UploadRange.upload_id == upload_id)
                        .order_by(UploadRange.position)
                    )
                ).all()
            )
        assert (total, distinct) == (ROWS, ROWS)
        assert (done.processed_records, done.failed_records) == (ROWS * 9 // 10, ROWS // 10)
        assert [s.status for s in spans] == ["done", "done"]
        # The held range was claimed twice: by the killed worker, then taken over by the other.
        assert spans[held.position].attempts == 2
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        await queue.close()
        client = aioredis.Redis.from_url(REDIS_URL or "")
        await client.flushdb()  # the killed worker's job is still queued in arq
        await client.aclose()
        async with factory() as session:
            await session.execute(delete(Upload).where(Upload.id == upload_id))
            await session.commit()
        await engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _worker_children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [
        int(child)
        for child in found
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _running(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_worker_process(pid: int) -> None:
    """SIGKILL ``pid`` if it is still a running worker process (not a reused pid)."""
    with contextlib.suppress(OSError):
        if _running(pid) and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def _stop_set(supervisor: subprocess.Popen[str], children: list[int]) -> None:
    """Leave no worker process behind: one left running would take the jobs of every later
    test on this Redis (a SIGKILLed supervisor forwards nothing to its children)."""
    if supervisor.poll() is None:
        supervisor.kill()
        supervisor.wait(timeout=30)
    for pid in children:
        _kill_worker_process(pid)


async def _started_children(
    supervisor: subprocess.Popen[str], children: list[int], count: int = 2
) -> None:
    """Wait until the supervisor has ``count`` worker processes (it must stay up), keeping in
    ``children`` those seen so far: a caller that fails here still kills every one it saw."""
    for _ in range(600):
        seen = _worker_children(supervisor.pid)
        children.extend(pid for pid in seen if pid not in children)
        if len(seen) == count:
            break
        assert supervisor.poll() is None
        await asyncio.sleep(0.1)
    assert len(_worker_children(supervisor.pid)) == count


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_while_the_worker_processes_start_is_a_clean_stop(
    migrated: str, signum: signal.Signals
) -> None:
    """A stop that reaches a worker process before its handlers are in place kills it (the
    supervisor sends SIGTERM, whichever signal it got: Python's own SIGINT handler made such a
    process exit 1, like a crash). It had taken no job, so the supervisor reports the stop it
    was asked for (exit 0), not a failed set that a service manager would log and restart."""
    supervisor = _worker(migrated, "--processes", "2")
    children: list[int] = []
    try:
        await _started_children(supervisor, children)
        supervisor.send_signal(signum)
        assert supervisor.wait(timeout=60) == 0
        assert not [pid for pid in children if _alive(pid)]
    finally:
        _stop_set(supervisor, children)


async def test_worker_processes_run_under_one_supervisor_and_stop_with_it(
    migrated: str, tmp_path: Path
) -> None:
    engine = create_engine(migrated)
    factory = session_factory(engine)
    upload_id = await queued_upload(factory, SystemClock(), tmp_path / "s.csv", 1200, 300)
    supervisor = _worker(migrated, "--processes", "2")
    queue = ArqJobQueue(REDIS_URL or "")
    children: list[int] = []
    try:
        await _started_children(supervisor, children)
        await queue.enqueue("uploads.ingest", upload_id)
        done = None
        for _ in range(1200):
            async with factory() as session:
                done = await session.get(Upload, upload_id)
            if done is not None and done.status == "completed":
                break
            await asyncio.sleep(0.1)
        assert done is not None
        assert (done.status, done.processed_records, done.failed_records) == (
            "completed",
            1080,
            120,
        )
        supervisor.terminate()
        assert supervisor.wait(timeout=60) == 0
        # SIGTERM reached every worker process: none is left behind.
        assert not [pid for pid in children if _alive(pid)]
    finally:
        _stop_set(supervisor, children)
        await queue.close()
        async with factory() as session:
            await session.execute(delete(Upload).where(Upload.id == upload_id))
            await session.commit()
        await engine.dispose()
