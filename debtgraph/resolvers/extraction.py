"""Invoice extraction for both faces: read a PDF for a creditor within reach, store, read back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, BinaryIO

from sqlalchemy import select

from debtgraph.domain.core.errors import INVALID_CHARACTER, NUL_MESSAGE, refuse_nul_file_name
from debtgraph.domain.creditors.models import User
from debtgraph.domain.extraction import pdf, results
from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.domain.extraction.runner import Limits, extract_pdf
from debtgraph.resolvers.context import Context
from debtgraph.resolvers.creditors import get_user, require_scope, user_visible_condition
from debtgraph.resolvers.errors import FieldError, InputError, NotFound
from debtgraph.resolvers.loaders import Page, PageKey, Window
from debtgraph.resolvers.permissions import RECEIVABLES_READ, RECEIVABLES_WRITE

# Extracting stores a draft for a receivable: it is a receivable write (PRODUCT-DECISIONS).
FILE_REQUIRED = "The file field is required: a PDF sent as multipart/form-data."
USER_REQUIRED = "user_id is required."
# Multipart framing around the PDF: headers, boundaries and the user_id field.
MULTIPART_OVERHEAD = 64 * 1024


def refused(exc: pdf.PdfRefused) -> InputError:
    """The 400 for a file the extractor will not read."""
    return InputError([FieldError("file", exc.code, exc.message)])


def too_large() -> InputError:
    """The 400 for a PDF over 10 MB."""
    return refused(pdf.TOO_LARGE)


def check_content_length(ctx: Context, header: str | None) -> None:
    """Refuse, before reading it, a request whose declared size is already past the limit."""
    require_scope(ctx, RECEIVABLES_WRITE)
    if header is None or not (header.strip().isascii() and header.strip().isdigit()):
        return
    if int(header) > pdf.MAX_BYTES + MULTIPART_OVERHEAD:
        raise too_large()


def _read_capped(stream: BinaryIO) -> bytes:
    stream.seek(0)
    data = stream.read(pdf.MAX_BYTES + 1)
    if len(data) > pdf.MAX_BYTES:
        raise too_large()
    return data


def _limits(ctx: Context) -> Limits:
    settings = ctx.settings
    timeout = settings.extraction_timeout_seconds
    return Limits(
        timeout=timeout, engine=pdf.OcrEngine(settings.tesseract_cmd, page_timeout=timeout)
    )


async def extract_invoice(ctx: Context, user_id: Any, file: Any) -> ExtractionResult:
    """``POST /v1/receivables/ocr`` / ``invoiceExtract``: a PDF to a stored ExtractionResult."""
    principal = require_scope(ctx, RECEIVABLES_WRITE)
    if not isinstance(user_id, str) or not user_id.strip():
        raise InputError([FieldError("user_id", "required", USER_REQUIRED)])
    if "\x00" in user_id:
        # A multipart field is client text the JSON bodies' check never saw (PRODUCT.md §12).
        raise InputError([FieldError("user_id", INVALID_CHARACTER, NUL_MESSAGE)])
    user = await get_user(ctx, user_id.strip(), scope=RECEIVABLES_WRITE)
    if file is None or file == "" or not hasattr(file, "file"):
        raise InputError([FieldError("file", "required", FILE_REQUIRED)])
    refuse_nul_file_name(file)
    if getattr(file, "size", None) is not None and file.size > pdf.MAX_BYTES:
        raise too_large()
    # Reading a PDF may take seconds: hold no pool connection meanwhile (nothing is written yet).
    await ctx.uow.close()
    data = await asyncio.to_thread(_read_capped, file.file)
    try:
        pdf.sniff(data)
        extracted = await extract_pdf(data, _limits(ctx), user_id=user.public_id)
    except pdf.PdfRefused as exc:
        raise refused(exc) from None
    async with ctx.uow.session() as session:
        row = results.store(
            session,
            ctx.clock,
            extracted,
            user_id=user.id,
            platform_id=principal.platform_id,
            filename=getattr(file, "filename", None),
        )
    await ctx.uow.commit()
    return row


async def results_by_public_id(ctx: Context, ids: Sequence[str]) -> dict[str, ExtractionResult]:
    """Stored results among ``ids`` whose creditor the caller may see (Relay node resolution)."""
    principal = ctx.principal
    if principal is None or not ids or not principal.has_scope(RECEIVABLES_READ):
        return {}
    visible_users = select(User.id).where(
        user_visible_condition(principal, RECEIVABLES_READ, ctx.clock.now())
    )
    async with ctx.uow.session() as session:
        rows = (
            await session.scalars(
                select(ExtractionResult).where(
                    ExtractionResult.public_id.in_(list(ids)),
                    ExtractionResult.user_id.in_(visible_users),
                )
            )
        ).all()
    return {row.public_id: row for row in rows}


async def results_of_user(ctx: Context, user_id: int, window: Window) -> Page[ExtractionResult]:
    """A creditor's stored extractions, newest first, within ``receivables:read`` reach."""
    principal = require_scope(ctx, RECEIVABLES_READ)
    visible_users = select(User.id).where(
        user_visible_condition(principal, RECEIVABLES_READ, ctx.clock.now())
    )
    loader = ctx.loaders.pages(
        ExtractionResult.user_id,
        lambda _: [ExtractionResult.user_id.in_(visible_users)],
        name="user.extraction_results",
    )
    page: Page[ExtractionResult] = await loader.load(PageKey(user_id, window))
    return page


async def get_result(ctx: Context, extraction_id: str) -> ExtractionResult:
    """One stored result within reach, else NotFound."""
    require_scope(ctx, RECEIVABLES_READ)
    found = await results_by_public_id(ctx, [extraction_id])
    if extraction_id not in found:
        raise NotFound("Extraction")
    return found[extraction_id]
