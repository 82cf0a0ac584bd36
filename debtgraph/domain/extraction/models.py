"""A stored extraction result, kept so a client can read it back by its ``extraction_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from debtgraph.domain.core.base import Base


class ExtractionResult(Base):
    """What was read from one PDF for one creditor (the PDF itself is not kept)."""

    __tablename__ = "extraction_results"
    __table_args__ = (Index("ix_extraction_results_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The platform whose key (or whose creditor's token) asked for it, for the record.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platforms.id", ondelete="SET NULL"), default=None
    )
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    ocr_pages: Mapped[list[Any]] = mapped_column(default=list)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    field_confidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    missing_fields: Mapped[list[Any]] = mapped_column(default=list)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
