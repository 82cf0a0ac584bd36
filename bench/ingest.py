"""Ingestion benchmark: an upload timed as the operator waits for it, the bare limit, peak RSS.

``python bench/ingest.py --rows 100000`` generates N realistic debtor rows (ES, DE, FR, NL, IT;
about 5 % invalid IBANs, 2 % blacklisted IBANs, 3 % bad cities) into a temporary CSV. On
``DATABASE_URL`` (default: a temporary SQLite file; the database must be disposable — tables
are created by the migrations and the benchmark's rows are left behind) and ``REDIS_URL`` (if
set) it then, by default, runs the product end to end:

* starts ``debtgraph serve`` and, with Redis, ``debtgraph worker --processes N`` (``--workers``,
  default 2: one per core here) as real processes, signs in as an operator and uploads the
  file over HTTP (``POST /api/admin/uploads``), then polls until the last phase is done: the
  upload ``completed`` (every row stored, enriched and validated: ``pending: 0``) and no
  debtor awaiting its VOP check;
* prints the time of each phase from the upload request (the request itself, job pick-up,
  stored + validated, VOP-scored), rows/s, the bare limit (below) on the same file in the same
  run and the ratio, and the peak RSS (VmHWM) of every process: server and each worker.

``--in-process`` instead measures the phases inside this process, one after the other:

* stage A alone: streaming CSV read + field derivation + IBAN enrichment (the next chunk in a
  worker thread while the current one is written) + bulk insert (COPY on PostgreSQL), committed
  per chunk, rows left pending;
* stage B alone: set-wise validation of those pending rows (what ``POST …/validate`` runs);
* the ingestion job's A + B: what ``uploads.ingest`` runs — each chunk derived and judged in a
  worker thread, the blacklist applied, and inserted with its verdict in one transaction;
* the bare limit: csv parsing alone plus the bulk insert of the same rows with no derivation,
  and the ratio of the job's A + B to it;
* the VOP phase over the job's upload: what ``vop.check_upload`` runs with the sandbox
  provider — per batch one SELECT, the provider's answers, the final-decline lookup, and the
  debtors' UPDATE with the logs' INSERT (one statement on PostgreSQL), committed per batch —
  beside its floor, the bare bulk insert of as many log rows.

Prints figures only; never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import sys
import tempfile
import time
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path

from schwifty import IBAN
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and bench/graphql.py would shadow graphql-core
# (imported with the app, for the worker's collector settings).
if str(ROOT / "bench") in sys.path:
    sys.path.remove(str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from debtgraph.domain.core.clock import SystemClock  # noqa: E402
from debtgraph.domain.core.database import create_engine, session_factory  # noqa: E402
from debtgraph.domain.debtors import ingestion  # noqa: E402
from debtgraph.domain.debtors.csv_reader import open_csv  # noqa: E402
from debtgraph.domain.debtors.models import BlacklistedIban, Debtor, Upload, UploadRange  # noqa: E402
from debtgraph.domain.debtors.validation import validate_upload_debtors  # noqa: E402
from debtgraph.domain.migrations.runner import upgrade  # noqa: E402
from debtgraph.domain.payments import verification  # noqa: E402
from debtgraph.domain.payments.models import VopLog  # noqa: E402
from debtgraph.domain.payments.vop import SandboxVopProvider  # noqa: E402
from debtgraph.server.app import tune_collector  # noqa: E402

# (bank code, branch code) as schwifty's IBAN.generate takes them: it computes the national
# check digits, so every generated IBAN is valid and the rows do not collapse onto a fallback.
BANKS = {
    "ES": [("2100", "0418"), ("0049", "1500"), ("0182", "2370"), ("0081", "0200")],
    "DE": [("37040044", ""), ("10070000", ""), ("50010517", "")],
    "FR": [("30004", "00000"), ("20041", "01005")],
    "NL": [("ABNA", ""), ("INGB", ""), ("RABO", "")],
    "IT": [("05428", "11101"), ("03069", "09606")],
}
CITIES = {
    "ES": ("Madrid", "28001"),
    "DE": ("Berlin", "10115"),
    "FR": ("Paris", "75001"),
    "NL": ("Amsterdam", "1011"),
    "IT": ("Roma", "00118"),
}
NAMES = ["María", "José", "Jürgen", "Françoise", "Daan", "Giulia", "Lucía", "Émile", "Anke"]
SURNAMES = ["Núñez", "Müller", "Lefèvre", "de Vries", "Rossi", "García", "Schäfer", "Bianchi"]


def _iban(rng: random.Random, country: str) -> str:
    bank, branch = rng.choice(BANKS[country])
    length = {"ES": 10, "DE": 10, "FR": 11, "NL": 10, "IT": 12}[country]
    account = "".join(rng.choice("0123456789") for _ in range(length))
    try:
        return str(IBAN.generate(country, bank_code=bank, account_code=account, branch_code=branch))
    except Exception:
        return "ES9121000418450200051332"


def generate(path: Path, rows: int, seed: int = 7) -> list[str]:
    """Write the CSV; return the IBANs to blacklist."""
    rng = random.Random(seed)
    blacklist: list[str] = []
    countries = list(BANKS)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(
            ["nombre", "apellidos", "IBAN", "Importe", "ciudad", "cp", "direccion", "pais",
             "email", "referencia"]
        )  # fmt: skip
        for index in range(rows):
            country = countries[index % len(countries)]
            iban = _iban(rng, country)
            roll = rng.random()
            if roll < 0.05:
                iban = iban[:4] + ("0" if iban[4] != "0" else "1") + iban[5:]
            elif roll < 0.07:
                blacklist.append(iban)
            city, postcode = CITIES[country]
            if rng.random() < 0.03:
                city = rng.choice(["X", "MÃ¡laga", "Par\ufffdis"])
            amount = f"{rng.randint(1, 4999)},{rng.randint(0, 99):02d}"
            grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
            writer.writerow(
                [rng.choice(NAMES), rng.choice(SURNAMES), grouped.lower() if index % 7 == 0
                 else grouped, amount, city, postcode, f"Calle Mayor {index % 300 + 1}",
                 country, f"d{index}@example.com", f"ORDER-{index}"]
            )  # fmt: skip
    return blacklist


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _server_cpu(session) -> tuple[float, bool]:  # type: ignore[no-untyped-def]
    """CPU seconds the database has spent for this session's connection so far.

    PostgreSQL: its backend process (same machine), from /proc; SQLite: aiosqlite's worker
    thread, where SQLite runs (then True: that CPU is also this process's). Under a loaded
    machine wall time mostly measures waiting; CPU per row is what the code costs.
    """
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    if hasattr(raw, "get_server_pid"):
        stat = Path(f"/proc/{raw.get_server_pid()}/stat").read_text()  # noqa: ASYNC240  (procfs)
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), False
    thread = getattr(raw, "_thread", None)
    if thread is None or thread.ident is None:
        return 0.0, True
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident)), True


class Cpu:
    """Client (this process) and database CPU spent between ``start`` and ``stop``."""

    def __init__(self, *, main_thread: bool = False) -> None:
        # The main thread only: a step that runs while the next chunk is derived in a worker.
        self._clock = time.thread_time if main_thread else time.process_time
        self._main_thread = main_thread
        self.client = 0.0
        self.server = 0.0

    async def start(self, session) -> None:  # type: ignore[no-untyped-def]
        self._client = self._clock()
        self._server = (await _server_cpu(session))[0]

    async def stop(self, session) -> None:  # type: ignore[no-untyped-def]
        client = self._clock() - self._client
        now, in_process = await _server_cpu(session)
        server = now - self._server
        self.client += client - server if in_process and not self._main_thread else client
        self.server += server

    @property
    def total(self) -> float:
        """Client and database CPU seconds."""
        return self.client + self.server

    def per_row(self, rows: int) -> str:
        """The figure printed: µs of CPU per row, client + database."""
        client, server = self.client / rows * 1e6, self.server / rows * 1e6
        return f"cpu {client:5.1f} + {server:5.1f} db = {client + server:5.1f} us/row"


async def _new_upload(factory, clock, path: Path, rows: int) -> int:  # type: ignore[no-untyped-def]
    size = os.path.getsize(path)  # noqa: ASYNC240  (one stat call in a benchmark)
    async with factory() as session:
        upload = await ingestion.create_upload(
            session, clock, filename="bench.csv", original_filename="bench.csv",
            mime_type="text/csv", file_size=size, storage_path=str(path),
            total_records=rows, created_by=None,
        )  # fmt: skip
        await session.commit()
        return upload.id


async def bare_floor(factory, clock, csv_path: Path, rows: int, cpu: Cpu | None = None) -> float:  # type: ignore[no-untyped-def]
    """Seconds for the bare limit: csv.reader and the bulk insert (COPY) of the same rows,
    with no derivation, committed per chunk (``cpu``: also counts the CPU it takes)."""
    cpu = cpu or Cpu()
    bare_upload = await _new_upload(factory, clock, csv_path, rows)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with csv_path.open(newline="", encoding="utf-8") as source:
        parsed = csv.reader(source, delimiter=";")
        header = next(parsed)
        async with factory() as session:
            await cpu.start(session)
            number = 1
            while True:
                batch = []
                for record in parsed:
                    number += 1
                    batch.append({
                        "upload_id": bare_upload, "row_number": number,
                        "raw_data": dict(zip(header, record, strict=False)), "currency": "EUR",
                        "sepa_type": "CORE", "status": "pending", "validation_status": "pending",
                        "blacklisted": False, "created_at": now, "updated_at": now,
                    })  # fmt: skip
                    if len(batch) >= ingestion.CHUNK_ROWS:
                        break
                if not batch:
                    break
                await ingestion.insert_debtors(session, batch)
                await session.commit()
            await cpu.stop(session)
    return time.perf_counter() - started


async def run(rows: int, url: str) -> None:
    """Generate, ingest, validate and print the figures."""
    clock = SystemClock()
    csv_path, listed = _generated(rows)

    engine = create_engine(url)
    await upgrade(engine)
    factory = session_factory(engine)
    async with factory() as session:
        # The database may hold an earlier run's list (the benchmark leaves its rows behind).
        known = set((await session.scalars(select(BlacklistedIban.iban))).all())
        for iban in set(listed) - known:
            session.add(BlacklistedIban(iban=iban, created_at=clock.now()))
        await session.commit()

    upload_id = await _new_upload(factory, clock, csv_path, rows)
    started = time.perf_counter()
    with csv_path.open("rb") as source:
        reader = iter(open_csv(source))
        async with (
            factory() as session,
            aclosing(ingestion.record_chunks(reader, upload_id, clock)) as chunks,
        ):
            async for records in chunks:
                await ingestion.insert_debtors(session, records)
                await session.commit()
    stage_a = time.perf_counter() - started

    started = time.perf_counter()
    async with factory() as session:
        await validate_upload_debtors(session, clock, upload_id)
        await session.commit()
    stage_b = time.perf_counter() - started

    # The path the uploads.ingest job runs: each chunk judged in memory, checked by the VOP
    # sandbox and inserted with its verdict, then its logs copied, in one transaction per chunk,
    # with the upload's counters kept. The VOP step's own time is measured apart.
    provider = SandboxVopProvider()

    async def job_run(step: TimedStep | None, cpu: Cpu) -> tuple[int, float]:
        target = await _new_upload(factory, clock, csv_path, rows)
        started = time.perf_counter()
        with csv_path.open("rb") as source:
            reader = iter(open_csv(source))
            async with (
                factory() as session,
                aclosing(
                    ingestion.record_chunks(
                        reader, target, clock, judge=True, prepare=step and step.prepare
                    )
                ) as chunks,
            ):
                await cpu.start(session)
                upload = await session.get(Upload, target)
                assert upload is not None
                async for records in chunks:
                    await ingestion.ingest_chunk(session, clock, upload, records, step)
                    await session.commit()
                await cpu.stop(session)
        return target, time.perf_counter() - started

    class TimedStep:
        """The VOP step with its own time kept: the difference of two whole runs is noisy.

        Its CPU is the main thread's while the step runs (the next chunk is derived in a worker
        thread meanwhile) and the database's; what ``prepare`` does in that worker thread, as
        the job has it, is not in it (the phase's figure has it).
        """

        def __init__(self, step: verification.RecordChecks) -> None:
            self.step = step
            self.prepare = step.prepare
            self.seconds = 0.0
            self.cpu = Cpu(main_thread=True)

        async def before_insert(self, session, upload_id, records) -> None:  # type: ignore[no-untyped-def]
            await self.cpu.start(session)
            started = time.perf_counter()
            await self.step.before_insert(session, upload_id, records)
            self.seconds += time.perf_counter() - started
            await self.cpu.stop(session)

        async def after_insert(self, session, upload_id, records) -> None:  # type: ignore[no-untyped-def]
            await self.cpu.start(session)
            started = time.perf_counter()
            await self.step.after_insert(session, upload_id, records)
            self.seconds += time.perf_counter() - started
            await self.cpu.stop(session)

    job_cpu, job_vop_cpu = Cpu(), Cpu()
    _, job = await job_run(None, job_cpu)
    checks = verification.RecordChecks(clock, provider)
    timed = TimedStep(checks)
    job_upload, job_with_vop = await job_run(timed, job_vop_cpu)

    # The VOP phase over stored rows (vop.check_upload's path) on stage A + B's upload, whose
    # debtors are validated and not yet checked.
    started = time.perf_counter()
    stored_checked = 0
    after = 0
    async with factory() as session:
        while True:
            batch = await verification.check_batch(session, clock, provider, upload_id, after)
            if batch.last_id is None:
                break
            after = batch.last_id
            stored_checked += len(batch.checks)
            verification.record_progress(session, clock, upload_id, len(batch.checks), True)
            await session.commit()
    vop_stored = time.perf_counter() - started
    checked = checks.checked
    # The job with its VOP step minus the same job without it: what the phase adds.
    vop_phase = job_with_vop - job
    async with factory() as session:
        valid_rows = await session.scalar(
            select(func.count())
            .select_from(Debtor)
            .where(Debtor.upload_id == job_upload, Debtor.validation_status == "valid")
        )
        template = await session.scalar(
            select(VopLog).where(VopLog.upload_id == job_upload).limit(1)
        )
        assert template is not None
        log_row = {key: getattr(template, key) for key in verification.LOG_COLUMNS}
    floor_cpu = Cpu()
    started = time.perf_counter()
    async with factory() as session:
        await floor_cpu.start(session)
        for start in range(0, checked, ingestion.CHUNK_ROWS):
            count = min(ingestion.CHUNK_ROWS, checked - start)
            await verification.insert_logs(session, [log_row] * count)
            await session.commit()
        await floor_cpu.stop(session)
    vop_floor = time.perf_counter() - started

    bare_cpu = Cpu()
    bare = await bare_floor(factory, clock, csv_path, rows, bare_cpu)

    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM debtors"))).scalar()
    await engine.dispose()
    backend = url.split("://")[0]
    total = stage_a + stage_b
    print(f"database           {backend} ({stored} debtor rows stored in total)")
    print(f"stage A (store)    {stage_a:6.2f} s  {rows / stage_a:10,.0f} rows/s")
    print(f"stage B (validate) {stage_b:6.2f} s  {rows / stage_b:10,.0f} rows/s")
    print(f"stage A then B     {total:6.2f} s  {rows / total:10,.0f} rows/s (separate passes)")
    print(f"ingestion job A+B  {job:6.2f} s  {rows / job:10,.0f} rows/s  "
          f"{job_cpu.per_row(rows)} (uploads.ingest's path without its VOP step)")  # fmt: skip
    print(f"job A+B+VOP        {job_with_vop:6.2f} s  {rows / job_with_vop:10,.0f} rows/s  "
          f"{job_vop_cpu.per_row(rows)} (uploads.ingest's path)")  # fmt: skip
    print(f"bare limit         {bare:6.2f} s  {rows / bare:10,.0f} rows/s  "
          f"{bare_cpu.per_row(rows)} (parse + bulk insert)")  # fmt: skip
    print(f"ratio job / bare   {job / bare:6.1f} x  (cpu {job_cpu.total / bare_cpu.total:.1f} x)")
    print(f"VOP phase          {vop_phase:6.2f} s  {checked / vop_phase:10,.0f} rows/s "
          f"({checked} checks, {valid_rows} valid rows; job with it - without)")  # fmt: skip
    print(f"VOP step, timed    {timed.seconds:6.2f} s  {checked / timed.seconds:10,.0f} rows/s  "
          f"{timed.cpu.per_row(checked)} (the step on the event loop)")  # fmt: skip
    print(f"VOP, stored rows   {vop_stored:6.2f} s  {stored_checked / vop_stored:10,.0f} rows/s "
          "(vop.check_upload's path: SELECT, mark + log per batch)")  # fmt: skip
    print(f"VOP floor          {vop_floor:6.2f} s  {checked / vop_floor:10,.0f} rows/s  "
          f"{floor_cpu.per_row(checked)} (bulk insert of as many log rows alone)")  # fmt: skip
    print(f"ratio VOP / floor  {vop_phase / vop_floor:6.1f} x (timed step: "
          f"{timed.seconds / vop_floor:.1f} x, its cpu "
          f"{timed.cpu.total / floor_cpu.total:.1f} x)")  # fmt: skip
    print(f"peak RSS           {peak_rss_mb():6.0f} MB")


def _generated(rows: int) -> tuple[Path, list[str]]:
    """The generated file of ``rows`` rows and its blacklist, kept between runs (the rows are
    the same for a given count: the generator is seeded)."""
    cache = Path(tempfile.gettempdir()) / "debtgraph-bench-cache"
    cache.mkdir(exist_ok=True)
    csv_path = cache / f"debtors-{rows}.csv"
    listed_path = cache / f"blacklist-{rows}.txt"
    if not (csv_path.exists() and listed_path.exists()):
        started = time.perf_counter()
        listed = generate(csv_path, rows)
        listed_path.write_text("\n".join(listed))
        print(f"generated {rows} rows in {time.perf_counter() - started:.1f} s")
    listed = listed_path.read_text().split()
    print(f"file               {rows} rows, {csv_path.stat().st_size / 1e6:.1f} MB ({csv_path})")
    return csv_path, listed


def _peak_rss_mb(pid: int) -> float:
    """A live process's peak resident set size (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _as_time(value: datetime | str) -> datetime:
    """A timestamp as PostgreSQL (datetime) or SQLite (text) returns it."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used so far (its own threads, not children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backend_cpu(factory, url: str) -> float:  # type: ignore[no-untyped-def]
    """CPU of the PostgreSQL backends now connected to the benchmark's database but this
    process's own (the server's and workers' pools; 0 on SQLite, which runs in them)."""
    if not url.startswith("postgresql"):
        return 0.0
    async with factory() as session:
        pids = (
            await session.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        ).all()
    return sum(_cpu_seconds(pid) for pid in pids)


def _children(pid: int) -> list[int]:
    """The worker processes a supervisor started (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(child) for child in path.read_text().split()] if path.exists() else []
    return [
        child
        for child in found
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


async def _wait_for_workers(redis_url: str, pid: int, processes: int) -> None:
    """Until the worker processes are up and both arq queues have been polled."""
    from redis import asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        for _ in range(1200):
            up = len(_children(pid)) if processes > 1 else 1
            keys = [await client.exists(f"{q}:health-check") for q in ("arq:queue", "arq:lanes")]
            if up >= processes and all(keys):
                break
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    # The health key is shared: give the last process to start the time to poll too.
    await asyncio.sleep(3)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_end_to_end(rows: int, url: str, redis_url: str | None, workers: int) -> None:
    """Upload the file to a real server (and workers) over HTTP and time what the user waits."""
    import subprocess

    import httpx

    from debtgraph.domain.creditors.operators import upsert_operator
    from debtgraph.domain.payments.verification import awaiting_check

    clock = SystemClock()
    workdir = Path(tempfile.mkdtemp(prefix="debtgraph-bench-"))
    csv_path, listed = _generated(rows)
    size_mb = csv_path.stat().st_size / 1e6

    engine = create_engine(url)
    await upgrade(engine)
    factory = session_factory(engine)
    async with factory() as session:
        known = set((await session.scalars(select(BlacklistedIban.iban))).all())
        for iban in set(listed) - known:
            session.add(BlacklistedIban(iban=iban, created_at=clock.now()))
        await upsert_operator(session, clock, "bench@tether.test", "bench-password", "Bench")
        await session.commit()

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "UPLOAD_DIR": str(workdir / "uploads"),
        "MAX_UPLOAD_MB": str(int(size_mb * 2) + 10),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "debtgraph.server.cli"]
    server = subprocess.Popen([*command, "serve", "--port", str(port)], env=env)  # noqa: ASYNC220
    worker = None
    if redis_url:
        worker = subprocess.Popen(  # noqa: ASYNC220
            [*command, "worker", "--processes", str(workers)], env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600) as client:
            for _ in range(600):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            if worker is not None and redis_url:
                await _wait_for_workers(redis_url, worker.pid, workers)
            login = await client.post(
                "/api/login", json={"email": "bench@tether.test", "password": "bench-password"}
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}

            # CPU from here on: the processes' start-up (imports, pools) is not the upload's.
            started_pids = [server.pid] + ([worker.pid, *_children(worker.pid)] if worker else [])
            app_cpu_before = sum(_cpu_seconds(pid) for pid in started_pids)
            db_cpu_before = await _backend_cpu(factory, url)
            t0 = time.perf_counter()
            with csv_path.open("rb") as handle:
                response = await client.post(
                    "/api/admin/uploads",
                    files={"file": ("debtors.csv", handle, "text/csv")},
                    headers=headers,
                )
            request_done = time.perf_counter() - t0
            assert response.status_code in (201, 202), response.text
            upload_id = response.json()["data"]["id"]
            picked = stored = scored = None
            status: dict[str, object] = {}
            while scored is None:
                await asyncio.sleep(0.25)
                now = time.perf_counter() - t0
                status = (
                    await client.get(f"/api/admin/uploads/{upload_id}/status", headers=headers)
                ).json()["data"]
                if picked is None and status["status"] != "pending":
                    picked = now
                if status["status"] == "failed":
                    raise SystemExit(f"upload failed: {status}")
                if status["status"] == "completed":
                    # Done when the count's snapshot (taken as it starts) shows no debtor
                    # waiting; the stats below are the bench's own check, not the user's wait.
                    checked_at = time.perf_counter() - t0
                    async with factory() as session:
                        waiting = await session.scalar(
                            select(func.count())
                            .select_from(Debtor)
                            .where(Debtor.upload_id == upload_id, awaiting_check())
                        )
                    if stored is None:
                        stats = (
                            await client.get(
                                f"/api/admin/uploads/{upload_id}/validation-stats",
                                headers=headers,
                            )
                        ).json()["data"]
                        # Completion validates every row in its own transaction.
                        if stats["pending"] != 0:
                            raise SystemExit(f"completed with rows pending: {stats}")
                        stored = now
                    if not waiting:
                        scored = checked_at
        async with factory() as session:
            lanes_used = await session.scalar(
                select(func.count(func.distinct(UploadRange.claim_token))).where(
                    UploadRange.upload_id == upload_id
                )
            )
            # When each lane stored its first and last chunk: a lane done early idles while
            # the other runs the tail.
            spans = (
                await session.execute(
                    text(
                        "SELECT r.claim_token, min(d.created_at), max(d.created_at)"
                        " FROM upload_ranges r JOIN debtors d ON d.upload_id = r.upload_id"
                        " AND d.row_number BETWEEN r.first_row AND r.last_row"
                        " WHERE r.upload_id = :id GROUP BY r.claim_token"
                    ),
                    {"id": upload_id},
                )
            ).all()
            range_count = await session.scalar(
                select(func.count())
                .select_from(UploadRange)
                .where(UploadRange.upload_id == upload_id)
            )
        processes = [("server", server.pid)]
        if worker is not None:
            children = _children(worker.pid)
            processes.append(("worker (supervisor)" if children else "worker", worker.pid))
            processes += [(f"worker process {n + 1}", pid) for n, pid in enumerate(children)]
        peaks = [(name, pid, _peak_rss_mb(pid)) for name, pid in processes]
        app_cpu = sum(_cpu_seconds(pid) for _, pid in processes) - app_cpu_before
        db_cpu = await _backend_cpu(factory, url) - db_cpu_before
    finally:
        for process in (worker, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)

    # The floor, measured in the same run on the same file once the processes are gone.
    bare = await bare_floor(factory, clock, csv_path, rows)
    await engine.dispose()
    assert picked is not None
    assert stored is not None
    backend = url.split("://")[0]
    lanes = f"{workers} worker process(es)" if redis_url else "jobs in the API process"
    print(f"database           {backend}; {lanes}; {status['processed_records']} valid, "
          f"{status['failed_records']} invalid")  # fmt: skip
    print(f"upload request     {request_done:6.2f} s  (stored to disk, inspected, ranges cut)")
    print(f"ranges             {range_count} ingested by {lanes_used} lane(s) (distinct claims)")
    if len(spans) > 1:
        end = max(_as_time(last) for _, _, last in spans)
        idle = ", ".join(f"{(end - _as_time(last)).total_seconds():.2f}" for _, _, last in spans)
        print(f"lanes              idle at the end: {idle} s (last chunk stored before the end)")
    print(f"job picked up      {picked:6.2f} s  from the request (0.25 s polling)")
    print(f"stored + validated {stored:6.2f} s  {rows / stored:10,.0f} rows/s "
          "(completed, pending: 0; enriched and VOP-checked per chunk)")  # fmt: skip
    print(f"all phases (VOP)   {scored:6.2f} s  {rows / scored:10,.0f} rows/s "
          "(no debtor awaiting its check)")  # fmt: skip
    print(f"bare limit         {bare:6.2f} s  {rows / bare:10,.0f} rows/s "
          "(csv.reader + bulk insert, same file)")  # fmt: skip
    print(f"ratio              {scored / bare:6.1f} x the floor's time; "
          f"{100 * bare / scored:.0f} % of its rows/s")  # fmt: skip
    print(f"cpu                {app_cpu / rows * 1e6:6.1f} us/row in the server and workers, "
          f"{db_cpu / rows * 1e6:.1f} in their database backends (machine load "
          f"{os.getloadavg()[0]:.1f}: under load wall time measures waiting)")  # fmt: skip
    for name, pid, peak in peaks:
        print(f"peak RSS           {peak:6.0f} MB  {name} (pid {pid})")


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (with Redis)")
    parser.add_argument(
        "--in-process", action="store_true", help="the phases inside this process instead"
    )
    args = parser.parse_args()
    default = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='debtgraph-bench-db-')}/bench.db"
    url = os.environ.get("DATABASE_URL") or default
    # The collector as the API and worker processes have it (server/app.py), in this process
    # too: it runs the in-process phases and, in both modes, the bare floor, each timed as the
    # product's own processes would run it.
    tune_collector()
    if args.in_process:
        asyncio.run(run(args.rows, url))
        return
    redis_url = os.environ.get("REDIS_URL") or None
    asyncio.run(run_end_to_end(args.rows, url, redis_url, args.workers))


if __name__ == "__main__":
    main()
