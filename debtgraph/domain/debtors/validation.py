"""Stage B of an upload: apply the validation rules to debtors, set-wise.

An upload's pending debtors are read in keyset chunks of plain columns (no ORM objects), the
chunk's IBANs are checked against the blacklist in one query, the rules run in memory, and the
results are written back with one UPDATE per distinct outcome (all valid rows of a chunk share
one, and invalid rows share one per distinct list of messages). So a chunk costs a handful of
statements whatever its size, never one round trip per row.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
from sqlalchemy import (
    Text,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.base import UTCDateTime
from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.concurrency import lock_row
from debtgraph.domain.core.database import among_texts
from debtgraph.domain.core.errors import InvalidTransition
from debtgraph.domain.debtors.models import (
    BlacklistedIban,
    Debtor,
    DebtorStatus,
    Upload,
    ValidationStatus,
    billable_condition,
)
from debtgraph.domain.debtors.rules import (
    IBAN_INVALID,
    MAX_CELL_CHARS,
    ValidationOutcome,
    cell_length_errors,
    validate_debtor,
)

CHUNK_ROWS: Final = 2000

# A chunk's outcomes in one statement: PostgreSQL joins the rows to arrays of their results.
_OUTCOMES_FROM_ARRAYS: Final = text(
    "UPDATE debtors SET validation_status = v.status, validation_errors = v.errors::jsonb,"
    " blacklisted = v.blacklisted, validated_at = :now, updated_at = :now"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]),"
    " CAST(:errors AS text[]), CAST(:blacklisted AS boolean[]))"
    " AS v(id, status, errors, blacklisted) WHERE debtors.id = v.id"
).bindparams(bindparam("now", type_=UTCDateTime()))

_RULE_COLUMNS: Final = (
    Debtor.id,
    Debtor.row_number,
    Debtor.iban,
    Debtor.iban_valid,
    Debtor.first_name,
    Debtor.last_name,
    Debtor.amount,
    Debtor.city,
    Debtor.postcode,
    Debtor.street,
    Debtor.street_number,
    Debtor.floor,
    Debtor.door,
    Debtor.apartment,
    Debtor.currency,
    Debtor.sepa_type,
    # The 1000-character cell rule reads every column of the row, not only the derived fields;
    # but only a row whose columns take more than that as JSON text can hold such a cell, so
    # the others' raw_data (nearly every row) is neither sent nor decoded.
    type_coerce(
        case(
            (func.length(cast(Debtor.raw_data, Text)) > MAX_CELL_CHARS, Debtor.raw_data),
            else_=null(),
        ),
        Debtor.raw_data.type,
    ).label("raw_data"),
)


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A debtor row that failed validation, with the first failing message."""

    row_number: int
    message: str


@dataclass
class ValidationRun:
    """What one validation pass did."""

    total: int = 0
    valid: int = 0
    invalid: int = 0
    blacklisted: int = 0
    failures: list[RowFailure] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ValidationStats:
    """An upload's debtors by validation outcome, as ``validation-stats`` shows them."""

    total: int = 0
    valid: int = 0
    invalid: int = 0
    pending: int = 0
    blacklisted: int = 0
    ready_for_sync: int = 0


async def blacklisted_among(session: AsyncSession, ibans: Iterable[str | None]) -> set[str]:
    """The given (normalised) IBANs that are on the blacklist, in one query."""
    wanted = {iban for iban in ibans if iban}
    if not wanted:
        return set()
    matching, params = await among_texts(session, BlacklistedIban.iban, list(wanted), "ibans")
    rows = await session.scalars(select(BlacklistedIban.iban).where(matching), params)
    return set(rows.all())


_RULE_FIELDS: Final = frozenset(
    (
        "iban",
        "first_name",
        "last_name",
        "amount",
        "city",
        "postcode",
        "street",
        "street_number",
        "floor",
        "door",
        "apartment",
        "currency",
        "sepa_type",
    )
)


def outcome_for(row: Any, blacklisted: bool) -> ValidationOutcome:
    """Validate a debtor's stored fields and raw columns (a row or a Debtor object)."""
    fields = {key: getattr(row, key) for key in _RULE_FIELDS}
    return _judge(fields, row.raw_data, row.iban_valid, blacklisted)


def _judge(
    fields: dict[str, Any],
    raw: Mapping[str, Any] | None,
    iban_valid: bool | None,
    blacklisted: bool,
) -> ValidationOutcome:
    outcome = validate_debtor(
        fields,
        blacklisted=blacklisted,
        # The verdict stored with the row was taken on the full IBAN by the same rules when
        # the row was derived (stage A or a PUT): no need to parse the IBAN a second time.
        iban_valid=iban_valid,
        raw=raw,
    )
    if fields["iban"] and iban_valid is False and IBAN_INVALID not in outcome.errors:
        # The stored IBAN is cut to its column's 34 characters; the verdict on the full value,
        # taken when the row was stored, is the one that counts.
        cells = cell_length_errors(raw)
        errors = [*cells, IBAN_INVALID, *outcome.errors[len(cells) :]]
        return ValidationOutcome(valid=False, errors=errors, blacklisted=blacklisted)
    return outcome


