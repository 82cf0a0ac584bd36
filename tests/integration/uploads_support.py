"""CSV fixtures and helpers shared by the upload, debtor, blacklist and dashboard tests."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from debtgraph.domain.debtors.models import Debtor, Upload

HEADER = "first_name,last_name,iban,amount,city,postcode,address,country,email,custom_field"
VALID_IBANS = [
    "ES9121000418450200051332",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "IT60X0542811101000000123456",
]
UNAUTH = {"message": "Unauthenticated.", "status": 401}


def valid_row(index: int) -> str:
    iban = VALID_IBANS[index % len(VALID_IBANS)]
    return (
        f"Maria{index},Rodriguez,{iban},150.00,Madrid,28001,Calle Mayor {index},,"
        f"m{index}@example.com,extra{index}"
    )


def csv_text(rows: int, *, bad_every: int = 0) -> str:
    lines = [HEADER]
    for i in range(rows):
        if bad_every and i % bad_every == 0:
            lines.append(f"Bad{i},Row,ES00INVALID,150.00,Madrid,28001,Calle Mayor 1,,,")
        else:
            lines.append(valid_row(i))
    return "\n".join(lines) + "\n"


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: str | bytes,
    filename: str = "december_debtors.csv",
    content_type: str = "text/csv",
) -> httpx.Response:
    raw = content.encode() if isinstance(content, str) else content
    return await client.post(
        "/api/admin/uploads",
        files={"file": (filename, raw, content_type)},
        headers=headers,
    )


async def counts(db: Any) -> tuple[int, int]:
    """(uploads, debtors) in the database."""
    from sqlalchemy import func, select

    from debtgraph.domain.debtors.models import Debtor, Upload

    async with db() as session:
        uploads = await session.scalar(select(func.count()).select_from(Upload))
        debtors = await session.scalar(select(func.count()).select_from(Debtor))
    return int(uploads or 0), int(debtors or 0)


async def set_upload_counts(db: Any, upload_id: int, total: int, processed: int) -> None:
    """Give an upload row figures no small test file produces (e.g. 203 valid of 20,000)."""
    async with db() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == upload_id)
            .values(
                total_records=total,
                processed_records=processed,
                failed_records=total - processed,
                status="completed",
            )
        )
        await session.commit()


async def set_debtor_status(db: Any, debtor_id: int, status: str) -> None:
    """Put a debtor where billing would have (e.g. ``processing``) without a gateway round."""
    async with db() as session:
        await session.execute(update(Debtor).where(Debtor.id == debtor_id).values(status=status))
        await session.commit()


async def queued_upload(
    db: Any, clock: Any, path: Any, rows: int, range_rows: int, *, ranged: bool = True
) -> int:
    """A large upload stored and cut into ranges, as the upload request leaves it (queued);
    without ``ranged`` it has no ranges yet (the job then reads it as one)."""
    return await queued_file(
        db, clock, path, csv_text(rows, bad_every=10), range_rows, ranged=ranged
    )


async def queued_file(
    db: Any, clock: Any, path: Any, content: str, range_rows: int, *, ranged: bool = True
) -> int:
    """``queued_upload`` of a file of the caller's own ``content``."""
    import io

    from debtgraph.domain.debtors import ingestion, ranges

    summary = ingestion.store_and_inspect(
        io.BytesIO(content.encode()),
        path,
        max_bytes=10**8,
        max_mb=100,
        sync_limit=100,
        range_rows=range_rows,
    )
    async with db() as session:
        row = await ingestion.create_upload(
            session,
            clock,
            filename="x.csv",
            original_filename="x.csv",
            mime_type="text/csv",
            file_size=summary.size,
            storage_path=str(path),
            total_records=summary.total_rows,
            created_by=None,
        )
        if ranged:
            ranges.add_ranges(session, row, summary.ranges)
        await session.commit()
        return int(row.id)
