"""The VOP phase judged set-wise equals judging each debtor alone, stored rows and records alike."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors.csv_reader import ParsedRow
from debtgraph.domain.debtors.fields import full_name
from debtgraph.domain.debtors.models import Debtor, FinalDecline, Upload
from debtgraph.domain.payments import verification, vop
from debtgraph.domain.payments.models import BillingAttempt, VopLog
from debtgraph.domain.payments.providers import VopUnavailable
from debtgraph.jobs import uploads as upload_jobs
from tests.integration.uploads_support import csv_text, upload

DECLINED = "DE89370400440532013000"
ROWS = [
    # name, iban, amount, country: an ordinary match, each sandbox outcome, an invalid IBAN,
    # an inconsistent country, an amount over 1000, a twin name, an IBAN with a final decline.
    ("Maria", "Rodriguez", "ES9121000418450200051332", "150.00", ""),
    ("Ana", "Núñez", "ES8001822370440201234567", "20.00", "ES"),
    ("Jürgen", "Groß", "ES1600491500040511111111", "20.00", ""),
    ("Daan", "de Vries", "ES1600810200220000000123", "20.00", ""),
    ("Émile", "Lefèvre", "FR7630004000000000000000151", "20.00", ""),
    ("Giulia", "Rossi", "ES8099990001450000000001", "20.00", ""),
    ("Bad", "Iban", "ES00INVALID", "20.00", ""),
    ("Anke", "Schäfer", "NL91ABNA0417164300", "20.00", "DE"),
    ("Lucía", "García", "IT60X0542811101000000123456", "1500.00", ""),
    ("Maria", "Rodriguez", "FR1420041010050500013M02606", "150.00", ""),
    ("Hans", "Declined", DECLINED, "99.00", ""),
]


def _parsed() -> list[ParsedRow]:
    keys = ("first_name", "last_name", "iban", "amount", "country")
    return [
        ParsedRow(number + 2, {**dict(zip(keys, row, strict=True)), "city": "Madrid"})
        for number, row in enumerate(ROWS)
    ]


def _reference(row: Any, declined: set[str]) -> tuple[Any, ...]:
    """What one debtor's check gives with the per-check functions, one at a time."""
    name = full_name(row.first_name, row.last_name) or ""
    valid = bool(row.iban_valid)
    answer = vop.SandboxVopProvider().answer(row.iban, name) if valid else None
    iban_country = row.iban[:2] if valid else None
    verdict = vop.evaluate(
        name,
        iban_valid=valid,
        bank_identified=valid and row.bank_name is not None,
        country_is_consistent=vop.country_consistent(row.country, iban_country),
        answer=answer,
    )
    risk = vop.risk_class(verdict.score, row.amount, row.iban in declined)
    return (
        verdict.score,
        verdict.label,
        verdict.result,
        verdict.epc_code,
        verdict.holder_name,
        round(verdict.name_match.ratio),
        iban_country or row.country,
        valid and row.bank_name is not None,
        verdict.name_matched,
        risk,
    )


def _seen(check: verification.Check) -> tuple[Any, ...]:
    log = check.log_values()
    return (
        log["vop_score"],
        log["score_label"],
        log["result"],
        log["epc_code"],
        log["provider_name"],
        log["name_ratio"],
        log["country"],
        log["bank_identified"],
        check.name_matched,
        check.risk_class,
    )