def apply_outcome(record: dict[str, Any], blacklisted: bool, now: datetime) -> ValidationOutcome:
    """Validate a not-yet-stored debtor record and write the verdict into it (stage B in memory)."""
    # The record holds every rule field (and none the rules read besides), so it is judged
    # as it is, without a copy of them.
    whole = record.keys() >= _RULE_FIELDS
    fields = record if whole else {key: record.get(key) for key in _RULE_FIELDS}
    outcome = _judge(fields, record.get("raw_data"), record.get("iban_valid"), blacklisted)
    record["validation_status"] = _status_of(outcome)
    record["validation_errors"] = list(outcome.errors) if outcome.errors else None
    record["blacklisted"] = outcome.blacklisted
    record["validated_at"] = now
    return outcome


async def validate_records(
    session: AsyncSession,
    clock: Clock,
    records: list[dict[str, Any]],
    *,
    collect_failures: bool = False,
) -> ValidationRun:
    """Stage B for records about to be inserted: one blacklist query, verdicts in the records.

    Records already judged without the blacklist (``apply_outcome`` in a worker thread) are
    only judged again when their IBAN turns out to be listed.
    """
    listed = await blacklisted_among(session, (r.get("iban") for r in records))
    now = clock.now()
    run = ValidationRun()
    for record in records:
        on_list = record.get("iban") in listed
        if record.get("validated_at") is None or on_list:
            apply_outcome(record, on_list, now)
        run.total += 1
        if record["validation_status"] == ValidationStatus.VALID.value:
            run.valid += 1
        else:
            run.invalid += 1
            run.blacklisted += bool(record["blacklisted"])
            if collect_failures and record["validation_errors"]:
                run.failures.append(
                    RowFailure(record["row_number"], record["validation_errors"][0])
                )
    return run


def _status_of(outcome: ValidationOutcome) -> str:
    return ValidationStatus.VALID.value if outcome.valid else ValidationStatus.INVALID.value


