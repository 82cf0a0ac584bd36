"""``/api/admin/billing-attempts`` as tether-api.md shows it, the SEPA file routes, and the
gateway's signed callback."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.resolvers import billing
from debtgraph.resolvers.errors import FieldError, InputError
from debtgraph.resolvers.pagination import parse_page_params
from debtgraph.rest_compat.common import JSONResponse, context, operator_context
from debtgraph.rest_compat.tether_debtors import billing_attempt_json

NOT_MULTIPART = "The file field must be a file sent as multipart/form-data."


async def list_billing_attempts(request: Request) -> Response:
    """``GET /api/admin/billing-attempts`` with ``upload_id``, ``debtor_id``, ``status``."""
    ctx = operator_context(request)
    query = request.query_params
    page, per_page = parse_page_params(query.get("page"), query.get("per_page"))
    filters = billing.check_filters(
        upload_id=query.get("upload_id"),
        debtor_id=query.get("debtor_id"),
        status=query.get("status"),
    )
    result = await billing.list_attempts(ctx, filters, page=page, per_page=per_page)
    return JSONResponse(
        {"data": [billing_attempt_json(a) for a in result.items], "meta": result.meta()}
    )


async def export_pain008(request: Request) -> Response:
    """``POST /api/admin/uploads/{id}/sepa/pain008``: the collection file, as a download."""
    ctx = operator_context(request)
    upload_id = request.path_params["id"]
    file = await billing.export_pain008(ctx, upload_id)
    name = billing.pain008_filename(int(upload_id), file)
    return Response(
        file.xml,
        media_type="application/xml",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Sepa-Message-Id": file.message_id,
            "X-Sepa-Transactions": str(file.transactions),
        },
    )


async def import_pain002(request: Request) -> Response:
    """``POST /api/admin/billing/pain002``: a bank's status report (multipart ``file``)."""
    ctx = operator_context(request)
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException:
        # Starlette's answer to a body that is no multipart form. Only that: the request guard's
        # refusal of a body past the limit (chunked, so not refused before it was read) passes
        # through to be answered as too large, not as no form.
        raise InputError([FieldError("file", "invalid", NOT_MULTIPART)]) from None
    try:
        upload = form.get("file")
        file = upload if isinstance(upload, UploadFile) else (upload or None)
        result = await billing.import_pain002(ctx, file)
    finally:
        await form.close()
    approved = sum(1 for a in result.settled if a.is_approved)
    return JSONResponse(
        {
            "message": "Status report imported",
            "data": {
                "settled": len(result.settled),
                "approved": approved,
                "declined": len(result.settled) - approved,
                "pending": result.pending,
                "billing_attempts": [billing_attempt_json(a) for a in result.settled],
            },
        }
    )


async def gateway_callback(request: Request) -> Response:
    """``POST /api/billing/callback``: a real gateway's signed answers (no operator token)."""
    ctx = context(request)
    settled = await billing.gateway_callback(ctx, request.headers, request.body)
    return JSONResponse({"message": "Callback processed", "data": {"settled": settled}})


routes = [
    Route("/api/admin/billing-attempts", list_billing_attempts, methods=["GET"]),
    Route("/api/admin/uploads/{id}/sepa/pain008", export_pain008, methods=["POST"]),
    Route("/api/admin/billing/pain002", import_pain002, methods=["POST"]),
    Route("/api/billing/callback", gateway_callback, methods=["POST"]),
]