async def test_batched_checks_equal_one_by_one(db: Any, clock: Any) -> None:
    provider = vop.SandboxVopProvider()
    async with db() as session:
        upload = await ingestion.create_upload(
            session, clock, filename="v.csv", original_filename="v.csv", mime_type="text/csv",
            file_size=1, storage_path="/nonexistent", total_records=len(ROWS), created_by=None,
        )  # fmt: skip
        records = ingestion.debtor_records(upload.id, _parsed(), clock.now(), judge=True)
        await ingestion.insert_debtors(session, records)
        declined_id = await session.scalar(select(Debtor.id).where(Debtor.iban == DECLINED))
        session.add(
            BillingAttempt(
                debtor_id=declined_id, upload_id=upload.id, transaction_id="TXN-DECLINED",
                amount=Decimal("99.00"), status="declined", error_code="MD01",
                created_at=clock.now(), updated_at=clock.now(),
            )
        )  # fmt: skip
        await session.flush()
        # The decline as billing.settle notes it (tests/integration/test_billing.py).
        attempt_id = await session.scalar(
            select(BillingAttempt.id).where(BillingAttempt.transaction_id == "TXN-DECLINED")
        )
        session.add(FinalDecline(attempt_id=attempt_id, iban=DECLINED, created_at=clock.now()))
        await session.flush()
        stored = (
            await session.execute(
                select(*verification._CANDIDATE_COLUMNS)
                .where(Debtor.upload_id == upload.id)
                .order_by(Debtor.row_number)
            )
        ).all()

        from_rows = await verification.judge(session, clock, provider, stored)
        from_records = await verification.judge_records(session, clock, provider, records)

        expected = [_reference(row, {DECLINED}) for row in stored]
        assert [_seen(check) for check in from_rows] == expected
        assert [_seen(check) for check in from_records] == expected
        assert [c.debtor_id for c in from_rows] == [row.id for row in stored]
        assert [c.debtor_id for c in from_records] == [r["row_number"] for r in records]
        # Every outcome the sandbox documents is among them, and the decline made one high.
        assert {e[2] for e in expected} == {
            "verified", "likely_verified", "inconclusive", "mismatch", "rejected",
        }  # fmt: skip
        assert expected[-1][-1] == "high"
        assert expected[-1][2] == "verified"
        assert expected[8][-1] == "medium"  # over 1000

        # Judged ahead in the ingestion's worker thread (a local provider), the same checks:
        # the final decline is looked up when the chunk is about to be stored.
        fresh = ingestion.debtor_records(upload.id, _parsed(), clock.now(), judge=True)
        step = verification.RecordChecks(clock, provider)
        step.prepare(fresh)
        assert step._prepared
        await step.before_insert(session, upload.id, fresh)
        assert not step._prepared
        assert [_seen(check) for check in step._pending] == expected
        assert [r["risk_class"] for r in fresh] == [e[-1] for e in expected]
        await session.rollback()


class _LocalOutage:
    """A local provider that fails."""

    async def check(self, iban: str, name: str) -> vop.VopAnswer:
        raise VopUnavailable("down")

    async def check_many(self, requests: Any) -> list[vop.VopAnswer]:
        raise VopUnavailable("down")

    def answer_many(self, requests: Any) -> list[vop.VopAnswer]:
        raise VopUnavailable("down")


async def test_a_failed_local_provider_leaves_the_chunk_unchecked(db: Any, clock: Any) -> None:
    async with db() as session:
        upload = await ingestion.create_upload(
            session, clock, filename="v.csv", original_filename="v.csv", mime_type="text/csv",
            file_size=1, storage_path="/nonexistent", total_records=len(ROWS), created_by=None,
        )  # fmt: skip
        records = ingestion.debtor_records(upload.id, _parsed(), clock.now(), judge=True)
        step = verification.RecordChecks(clock, _LocalOutage())
        step.prepare(records)
        await ingestion.ingest_chunk(session, clock, upload, records, step)
        await session.commit()
        logs = await session.scalar(select(func.count()).select_from(VopLog))
        marked = await session.scalar(
            select(func.count())
            .select_from(Debtor)
            .where(Debtor.upload_id == upload.id, Debtor.risk_class.is_not(None))
        )
    assert step.failed
    assert (logs, marked, step.checked) == (0, 0, 0)


async def test_a_chunk_is_checked_in_a_fixed_number_of_statements(
    db: Any, clock: Any, sql_counter: Any
) -> None:
    provider = vop.SandboxVopProvider()
    counts = []
    for copies in (1, 8):
        async with db() as session:
            upload = await ingestion.create_upload(
                session, clock, filename="v.csv", original_filename="v.csv",
                mime_type="text/csv", file_size=1, storage_path="/nonexistent",
                total_records=len(ROWS) * copies, created_by=None,
            )  # fmt: skip
            await session.commit()
            upload_id = upload.id
            rows = [ParsedRow(n + 2, row.data) for n, row in enumerate(_parsed() * copies)]
            for ahead in (False, True):
                records = ingestion.debtor_records(upload_id, rows, clock.now(), judge=True)
                step = verification.RecordChecks(clock, provider)
                if ahead:
                    step.prepare(records)
                with sql_counter:
                    await step.before_insert(session, upload_id, records)
                    await ingestion.insert_debtors(session, records)
                    await step.after_insert(session, upload_id, records)
                counts.append((ahead, sql_counter.count))
                assert step.checked == len(rows)
                await session.rollback()
    # The decline lookup and the logs (plus the ids on SQLite), whatever the chunk's size.
    assert counts[0] == counts[2]
    assert counts[1] == counts[3]


