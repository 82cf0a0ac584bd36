"""``/api/admin/debtors*`` and ``/api/admin/dashboard`` exactly as tether-api.md shows them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.debtors.fields import full_address, full_name
from debtgraph.domain.debtors.models import Debtor
from debtgraph.domain.payments.models import BillingAttempt, VopLog
from debtgraph.resolvers import dashboard, debtors, uploads
from debtgraph.resolvers.pagination import parse_page_params
from debtgraph.rest_compat.common import JSONResponse, iso, json_body, operator_context
from debtgraph.rest_compat.tether_uploads import upload_json, uploads_json


def debtor_json(debtor: Debtor) -> dict[str, Any]:
    """The seed's debtor object, plus its validation state.

    Datetimes are left to JSONResponse: orjson writes them as ``iso()`` does, in C.
    """
    return {
        "id": debtor.id,
        "upload_id": debtor.upload_id,
        "iban_masked": debtor.iban_masked,
        "bank_name": debtor.bank_name,
        "bank_code": debtor.bank_code,
        "bic": debtor.bic,
        "first_name": debtor.first_name,
        "last_name": debtor.last_name,
        "full_name": full_name(debtor.first_name, debtor.last_name),
        "email": debtor.email,
        "phone": debtor.phone,
        "primary_phone": debtor.phone,
        "national_id": debtor.national_id,
        "birth_date": debtor.birth_date,
        "street": debtor.street,
        "street_number": debtor.street_number,
        "floor": debtor.floor,
        "door": debtor.door,
        "apartment": debtor.apartment,
        "postcode": debtor.postcode,
        "city": debtor.city,
        "province": debtor.province,
        "country": debtor.country,
        "full_address": full_address(
            street=debtor.street,
            street_number=debtor.street_number,
            floor=debtor.floor,
            door=debtor.door,
            apartment=debtor.apartment,
            postcode=debtor.postcode,
            city=debtor.city,
            province=debtor.province,
            country=debtor.country,
        ),
        "amount": debtor.amount,
        "currency": debtor.currency,
        "sepa_type": debtor.sepa_type,
        "status": debtor.status,
        "risk_class": debtor.risk_class,
        "iban_valid": debtor.iban_valid,
        "name_matched": debtor.name_matched,
        "external_reference": debtor.external_reference,
        "validation_status": debtor.validation_status,
        "validation_errors": debtor.validation_errors or None,
        "validated_at": debtor.validated_at,
        "created_at": debtor.created_at,
        "updated_at": debtor.updated_at,
    }


def vop_log_json(log: VopLog) -> dict[str, Any]:
    """The seed's VOP log object."""
    return {
        "id": log.id,
        "debtor_id": log.debtor_id,
        "upload_id": log.upload_id,
        "iban_masked": log.iban_masked,
        "iban_valid": log.iban_valid,
        "bank_identified": log.bank_identified,
        "bank_name": log.bank_name,
        "bic": log.bic,
        "country": log.country,
        "vop_score": log.vop_score,
        "score_label": log.score_label,
        "result": log.result,
        "is_positive": log.is_positive,
        "is_negative": log.is_negative,
        "created_at": iso(log.created_at),
    }


def billing_attempt_json(attempt: BillingAttempt) -> dict[str, Any]:
    """The seed's billing attempt object."""
    return {
        "id": attempt.id,
        "debtor_id": attempt.debtor_id,
        "upload_id": attempt.upload_id,
        "transaction_id": attempt.transaction_id,
        "unique_id": attempt.unique_id,
        "amount": attempt.amount,
        "currency": attempt.currency,
        "status": attempt.status,
        "attempt_number": attempt.attempt_number,
        "mid_reference": attempt.mid_reference,
        "error_code": attempt.error_code,
        "error_message": attempt.error_message,
        "is_approved": attempt.is_approved,
        "is_final": attempt.is_final,
        "can_retry": attempt.can_retry,
        "processed_at": iso(attempt.processed_at),
        "created_at": iso(attempt.created_at),
    }


