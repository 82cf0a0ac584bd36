"""``POST /v1/receivables/ocr`` exactly as the Cleavr seed shows it (PRODUCT.md §4)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive

from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.resolvers import extraction
from debtgraph.resolvers.errors import FieldError, InputError
from debtgraph.rest_compat.cleavr import endpoint
from debtgraph.rest_compat.common import JSONResponse, context

MALFORMED_MULTIPART = "The request must be multipart/form-data with a file and a user_id."
BODY_LIMIT = extraction.pdf.MAX_BYTES + extraction.MULTIPART_OVERHEAD


def result_object(row: ExtractionResult) -> dict[str, Any]:
    """The seed's ExtractionResult, with per-field confidences beside the overall one."""
    return {
        "extraction_id": row.public_id,
        "confidence": row.confidence,
        "data": row.data,
        "missing_fields": row.missing_fields,
        "warnings": row.warnings,
        "field_confidence": row.field_confidence,
        "page_count": row.page_count,
        "ocr_pages": row.ocr_pages,
    }


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` that refuses the body once more than ``limit`` bytes arrived, whatever
    Content-Length said (or if it was absent), so nothing past the limit is spooled to disk."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise extraction.too_large()
        return message

    return wrapped


@endpoint(idempotent=True)
async def _extract(request: Request) -> Response:
    ctx = context(request)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InputError([FieldError("file", "invalid_multipart", MALFORMED_MULTIPART)])
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException:
        raise InputError([FieldError("file", "invalid_multipart", MALFORMED_MULTIPART)]) from None
    try:
        row = await extraction.extract_invoice(ctx, form.get("user_id"), form.get("file"))
    finally:
        await form.close()
    return JSONResponse(result_object(row))


async def extract(request: Request) -> Response:
    """Extract a receivable draft from a PDF invoice."""
    # The caller and its scope are known, and the declared size checked, before any byte is read.
    extraction.check_content_length(context(request), request.headers.get("content-length"))
    return await _extract(Request(request.scope, _counted(request.receive, BODY_LIMIT)))


routes = [Route("/v1/receivables/ocr", extract, methods=["POST"])]
