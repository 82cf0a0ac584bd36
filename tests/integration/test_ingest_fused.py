"""The ingestion job judges rows in memory and inserts them with their verdict; the result must
be exactly what storing them pending and validating them afterwards (stage A, then B) gives."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

from sqlalchemy import select

from debtgraph.domain.debtors import ingestion
from debtgraph.domain.debtors import validation as debtor_validation
from debtgraph.domain.debtors.models import BlacklistedIban, Debtor
from tests.integration.uploads_support import HEADER, valid_row

BLACKLISTED = "DE89370400440532013000"
ROWS = [
    valid_row(0),
    valid_row(1),  # DE89…: blacklisted below
    "Bad,Iban,ES00INVALID,150.00,Madrid,28001,Calle Mayor 1,,,",
    ",,DE89370400440532013000,-5,M,1,x,,,",  # blacklisted and invalid in several ways
    "Ana,Ruiz,ES9121000418450200051332,50001,Madrid,28001,Calle Mayor 3,,,",
    "Ã©ric,Bad,ES9121000418450200051332,10,MÃ¼nchen,28001,Calle Mayor 4,,,",
    valid_row(7),
]


async def _upload(db: Any, clock: Any, path: Path, size: int) -> Any:
    async with db() as session:
        upload = await ingestion.create_upload(
            session,
            clock,
            filename=path.name,
            original_filename=path.name,
            mime_type="text/csv",
            file_size=size,
            storage_path=str(path),
            total_records=len(ROWS),
            created_by=None,
        )
        await session.commit()
        return upload


async def _verdicts(db: Any, upload_id: int) -> list[tuple[Any, ...]]:
    async with db() as session:
        rows = await session.execute(
            select(
                Debtor.row_number,
                Debtor.validation_status,
                Debtor.validation_errors,
                Debtor.blacklisted,
                Debtor.validated_at.is_not(None),
            )
            .where(Debtor.upload_id == upload_id)
            .order_by(Debtor.row_number)
        )
        return [tuple(r) for r in rows]


async def test_fused_ingestion_equals_stage_a_then_stage_b(
    db: Any, clock: Any, tmp_path: Path, runtime: Any
) -> None:
    path = tmp_path / "debtors.csv"
    content = ("\n".join([HEADER, *ROWS]) + "\n").encode()
    path.write_bytes(content)
    async with db() as session:
        session.add(BlacklistedIban(iban=BLACKLISTED, created_at=clock.now()))
        await session.commit()

    fused = await _upload(db, clock, path, len(content))
    two_stage = await _upload(db, clock, path, len(content))
    async with db() as session:
        handle, rows = ingestion.read_rows_after(str(path), 1)
        with handle:
            async with aclosing(
                ingestion.record_chunks(rows, fused.id, clock, size=3, judge=True)
            ) as chunks:
                async for records in chunks:
                    upload = await session.get(type(fused), fused.id)
                    await ingestion.ingest_chunk(session, clock, upload, records)
        await session.commit()

        handle, rows = ingestion.read_rows_after(str(path), 1)
        with handle:
            async with aclosing(ingestion.record_chunks(rows, two_stage.id, clock)) as chunks:
                async for records in chunks:
                    await ingestion.insert_debtors(session, records)
        await debtor_validation.validate_upload_debtors(session, clock, two_stage.id)
        await session.commit()

    expected = await _verdicts(db, two_stage.id)
    assert await _verdicts(db, fused.id) == expected
    statuses = [v[1] for v in expected]
    assert statuses == ["valid", "invalid", "invalid", "invalid", "invalid", "invalid", "valid"]
    assert [v[3] for v in expected] == [False, True, False, True, False, False, False]
    assert expected[1][2] == ["IBAN is blacklisted"]
    async with db() as session:
        counted = await session.get(type(fused), fused.id)
        assert (counted.processed_records, counted.failed_records) == (2, 5)