def list_row_json(row: dict[str, Any]) -> dict[str, Any]:
    """:func:`debtor_json` from a list row (``debtors.LIST_COLUMNS`` by name), shaped in place.

    The row already holds every stored field under its JSON name; only the derived ones are
    added (after the others: JSON objects are unordered), so a page builds one dict per row.
    """
    row["full_name"] = full_name(row["first_name"], row["last_name"])
    row["primary_phone"] = row["phone"]
    row["full_address"] = full_address(
        street=row["street"],
        street_number=row["street_number"],
        floor=row["floor"],
        door=row["door"],
        apartment=row["apartment"],
        postcode=row["postcode"],
        city=row["city"],
        province=row["province"],
        country=row["country"],
    )
    row["validation_errors"] = row["validation_errors"] or None
    return row


async def list_debtors(request: Request) -> Response:
    """``GET /api/admin/debtors``."""
    ctx = operator_context(request)
    query = request.query_params
    page, per_page = parse_page_params(query.get("page"), query.get("per_page"))
    filters = debtors.check_filters(
        upload_id=query.get("upload_id"),
        status=query.get("status"),
        country=query.get("country"),
        risk_class=query.get("risk_class"),
    )
    result = await debtors.list_debtors(ctx, filters, page=page, per_page=per_page)
    return JSONResponse({"data": [list_row_json(d) for d in result.items], "meta": result.meta()})


async def get_debtor(request: Request) -> Response:
    """``GET /api/admin/debtors/{id}`` with ``upload``, ``vopLogs`` and ``billingAttempts``."""
    ctx = operator_context(request)
    detail = await debtors.debtor_detail(ctx, request.path_params["id"])
    data = debtor_json(detail.debtor)
    data["raw_data"] = detail.debtor.raw_data
    upload = None
    if detail.upload is not None:
        upload = upload_json(detail.upload, await uploads.debtors_count(ctx, detail.upload.id))
    data["upload"] = upload
    data["vopLogs"] = [vop_log_json(log) for log in detail.vop_logs]
    data["billingAttempts"] = [billing_attempt_json(a) for a in detail.billing_attempts]
    return JSONResponse({"data": data})


async def validate_debtor(request: Request) -> Response:
    """``POST /api/admin/debtors/{id}/validate``."""
    debtor = await debtors.validate_debtor(operator_context(request), request.path_params["id"])
    return JSONResponse(
        {
            "message": "Validation completed",
            "data": {
                "id": debtor.id,
                "validation_status": debtor.validation_status,
                "validation_errors": debtor.validation_errors or None,
                "validated_at": iso(debtor.validated_at),
            },
        }
    )


async def update_debtor(request: Request) -> Response:
    """``PUT /api/admin/debtors/{id}``: raw_data → fields → re-validation."""
    ctx = operator_context(request)
    body = await json_body(request)
    debtor = await debtors.update_debtor(ctx, request.path_params["id"], body.get("raw_data"))
    data = debtor_json(debtor)
    data["raw_data"] = debtor.raw_data
    return JSONResponse({"data": data})


async def get_dashboard(request: Request) -> Response:
    """``GET /api/admin/dashboard``."""
    figures = await dashboard.figures(operator_context(request))
    return JSONResponse(
        {
            "data": {
                "uploads": {"total": figures.uploads_total, **figures.uploads_by_status},
                "debtors": {
                    "total": figures.debtors_total,
                    "by_status": figures.debtors_by_status,
                    "by_country": figures.debtors_by_country,
                },
                "recent_activity": {
                    "latest_uploads": await uploads_json(request, figures.latest_uploads),
                    "latest_debtors": [debtor_json(d) for d in figures.latest_debtors],
                },
            }
        }
    )


routes = [
    Route("/api/admin/dashboard", get_dashboard, methods=["GET"]),
    Route("/api/admin/debtors", list_debtors, methods=["GET"]),
    Route("/api/admin/debtors/{id}", get_debtor, methods=["GET"]),
    Route("/api/admin/debtors/{id}", update_debtor, methods=["PUT"]),
    Route("/api/admin/debtors/{id}/validate", validate_debtor, methods=["POST"]),
]
