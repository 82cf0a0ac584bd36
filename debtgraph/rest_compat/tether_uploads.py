"""``/api/admin/uploads*`` exactly as tether-api.md shows them (PRODUCT.md §6, §9)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.core.errors import FieldError
from debtgraph.domain.debtors.models import Debtor, Upload
from debtgraph.domain.debtors.validation import ValidationStats
from debtgraph.resolvers import debtors, uploads
from debtgraph.resolvers.errors import InputError
from debtgraph.resolvers.pagination import parse_page_params
from debtgraph.rest_compat.common import JSONResponse, iso, operator_context

UPLOAD_DEBTORS_PER_PAGE = 50
MALFORMED_MULTIPART = "The file field must be a file sent as multipart/form-data."


def upload_json(upload: Upload, debtors_count: int) -> dict[str, Any]:
    """The seed's upload object."""
    return {
        "id": upload.id,
        "filename": upload.filename,
        "original_filename": upload.original_filename,
        "file_size": upload.file_size,
        "mime_type": upload.mime_type,
        "status": upload.status,
        "total_records": upload.total_records,
        "processed_records": upload.processed_records,
        "failed_records": upload.failed_records,
        "success_rate": float(upload.success_rate),
        "processing_started_at": iso(upload.processing_started_at),
        "processing_completed_at": iso(upload.processing_completed_at),
        "created_at": iso(upload.created_at),
        "updated_at": iso(upload.updated_at),
        "debtors_count": debtors_count,
    }


async def uploads_json(request: Request, items: list[Upload]) -> list[dict[str, Any]]:
    """Upload objects with their debtor counts, counted in one statement."""
    counts = await uploads.debtors_counts(operator_context(request), [u.id for u in items])
    return [upload_json(u, n) for u, n in zip(items, counts, strict=True)]


def stats_json(stats: ValidationStats) -> dict[str, int]:
    """The ``validation-stats`` object."""
    return {
        "total": stats.total,
        "valid": stats.valid,
        "invalid": stats.invalid,
        "pending": stats.pending,
        "blacklisted": stats.blacklisted,
        "ready_for_sync": stats.ready_for_sync,
    }


def upload_debtor_json(debtor: Debtor) -> dict[str, Any]:
    """A debtor as the upload's debtor list shows it (stage A/B fields and raw_data)."""
    return {
        "id": debtor.id,
        "upload_id": debtor.upload_id,
        "iban_masked": debtor.iban_masked,
        "first_name": debtor.first_name,
        "last_name": debtor.last_name,
        "amount": debtor.amount,
        "validation_status": debtor.validation_status,
        "validation_errors": debtor.validation_errors or None,
        "validated_at": iso(debtor.validated_at),
        "raw_data": debtor.raw_data,
    }


async def list_uploads(request: Request) -> Response:
    """``GET /api/admin/uploads``."""
    ctx = operator_context(request)
    query = request.query_params
    page, per_page = parse_page_params(query.get("page"), query.get("per_page"))
    result = await uploads.list_uploads(
        ctx, status=query.get("status"), page=page, per_page=per_page
    )
    return JSONResponse({"data": await uploads_json(request, result.items), "meta": result.meta()})


async def create_upload(request: Request) -> Response:
    """``POST /api/admin/uploads``: 201 with row results, or 202 when queued."""
    ctx = operator_context(request)
    uploads.check_content_length(ctx, request.headers.get("content-length"))
    try:
        form = await request.form(max_files=1, max_fields=20)
    except HTTPException:
        # Starlette answers an unparseable multipart body with a bare 400; Tether's is a 422.
        raise InputError([FieldError("file", "invalid", MALFORMED_MULTIPART)]) from None
    try:
        result = await uploads.create_upload(ctx, form.get("file"))
    finally:
        await form.close()
    count = await uploads.debtors_count(ctx, result.upload.id)
    data = upload_json(result.upload, count)
    if result.queued:
        meta: dict[str, Any] = {
            "queued": True,
            "message": uploads.QUEUED_MESSAGE,
            "unrecognized_columns": result.unrecognized_columns,
        }
        return JSONResponse({"data": data, "meta": meta}, status_code=202)
    meta = {
        "queued": False,
        "created": result.created,
        "failed": result.failed,
        "errors": result.errors,
        "unrecognized_columns": result.unrecognized_columns,
    }
    return JSONResponse({"data": data, "meta": meta}, status_code=201)


async def get_upload(request: Request) -> Response:
    """``GET /api/admin/uploads/{id}``."""
    ctx = operator_context(request)
    upload = await uploads.get_upload(ctx, request.path_params["id"])
    count = await uploads.debtors_count(ctx, upload.id)
    return JSONResponse({"data": upload_json(upload, count)})


async def upload_status(request: Request) -> Response:
    """``GET /api/admin/uploads/{id}/status``."""
    upload = await uploads.get_upload(operator_context(request), request.path_params["id"])
    return JSONResponse(
        {
            "data": {
                "id": upload.id,
                "status": upload.status,
                "total_records": upload.total_records,
                "processed_records": upload.processed_records,
                "failed_records": upload.failed_records,
                "progress": upload.progress,
                "is_complete": upload.is_complete,
            }
        }
    )


async def upload_debtors(request: Request) -> Response:
    """``GET /api/admin/uploads/{id}/debtors`` (50 per page by default)."""
    ctx = operator_context(request)
    query = request.query_params
    page, per_page = parse_page_params(
        query.get("page"), query.get("per_page"), UPLOAD_DEBTORS_PER_PAGE
    )
    filters = debtors.check_filters(
        validation_status=query.get("validation_status"), search=query.get("search")
    )
    result = await debtors.upload_debtors(
        ctx, request.path_params["id"], filters, page=page, per_page=per_page
    )
    return JSONResponse(
        {"data": [upload_debtor_json(d) for d in result.items], "meta": result.meta()}
    )


async def validate_upload(request: Request) -> Response:
    """``POST /api/admin/uploads/{id}/validate`` (422 while the upload is processing)."""
    run = await uploads.validate_upload(operator_context(request), request.path_params["id"])
    return JSONResponse(
        {
            "message": "Validation completed",
            "data": {"total": run.total, "valid": run.valid, "invalid": run.invalid},
        }
    )


async def validation_stats(request: Request) -> Response:
    """``GET /api/admin/uploads/{id}/validation-stats``."""
    stats = await uploads.validation_stats(operator_context(request), request.path_params["id"])
    return JSONResponse({"data": stats_json(stats)})


routes = [
    Route("/api/admin/uploads", list_uploads, methods=["GET"]),
    Route("/api/admin/uploads", create_upload, methods=["POST"]),
    Route("/api/admin/uploads/{id}", get_upload, methods=["GET"]),
    Route("/api/admin/uploads/{id}/status", upload_status, methods=["GET"]),
    Route("/api/admin/uploads/{id}/debtors", upload_debtors, methods=["GET"]),
    Route("/api/admin/uploads/{id}/validate", validate_upload, methods=["POST"]),
    Route("/api/admin/uploads/{id}/validation-stats", validation_stats, methods=["GET"]),
]