async def _write_outcomes(
    session: AsyncSession, clock: Clock, outcomes: list[tuple[int, ValidationOutcome]]
) -> None:
    """Write the outcomes: one UPDATE from arrays on PostgreSQL, one per distinct outcome else."""
    if not outcomes:
        return
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        messages = [orjson.dumps(o.errors).decode() if o.errors else None for _, o in outcomes]
        await session.execute(
            _OUTCOMES_FROM_ARRAYS,
            {
                "ids": [debtor_id for debtor_id, _ in outcomes],
                "statuses": [_status_of(outcome) for _, outcome in outcomes],
                "errors": messages,
                "blacklisted": [outcome.blacklisted for _, outcome in outcomes],
                "now": clock.now(),
            },
        )
        return
    groups: dict[tuple[bool, tuple[str, ...], bool], list[int]] = defaultdict(list)
    for debtor_id, outcome in outcomes:
        groups[(outcome.valid, tuple(outcome.errors), outcome.blacklisted)].append(debtor_id)
    now = clock.now()
    for (valid, errors, blacklisted), ids in groups.items():
        await session.execute(
            update(Debtor)
            .where(Debtor.id.in_(ids))
            .values(
                validation_status=(
                    ValidationStatus.VALID.value if valid else ValidationStatus.INVALID.value
                ),
                validation_errors=list(errors) if errors else null(),
                blacklisted=blacklisted,
                validated_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


async def _pending_chunk(
    session: AsyncSession, upload_id: int, after_id: int, chunk_size: int
) -> tuple[list[Any], set[str]]:
    """The next pending debtors of an upload after ``after_id``, and which of their IBANs are
    blacklisted."""
    rows = (
        await session.execute(
            select(*_RULE_COLUMNS)
            .where(
                Debtor.upload_id == upload_id,
                Debtor.validation_status == ValidationStatus.PENDING.value,
                Debtor.id > after_id,
            )
            .order_by(Debtor.id)
            .limit(chunk_size)
        )
    ).all()
    if not rows:
        return [], set()
    return list(rows), await blacklisted_among(session, (row.iban for row in rows))


def _evaluate(rows: list[Any], listed: set[str]) -> list[tuple[Any, ValidationOutcome]]:
    """Apply the rules to a chunk of rows (CPU only; may run in a worker thread)."""
    return [(row, outcome_for(row, row.iban in listed)) for row in rows]


async def validate_upload_debtors(
    session: AsyncSession,
    clock: Clock,
    upload_id: int,
    *,
    collect_failures: bool = False,
    chunk_size: int = CHUNK_ROWS,
) -> ValidationRun:
    """Validate every pending debtor of an upload, chunk by chunk; counters are not touched."""
    run = ValidationRun()
    rows, listed = await _pending_chunk(session, upload_id, 0, chunk_size)
    outcomes = _evaluate(rows, listed)
    while outcomes:
        # The next chunk (ids above this one's, so writing this one cannot change it) is read
        # first, so its rules run in a worker thread while this chunk's UPDATE runs.
        rows, listed = await _pending_chunk(session, upload_id, rows[-1].id, chunk_size)
        evaluating = asyncio.ensure_future(asyncio.to_thread(_evaluate, rows, listed))
        try:
            await _write_outcomes(session, clock, [(row.id, o) for row, o in outcomes])
        finally:
            if not evaluating.done():
                await asyncio.wait([evaluating])
        for row, outcome in outcomes:
            run.total += 1
            if outcome.valid:
                run.valid += 1
                continue
            run.invalid += 1
            run.blacklisted += outcome.blacklisted
            if collect_failures and outcome.first_error is not None:
                run.failures.append(RowFailure(row.row_number, outcome.first_error))
        outcomes = evaluating.result()
    return run


IN_COLLECTION: Final = "A debtor in collection cannot be changed."


async def lock_changeable(session: AsyncSession, debtor_id: int, action: str) -> Debtor | None:
    """The debtor, write-locked until the transaction ends, if an operator may still change it.

    Only a ``pending`` debtor may be edited or validated again: once billing has claimed it,
    its retries read its row as it is, so a new IBAN or a cleared flag would be charged
    unchecked. The lock orders this against billing's claim of the same row. None when there
    is no such debtor; InvalidTransition when it is in (or past) collection.
    """
    if not await lock_row(session, Debtor, debtor_id):
        return None
    debtor = await session.get(Debtor, debtor_id, populate_existing=True)
    if debtor is None:
        return None
    if debtor.status != DebtorStatus.PENDING.value:
        raise InvalidTransition(debtor.status, action, IN_COLLECTION)
    return debtor


async def validate_one(session: AsyncSession, clock: Clock, debtor: Debtor) -> ValidationOutcome:
    """Validate one debtor whatever its current state and write the result onto it."""
    listed = await blacklisted_among(session, [debtor.iban])
    outcome = outcome_for(debtor, debtor.iban in listed)
    now = clock.now()
    debtor.validation_status = _status_of(outcome)
    debtor.validation_errors = list(outcome.errors) or None
    debtor.blacklisted = outcome.blacklisted
    debtor.validated_at = now
    debtor.updated_at = now
    await session.flush()
    return outcome


async def recount(session: AsyncSession, clock: Clock, upload: Upload) -> None:
    """Set an upload's counters from its debtors: processed = valid rows, failed = invalid."""
    counts = dict(
        (
            await session.execute(
                select(Debtor.validation_status, func.count())
                .where(Debtor.upload_id == upload.id)
                .group_by(Debtor.validation_status)
            )
        ).all()
    )
    upload.processed_records = int(counts.get(ValidationStatus.VALID.value, 0))
    upload.failed_records = int(counts.get(ValidationStatus.INVALID.value, 0))
    upload.updated_at = clock.now()
    await session.flush()


async def stats_by_upload(
    session: AsyncSession, upload_ids: Collection[int]
) -> dict[int, ValidationStats]:
    """Validation stats of several uploads in one grouped query."""
    if not upload_ids:
        return {}
    # Billable (ready for sync) is one rule: valid, pending, VOP-checked and not high risk.
    ready = case((billable_condition(), 1), else_=0)
    rows = (
        await session.execute(
            select(
                Debtor.upload_id,
                Debtor.validation_status,
                Debtor.blacklisted,
                func.count(),
                func.sum(ready),
            )
            .where(Debtor.upload_id.in_(set(upload_ids)))
            .group_by(Debtor.upload_id, Debtor.validation_status, Debtor.blacklisted)
        )
    ).all()
    tallies: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for upload_id, status, blacklisted, count, pending_status in rows:
        tally = tallies[upload_id]
        tally["total"] += count
        if status == ValidationStatus.VALID.value:
            tally["valid"] += count
            tally["ready_for_sync"] += int(pending_status or 0)
        elif status == ValidationStatus.PENDING.value:
            tally["pending"] += count
        elif blacklisted:
            tally["blacklisted"] += count
        else:
            tally["invalid"] += count
    return {upload_id: ValidationStats(**tallies.get(upload_id, {})) for upload_id in upload_ids}
