"""Storing an extraction and shaping it as the seed's ``ExtractionResult``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from debtgraph.domain.core.clock import Clock
from debtgraph.domain.core.secrets import public_id
from debtgraph.domain.extraction.models import ExtractionResult

PREFIX = "ext"


def store(
    session: AsyncSession,
    clock: Clock,
    extracted: dict[str, Any],
    *,
    user_id: int,
    platform_id: int | None,
    filename: str | None,
) -> ExtractionResult:
    """Add the row for an extraction; its id is also written into ``data.metadata``."""
    row_id = public_id(PREFIX)
    data = dict(extracted["data"])
    # Posted back as it is, the receivable keeps a reference to what it was drafted from.
    data["metadata"] = {**data.get("metadata", {}), "extraction_id": row_id}
    row = ExtractionResult(
        public_id=row_id,
        user_id=user_id,
        platform_id=platform_id,
        filename=(filename or "")[:255] or None,
        page_count=int(extracted.get("page_count", 0)),
        ocr_pages=list(extracted.get("ocr_pages", [])),
        confidence=float(extracted["confidence"]),
        data=data,
        field_confidence=dict(extracted["field_confidence"]),
        missing_fields=list(extracted["missing_fields"]),
        warnings=list(extracted["warnings"]),
        created_at=clock.now(),
    )
    session.add(row)
    return row