async def test_a_completed_upload_is_stored_validated_enriched_and_scored(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    drain: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 40)
    response = await upload(client, admin_headers, csv_text(130, bad_every=6))
    assert response.status_code == 202, response.text
    upload_id = response.json()["data"]["id"]
    await drain()
    async with db() as session:
        status = await session.scalar(select(Upload.status).where(Upload.id == upload_id))
        unfinished = await session.scalar(
            select(func.count())
            .select_from(Debtor)
            .where(
                Debtor.upload_id == upload_id,
                (Debtor.validation_status == "pending")
                | Debtor.iban_masked.is_(None)
                | Debtor.risk_class.is_(None),
            )
        )
        logs = (
            await session.execute(
                select(VopLog.debtor_id, func.count())
                .where(VopLog.upload_id == upload_id)
                .group_by(VopLog.debtor_id)
            )
        ).all()
    assert status == "completed"
    # Every row with its verdict, its IBAN enrichment and its risk class, and one log each.
    assert unfinished == 0
    assert len(logs) == 130
    assert {count for _, count in logs} == {1}


async def test_every_log_carries_its_debtors_upload(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    drain: Any,
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A log's upload id has no foreign key of its own (see the model): each of the three
    writers (the ingestion's chunks, a stored batch, one debtor's check) copies its debtor's."""
    monkeypatch.setattr(upload_jobs, "CHUNK_ROWS", 40)
    first = await upload(client, admin_headers, csv_text(90))
    second = await upload(client, admin_headers, csv_text(50))
    assert {first.status_code, second.status_code} <= {201, 202}
    await drain()
    upload_id = first.json()["data"]["id"]
    async with db() as session:
        # Half the first upload's debtors unchecked again, for the stored-batch writer.
        await session.execute(
            VopLog.__table__.delete().where(
                VopLog.debtor_id.in_(
                    select(Debtor.id).where(Debtor.upload_id == upload_id, Debtor.id % 2 == 0)
                )
            )
        )
        await session.execute(
            Debtor.__table__.update()
            .where(Debtor.upload_id == upload_id, Debtor.id % 2 == 0)
            .values(risk_class=None)
        )
        stored = await verification.check_upload(
            session, clock, vop.SandboxVopProvider(), upload_id, size=7
        )
        await session.commit()
        one = await session.scalar(select(Debtor.id).where(Debtor.upload_id == upload_id))
    assert stored == 45
    validated = await client.post(f"/api/admin/debtors/{one}/validate", headers=admin_headers)
    assert validated.status_code == 200
    async with db() as session:
        per_upload = dict(
            (
                await session.execute(
                    select(VopLog.upload_id, func.count()).group_by(VopLog.upload_id)
                )
            ).all()
        )
        astray = await session.scalar(
            select(func.count())
            .select_from(VopLog)
            .outerjoin(Debtor, Debtor.id == VopLog.debtor_id)
            .where((Debtor.id.is_(None)) | (Debtor.upload_id != VopLog.upload_id))
        )
    assert per_upload == {upload_id: 91, second.json()["data"]["id"]: 50}
    assert astray == 0


async def test_debtors_awaiting_a_check_are_read_through_their_partial_index(
    db: Any, clock: Any
) -> None:
    """The batches after an upload completes, and the sweep, read only the debtors awaiting a
    check: the statement names the rule's literal, so PostgreSQL can prove the index holds
    them (a parameter for the status would not let it)."""
    async with db() as session:
        upload = await ingestion.create_upload(
            session, clock, filename="v.csv", original_filename="v.csv", mime_type="text/csv",
            file_size=1, storage_path="/nonexistent", total_records=len(ROWS), created_by=None,
        )  # fmt: skip
        records = ingestion.debtor_records(upload.id, _parsed(), clock.now(), judge=True)
        await ingestion.insert_debtors(session, records)
        statement = verification._next_batch(upload.id, 0, 100)
        sql = str(statement.compile(session.bind, compile_kwargs={"render_postcompile": True}))
        assert "validation_status != 'pending'" in sql, sql
        # All stored validated and unchecked: each is a candidate, in id order.
        rows = (await session.execute(statement)).all()
        assert [row.id for row in rows] == sorted(row.id for row in rows)
        assert len(rows) == sum(1 for r in records if r["iban"] is not None)
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            compiled = statement.compile(session.bind, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await session.execute(text(f"EXPLAIN {compiled}"))).scalars())
            assert "ix_debtors_awaiting_check" in plan, plan
        await session.rollback()
