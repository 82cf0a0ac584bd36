"""The VOP phase: check validated debtors set-wise, write one log per check, mark the debtors.

A debtor awaits a check when it has been validated (stage B), has an IBAN and has no
``risk_class`` yet: the risk class is the processed marker. Checks run in batches: one SELECT
of the batch, one provider call (``check_many``) for the batch's valid IBANs (an invalid IBAN
never reaches the provider: its log is ``rejected``), one query for previous final declines on
the batch's IBANs (sent before the answers are graded, so that its round trip overlaps them),
then the debtors' UPDATE and the logs' INSERT: one statement on PostgreSQL, elsewhere UPDATEs
and one bulk insert. The UPDATE only takes debtors still unmarked (``risk_class IS NULL``),
and logs are written only for those, in the same transaction: a run that dies leaves whole
batches behind, and two runs over the same upload (a retried job, a second worker) never
write two logs for one check.

During ingestion the same checks ride along each chunk (``RecordChecks``): judged before the
chunk is stored (in the ingestion's worker thread when the provider answers in-process), its
logs written by one INSERT once the debtors have ids.

Bank data comes from the IBAN enrichment stored with the debtor (schwifty lookups memoised per
bank in ``banking.iban``), so a batch makes no lookup of its own.

A debtor is billable (``ready_for_sync``) once its check is done and not high risk; the one rule
is ``debtors.models.billable_condition``, which the upload stats and billing both use.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any, Final, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.database import among_texts, insert_rows
from debtgraph.domain.core.outbox import record_event
from debtgraph.domain.debtors.fields import full_name
from debtgraph.domain.debtors.models import (
    Debtor,
    FinalDecline,
    Upload,
    UploadStatus,
    ValidationStatus,
    awaiting_check_condition,
)
from debtgraph.domain.payments import vop
from debtgraph.domain.payments.models import VopLog
from debtgraph.domain.payments.providers import VopUnavailable

BATCH: Final = 5000
# The Core table: UPDATE … RETURNING by ids, not the ORM's bulk-by-primary-key path.
_DEBTORS: Final = cast("Table", Debtor.__table__)
_VOP_LOGS: Final = cast("Table", VopLog.__table__)
# Every column but the id, in the order the judging loop builds a log row (a test holds it to
# the table's columns).
LOG_COLUMNS: Final = (
    "debtor_id",
    "upload_id",
    "iban_masked",
    "iban_valid",
    "bank_identified",
    "bank_name",
    "bic",
    "country",
    "vop_score",
    "score_label",
    "result",
    "epc_code",
    "provider_name",
    "name_ratio",
    "created_at",
)
# A log row's values from column values (the key order a Check's log follows).
_log_row: Final = itemgetter(*LOG_COLUMNS)


def _pg_array_type(name: str) -> str:
    """A log column's element type for the arrays below: its own, but text without a length
    (an explicit cast to VARCHAR(n) would cut a value the column refuses) and the ids (typed
    by the referenced column) as integers."""
    column = _VOP_LOGS.c[name]
    if column.foreign_keys:
        return "INTEGER"
    return re.sub(r"\(\d+\)", "", column.type.compile(dialect=postgresql.dialect()))


_LOG_INSERT: Final = f"INSERT INTO vop_logs ({', '.join(LOG_COLUMNS)})"
# Within a batch, logs differ row by row only in these. The rest of a check, its grade (the
# verdict, the bank, the upload, the time, and for stored debtors their new marks), takes a
# few dozen distinct values, so each distinct grade is sent once and each row names its own:
# a fraction of the values to encode and send.
_ROW_COLUMNS: Final = ("debtor_id", "iban_masked", "provider_name")
_GRADE_COLUMNS: Final = tuple(c for c in LOG_COLUMNS if c not in _ROW_COLUMNS)
_MARKS: Final = (("matched", "BOOLEAN"), ("risk", "VARCHAR"))
_row_values: Final = itemgetter(*(LOG_COLUMNS.index(c) for c in _ROW_COLUMNS))
_grade_of: Final = itemgetter(*(LOG_COLUMNS.index(c) for c in _GRADE_COLUMNS))


def _checks_relation(marks: Sequence[tuple[str, str]] = ()) -> str:
    """A batch's checks as ``v`` (the rows: ``key``, then their own columns, in check order
    ``ord``) joined to ``g`` (the grades, then ``marks``' (name, type))."""
    rows = [(c, _pg_array_type(c)) for c in _ROW_COLUMNS] + [("grade", "INTEGER")]
    grades = [(c, _pg_array_type(c)) for c in _GRADE_COLUMNS] + list(marks)

    def unnest(columns: list[tuple[str, str]], alias: str, names: list[str]) -> str:
        arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
        return f"unnest({arrays}) WITH ORDINALITY AS {alias}({', '.join(names)}, ord)"

    return (
        unnest(rows, "v", ["key", *(name for name, _ in rows[1:])])
        + " JOIN "
        + unnest(grades, "g", [name for name, _ in grades])
        + " ON g.ord = v.grade"
    )


def _log_values(key: str, upload: str) -> str:
    """A log's values from ``_checks_relation``, ``key`` for its debtor id and ``upload`` for
    its upload id (the debtor row's: the log's upload id has no foreign key of its own)."""
    own = {"debtor_id": key, "upload_id": upload}
    return ", ".join(
        own.get(c) or (f"v.{c}" if c in _ROW_COLUMNS else f"g.{c}") for c in LOG_COLUMNS
    )


# A chunk's logs keyed by the row numbers of debtors just stored: the database maps them to
# the ids in the same statement (no SELECT of the ids, no second round trip). In check order.
# The debtors are bounded by the upload and the chunk's row span, both parameters, so every
# plan reads only the chunk's rows: joined on ``g.upload_id`` with statistics of a table still
# small (never analysed since it grew), the planner read all the upload's stored rows once
# per distinct grade, each chunk (1.7 M rows sorted on disk for the last chunk of 100 000).
_LOGS_BY_ROW_PG: Final = text(
    f"{_LOG_INSERT} SELECT {_log_values('d.id', 'd.upload_id')} FROM {_checks_relation()}"  # noqa: S608 (constants)
    " JOIN debtors AS d ON d.upload_id = :chunk_upload AND d.row_number = v.key"
    " AND d.row_number BETWEEN :first_row AND :last_row ORDER BY v.ord"
)
# A batch of stored debtors marked and logged in one statement: only the debtors still
# unmarked are updated (the guard against a concurrent or resumed run; a run that waited on
# another's row locks sees them marked and skips them) and only those get their log. Returns
# the ids logged. The guard is written ``num_nulls(…) = 1``, not ``IS NULL``, so that the
# rows are found by primary key: statistics not analysed since an upload was stored (few NULL
# risk classes) made the planner read every unchecked debtor of every upload through the
# risk_class index to join them.
_MARK_AND_LOG_PG: Final = text(
    f"WITH c AS (SELECT v.ord, {_log_values('v.key AS debtor_id', 'g.upload_id')}, g.matched,"  # noqa: S608 (constants)
    f" g.risk FROM {_checks_relation(_MARKS)}),"
    " marked AS (UPDATE debtors AS d SET iban_valid = c.iban_valid, name_matched = c.matched,"
    " risk_class = c.risk, updated_at = CAST(:now AS TIMESTAMP WITH TIME ZONE)"
    " FROM c WHERE d.id = c.debtor_id AND num_nulls(d.risk_class) = 1"
    " RETURNING d.id, d.upload_id),"
    f" logged AS ({_LOG_INSERT} SELECT"
    f" {', '.join('marked.upload_id' if n == 'upload_id' else f'c.{n}' for n in LOG_COLUMNS)}"
    " FROM c JOIN marked ON marked.id = c.debtor_id ORDER BY c.ord RETURNING debtor_id)"
    " SELECT array_agg(debtor_id) FROM logged"
)


def _columns(names: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Rows of values as one list per name."""
    columns = list(zip(*rows, strict=True)) or [()] * len(names)
    return dict(zip(names, map(list, columns), strict=True))


def _batch_params(
    logs: Sequence[tuple[Any, ...]], marks: Sequence[tuple[bool, str]] | None = None
) -> dict[str, Any]:
    """A batch's log rows (and with ``marks``, its debtors' ``name_matched`` and ``risk_class``)
    as ``_checks_relation`` takes them."""
    grades: dict[tuple[Any, ...], int] = {}
    keys: Iterable[tuple[Any, ...]] = map(_grade_of, logs)
    names = _GRADE_COLUMNS
    if marks is not None:
        keys = (grade + mark for grade, mark in zip(keys, marks, strict=True))
        names = (*names, *(name for name, _ in _MARKS))
    # Numbered from 1, as WITH ORDINALITY numbers them.
    params: dict[str, Any] = {"grade": [grades.setdefault(k, len(grades) + 1) for k in keys]}
    params.update(_columns(_ROW_COLUMNS, map(_row_values, logs)))
    params.update(_columns(names, grades))
    return params


def awaiting_check() -> ColumnElement[bool]:
    """Debtors validated, with an IBAN, whose VOP check has not been written yet (the rule
    ``ix_debtors_awaiting_check`` indexes)."""
    return awaiting_check_condition()


_CANDIDATE_COLUMNS: Final = (
    Debtor.id,
    Debtor.upload_id,
    Debtor.iban,
    Debtor.iban_valid,
    Debtor.iban_masked,
    Debtor.bank_name,
    Debtor.bic,
    Debtor.first_name,
    Debtor.last_name,
    Debtor.country,
    Debtor.amount,
)


class Check(NamedTuple):
    """One debtor's check: the log row to write and the debtor's new VOP fields.

    ``log`` holds the log's values in ``LOG_COLUMNS`` order (a tuple: what COPY takes, and a
    whole upload's checks are built without one dict per row); ``log_values`` names them.
    """

    debtor_id: int
    log: tuple[Any, ...]
    iban_valid: bool
    name_matched: bool
    risk_class: str

    def log_values(self) -> dict[str, Any]:
        """The log row as column values."""
        return dict(zip(LOG_COLUMNS, self.log, strict=True))


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one batch wrote: the checks that were new (a concurrent run may have taken some)."""

    checks: list[Check]
    last_id: int | None


def _iban_country(iban: str | None, valid: bool) -> str | None:
    return iban[:2].upper() if valid and iban and iban[:2].isalpha() else None


async def _declined_ibans(session: AsyncSession, wanted: list[str]) -> set[str]:
    """Which of ``wanted`` (a batch's distinct IBANs, sorted) already had a final decline (any
    upload): one query on ``FinalDecline``."""
    if not wanted:
        return set()
    matching, params = await among_texts(session, FinalDecline.iban, wanted, "ibans")
    rows = await session.scalars(select(FinalDecline.iban).where(matching).distinct(), params)
    return set(rows.all())


# A candidate as the judging loop reads it: its key (the debtor id, or the row number of a record
# not stored yet), then these fields.
_ENTRY_FIELDS: Final = (
    "upload_id",
    "iban",
    "iban_valid",
    "iban_masked",
    "bank_name",
    "bic",
    "first_name",
    "last_name",
    "country",
    "amount",
)
_row_entry: Final = attrgetter("id", *_ENTRY_FIELDS)
_record_entry: Final = itemgetter("row_number", *_ENTRY_FIELDS)


async def judge(
    session: AsyncSession,
    clock: Clock,
    provider: vop.VopProvider,
    rows: Sequence[Any],
) -> list[Check]:
    """Check candidate rows (``_CANDIDATE_COLUMNS``): one provider call, one decline query.

    Raises ``providers.VopUnavailable`` (nothing written) when the provider fails.
    """
    return await _judge_entries(session, clock, provider, list(map(_row_entry, rows)))


async def judge_records(
    session: AsyncSession,
    clock: Clock,
    provider: vop.VopProvider,
    records: Iterable[Mapping[str, Any]],
) -> list[Check]:
    """``judge`` for debtor records not stored yet, keyed by their row numbers."""
    return await _judge_entries(session, clock, provider, list(map(_record_entry, records)))


class _Questions(NamedTuple):
    """What a batch asks: the expected names, which entries have a valid IBAN (the only ones
    asked), the requests, and the distinct IBANs asked (for the final-decline lookup)."""

    names: list[str]
    asked: list[int]
    requests: list[vop.VopRequest]
    ibans: list[str]


def _questions(entries: list[tuple[Any, ...]]) -> _Questions:
    asked = [index for index, entry in enumerate(entries) if entry[3]]
    names = [full_name(entry[7], entry[8]) or "" for entry in entries]
    requests = [vop.VopRequest(entries[index][2], names[index]) for index in asked]
    return _Questions(names, asked, requests, sorted({request.iban for request in requests}))


async def _judge_entries(
    session: AsyncSession,
    clock: Clock,
    provider: vop.VopProvider,
    entries: list[tuple[Any, ...]],
) -> list[Check]:
    """Judge a batch set-wise: names, requests, verdicts and logs built in a few passes.

    The final-decline lookup is sent first and runs in the database while the provider answers
    and the verdicts are graded (only the risk classes need it), so its round trip overlaps the
    batch's CPU work instead of adding to it.
    """
    questions = _questions(entries)
    lookup = asyncio.ensure_future(_declined_ibans(session, questions.ibans))
    try:
        # One turn of the loop: the lookup is sent before the CPU-bound work below holds it.
        await asyncio.sleep(0)
        answers = await provider.check_many(questions.requests)
        checks = _graded(entries, questions.names, questions.asked, answers, clock.now())
    finally:
        # The caller gets its session back only once the lookup is over, whatever happened.
        await settle(lookup)
    declined = lookup.result()
    return _checks_declined(checks, entries, declined) if declined else checks


async def settle(task: asyncio.Future[Any]) -> None:
    """Wait until ``task`` is over, even if the caller is cancelled meanwhile (re-raised after).

    The decline lookup runs on the caller's session: left running while a cancellation (arq
    stopping a job) unwinds the caller, it would still hold the connection when the caller
    rolls back ("another operation is in progress"), and the connection would be thrown away.
    A failure of the lookup, when the caller is already failing, is marked retrieved (asyncio
    would log it as never retrieved); the caller's own error is the one that propagates.
    """
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError as exc:
            cancelled = exc
    if not task.cancelled():
        task.exception()
    if cancelled is not None:
        raise cancelled


def _graded(
    entries: list[tuple[Any, ...]],
    names: list[str],
    asked: list[int],
    answers: Sequence[vop.VopAnswer],
    now: datetime,
) -> list[Check]:
    """Each entry's check, its risk class as if its IBAN had no final decline (see
    ``_checks_declined``)."""
    by_index: list[vop.VopAnswer | None] = [None] * len(entries)
    for index, answer in zip(asked, answers, strict=True):
        by_index[index] = answer
    facts: list[vop.VopFacts] = []
    countries: list[str | None] = []
    for entry, name, reply in zip(entries, names, by_index, strict=True):
        iban, valid, country = entry[2], bool(entry[3]), entry[9]
        iban_country = iban[:2].upper() if valid and iban and iban[:2].isalpha() else None
        countries.append(iban_country)
        facts.append(
            (
                name,
                valid,
                valid and entry[5] is not None,
                vop.country_consistent(country, iban_country),
                reply,
            )
        )
    checks: list[Check] = []
    append = checks.append
    risk_class = vop.risk_class
    for entry, fact, verdict, iban_country in zip(
        entries, facts, vop.evaluate_many(facts), countries, strict=True
    ):
        key, upload_id, _, _, masked, bank_name, bic, _, _, country, amount = entry
        valid = fact[1]
        holder = verdict.holder_name
        log = (
            key,
            upload_id,
            masked,
            valid,
            fact[2],
            bank_name if valid else None,
            bic if valid else None,
            iban_country or country,
            verdict.score,
            verdict.label,
            verdict.result,
            verdict.epc_code,
            holder[:200] if holder else None,
            round(verdict.name_match.ratio),
            now,
        )
        risk = risk_class(verdict.score, amount, False)
        append(Check(key, log, valid, verdict.name_matched, risk))
    return checks


async def _mark_debtors(session: AsyncSession, now: datetime, checks: Sequence[Check]) -> set[int]:
    """Write the debtors' VOP fields where still unmarked; return the ids actually written.

    Not PostgreSQL's path (``_MARK_AND_LOG_PG`` marks and logs in one statement): one UPDATE …
    RETURNING per distinct outcome (a handful per batch), each taking the database's write
    lock, so a concurrent run's rows are never taken twice.
    """
    groups: dict[tuple[bool, bool, str], list[int]] = defaultdict(list)
    for check in checks:
        groups[(check.iban_valid, check.name_matched, check.risk_class)].append(check.debtor_id)
    taken: set[int] = set()
    for (valid, matched, risk), ids in groups.items():
        result = await session.execute(
            update(_DEBTORS)
            .where(Debtor.id.in_(ids), Debtor.risk_class.is_(None))
            .values(iban_valid=valid, name_matched=matched, risk_class=risk, updated_at=now)
            .returning(_DEBTORS.c.id)
        )
        taken.update(result.scalars().all())
    return taken


async def insert_logs(session: AsyncSession, logs: Sequence[Mapping[str, Any]]) -> None:
    """Insert log rows given as column values in bulk (see ``insert_log_rows``)."""
    await insert_log_rows(session, list(map(_log_row, logs)))


async def insert_log_rows(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert log rows in ``LOG_COLUMNS`` order: COPY on PostgreSQL, one executemany elsewhere."""
    if rows:
        await insert_rows(session, _VOP_LOGS, LOG_COLUMNS, rows)


async def write_checks(session: AsyncSession, clock: Clock, checks: Sequence[Check]) -> list[Check]:
    """Mark the debtors and insert the logs of the checks no other run wrote first.

    PostgreSQL: one statement does both. Elsewhere: the UPDATEs, then the logs of the debtors
    they took.
    """
    if not checks:
        return []
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        marks = [(c.name_matched, c.risk_class) for c in checks]
        params = {**_batch_params([c.log for c in checks], marks), "now": clock.now()}
        logged = (await session.execute(_MARK_AND_LOG_PG, params)).scalar_one() or []
        if len(logged) == len(checks):
            return list(checks)
        taken = set(logged)
    else:
        taken = await _mark_debtors(session, clock.now(), checks)
        await insert_log_rows(session, [c.log for c in checks if c.debtor_id in taken])
    return [c for c in checks if c.debtor_id in taken]


def _next_batch(upload_id: int, after_id: int, size: int) -> Select[Any]:
    """The next ``size`` debtors of an upload awaiting a check, in id order after ``after_id``.

    Read through ``ix_debtors_awaiting_check``, which holds only debtors awaiting a check: the
    upload's other debtors (all of them, once ingestion checked each chunk) are never read.
    """
    statement = (
        select(*_CANDIDATE_COLUMNS)
        .where(Debtor.upload_id == upload_id, Debtor.id > after_id, awaiting_check())
        .order_by(Debtor.id)
        .limit(size)
    )
    return cast("Select[Any]", statement)


async def check_batch(
    session: AsyncSession,
    clock: Clock,
    provider: vop.VopProvider,
    upload_id: int,
    after_id: int = 0,
    size: int = BATCH,
) -> BatchResult:
    """Check the next ``size`` debtors of an upload awaiting a check, ids above ``after_id``."""
    rows = (await session.execute(_next_batch(upload_id, after_id, size))).all()
    if not rows:
        return BatchResult([], None)
    checks = await judge(session, clock, provider, rows)
    fresh = await write_checks(session, clock, checks)
    return BatchResult(fresh, rows[-1].id)


def _candidates(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the VOP step checks: validated, with an IBAN."""
    pending = ValidationStatus.PENDING.value
    return [
        record
        for record in records
        if record["iban"] is not None and record["validation_status"] != pending
    ]


@dataclass(slots=True)
class _Prepared:
    """A chunk judged in the worker thread, but for the final declines (see ``prepare``)."""

    records: Sequence[dict[str, Any]]
    keys: list[int]
    entries: list[tuple[Any, ...]]
    ibans: list[str]
    # The checks as if no IBAN had a final decline; None when the provider failed.
    checks: list[Check] | None
    arrays: dict[str, Any] | None


class RecordChecks:
    """The VOP phase fused into ingestion (an ``ingestion.ChunkStep``).

    Each chunk's validated records are checked before they are stored, so the debtors are
    inserted with ``name_matched`` and ``risk_class`` already set (no UPDATE of freshly written
    rows), and the chunk's logs are written right after, in the chunk's transaction: a
    resumed ingestion job never logs a stored row twice. If the provider fails, the chunk is
    stored unchecked and ``failed`` is set; the VOP job checks those debtors later.

    With a ``vop.LocalVopProvider`` the ingestion also calls ``prepare`` on each chunk in the
    worker thread that derives it: the answers, verdicts and log rows are worked out there
    while the event loop waits on the previous chunk's statements, and ``before_insert`` only
    looks up the final declines and writes the verdicts into the records.
    """

    def __init__(self, clock: Clock, provider: vop.VopProvider) -> None:
        self.clock = clock
        self.provider = provider
        self.checked = 0
        self.failed = False
        self._pending: list[Check] = []
        self._arrays: dict[str, Any] | None = None
        # Chunks prepared in the worker thread, by the identity of their records list.
        self._prepared: dict[int, _Prepared] = {}

    def prepare(self, records: Sequence[dict[str, Any]]) -> None:
        """Judge a chunk ahead, in the worker thread (CPU only; no database, no event loop).

        The records are as derivation left them, validated but for the blacklist, which can
        make a valid record invalid but never pending, so the same records are candidates when
        ``before_insert`` sees them; it checks that they are, and judges afresh otherwise.
        """
        provider = self.provider
        if not isinstance(provider, vop.LocalVopProvider):
            return
        entries = list(map(_record_entry, _candidates(records)))
        if not entries:
            return
        questions = _questions(entries)
        keys = [entry[0] for entry in entries]
        try:
            answers = provider.answer_many(questions.requests)
        except VopUnavailable:
            self._prepared[id(records)] = _Prepared(records, keys, [], [], None, None)
            return
        checks = _graded(entries, questions.names, questions.asked, answers, self.clock.now())
        arrays = _batch_params([check.log for check in checks])
        self._prepared[id(records)] = _Prepared(
            records, keys, entries, questions.ibans, checks, arrays
        )

    async def before_insert(
        self, session: AsyncSession, upload_id: int, records: Sequence[dict[str, Any]]
    ) -> None:
        """Check the chunk's validated records with an IBAN and mark them."""
        self._pending, self._arrays = [], None
        prepared = self._prepared.pop(id(records), None)
        candidates = _candidates(records)
        if not candidates:
            return
        if (
            prepared is not None
            and prepared.records is records
            and prepared.keys == [record["row_number"] for record in candidates]
        ):
            if prepared.checks is None:
                self.failed = True
                return
            checks = prepared.checks
            declined = await _declined_ibans(session, prepared.ibans)
            if declined:
                checks = _checks_declined(checks, prepared.entries, declined)
            self._arrays = prepared.arrays
        else:
            try:
                checks = await judge_records(session, self.clock, self.provider, candidates)
            except VopUnavailable:
                self.failed = True
                return
        for record, check in zip(candidates, checks, strict=True):
            record["iban_valid"] = check.iban_valid
            record["name_matched"] = check.name_matched
            record["risk_class"] = check.risk_class
        self._pending = checks

    async def after_insert(
        self, session: AsyncSession, upload_id: int, records: Sequence[dict[str, Any]]
    ) -> None:
        """Write the chunk's logs now that its debtors have ids.

        PostgreSQL: one INSERT that finds the ids by row number itself. Elsewhere: one SELECT
        of the ids, then the bulk insert.
        """
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        arrays, self._arrays = self._arrays, None
        logs = [check.log for check in pending]
        connection = await session.connection()
        if connection.dialect.name == "postgresql":
            params = dict(arrays) if arrays is not None else _batch_params(logs)
            numbers = params["debtor_id"]
            params.update(chunk_upload=upload_id, first_row=min(numbers), last_row=max(numbers))
            result = await session.execute(_LOGS_BY_ROW_PG, params)
            written = result.rowcount  # type: ignore[attr-defined]
            if written != len(logs):
                # Every checked record was just stored; a log without its debtor is a bug.
                raise RuntimeError(f"{written} VOP logs written for {len(logs)} checks")
        else:
            numbers = [log[0] for log in logs]
            ids = dict(
                (
                    await session.execute(
                        select(Debtor.row_number, Debtor.id).where(
                            Debtor.upload_id == upload_id,
                            Debtor.row_number.between(min(numbers), max(numbers)),
                        )
                    )
                ).all()
            )
            await insert_log_rows(session, [(ids[log[0]], *log[1:]) for log in logs])
        self.checked += len(logs)


def _checks_declined(
    checks: list[Check], entries: list[tuple[Any, ...]], declined: AbstractSet[str]
) -> list[Check]:
    """Checks judged as if no IBAN were declined, with the risk classes of ``declined`` ones
    worked out again."""
    risk_class = vop.risk_class
    return [
        check._replace(risk_class=risk_class(check.log[8], entry[10], True))
        if entry[2] in declined
        else check
        for check, entry in zip(checks, entries, strict=True)
    ]


def record_progress(
    session: AsyncSession, clock: Clock, upload_id: int, checked: int, remaining: bool
) -> None:
    """One ``upload.progress`` event per batch (not one event per debtor: see the decisions)."""
    record_event(
        session,
        clock,
        type="upload.progress",
        object_type="upload",
        object_id=str(upload_id),
        obj={"id": upload_id, "phase": "vop", "checked": checked, "is_complete": not remaining},
    )


async def check_upload(
    session: AsyncSession,
    clock: Clock,
    provider: vop.VopProvider,
    upload_id: int,
    size: int = BATCH,
) -> int:
    """Check every debtor of an upload awaiting a check in the caller's transaction.

    For the request paths (a small upload, ``POST …/validate``); the job commits per batch.
    """
    total = 0
    after = 0
    while True:
        batch = await check_batch(session, clock, provider, upload_id, after, size)
        if batch.last_id is None:
            break
        after = batch.last_id
        total += len(batch.checks)
        record_progress(session, clock, upload_id, len(batch.checks), remaining=True)
    if total:
        record_progress(session, clock, upload_id, 0, remaining=False)
    return total


async def check_debtor(
    session: AsyncSession, clock: Clock, provider: vop.VopProvider, debtor: Debtor
) -> VopLog | None:
    """Check one debtor again (after ``validate`` or ``PUT``): a new log and a ``vop_log.created``.

    Every call is a new check, whatever the debtor's marker says; a debtor without an IBAN
    gets no log and keeps no risk class. Raises ``providers.VopUnavailable`` with nothing
    written when the provider fails.
    """
    if debtor.iban is None:
        debtor.risk_class = None
        debtor.name_matched = None
        await session.flush()
        return None
    # The provider is asked before anything is written: if it fails, the debtor is unchanged.
    checks = await judge(session, clock, provider, [debtor])
    now = clock.now()
    check = checks[0]
    log = VopLog(**check.log_values())
    session.add(log)
    debtor.iban_valid = check.iban_valid
    debtor.name_matched = check.name_matched
    debtor.risk_class = check.risk_class
    debtor.updated_at = now
    await session.flush()
    record_event(
        session,
        clock,
        type="vop_log.created",
        object_type="vop_log",
        object_id=str(log.id),
        obj=log_summary(log),
    )
    return log


def log_summary(log: VopLog) -> dict[str, Any]:
    """The JSON a ``vop_log.created`` event carries (the REST object's fields)."""
    return {
        "id": log.id,
        "debtor_id": log.debtor_id,
        "upload_id": log.upload_id,
        "iban_masked": log.iban_masked,
        "iban_valid": log.iban_valid,
        "bank_identified": log.bank_identified,
        "bank_name": log.bank_name,
        "bic": log.bic,
        "country": log.country,
        "vop_score": log.vop_score,
        "score_label": log.score_label,
        "result": log.result,
        "epc_code": log.epc_code,
        "is_positive": log.is_positive,
        "is_negative": log.is_negative,
        "created_at": log.created_at.isoformat(),
    }


async def uploads_awaiting_checks(session: AsyncSession, limit: int = 100) -> list[int]:
    """Finished uploads that still hold debtors awaiting a check (the job's safety net)."""
    rows = await session.scalars(
        select(Debtor.upload_id)
        .join(Upload, Upload.id == Debtor.upload_id)
        .where(awaiting_check(), Upload.status == UploadStatus.COMPLETED.value)
        .distinct()
        .limit(limit)
    )
    return list(rows.all())
