"""``/v1/receivables…`` (all but ``/ocr``) exactly as the Cleavr seed shows them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.receivables import changes as receivable_service
from debtgraph.domain.receivables.changes import RecoveryProgress
from debtgraph.domain.receivables.models import Contact, Receivable
from debtgraph.resolvers import receivables
from debtgraph.resolvers.context import Context
from debtgraph.rest_compat.cleavr import endpoint
from debtgraph.rest_compat.common import JSONResponse, context, iso, json_body


def contact_object(contact: Contact) -> dict[str, Any]:
    """A contact as the seed's ``Contact`` schema shows it, with its id."""
    return {
        "id": contact.public_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "job_title": contact.job_title,
        "level": contact.level,
    }


def progress_object(progress: RecoveryProgress) -> dict[str, Any]:
    """The seed's ``recovery_progress`` object."""
    return {
        "amount_recovered": progress.amount_recovered,
        "amount_remaining": progress.amount_remaining,
        "phase": progress.phase,
        "last_action": progress.last_action,
        "next_action_at": iso(progress.next_action_at),
        "actions_count": progress.actions_count,
        "awaiting_decision": progress.awaiting_decision,
        "warnings": progress.warnings,
    }


def receivable_object(view: receivables.ReceivableView) -> dict[str, Any]:
    """The seed's ``Receivable`` plus the invoice, debtor, metadata and money figures."""
    receivable = view.receivable
    commission = receivable_service.commission_of(receivable)
    return {
        "id": receivable.public_id,
        "user_id": view.user_public_id,
        "status": receivable.status,
        "amount": receivable.amount,
        "currency": receivable.currency,
        "recovery_progress": progress_object(view.progress),
        "indemnity_due": receivable_service.indemnity_of(receivable),
        "commission": {
            "rate": commission.rate,
            "amount": commission.amount,
            "net": commission.net,
        },
        "invoice": {
            "numbers": list(receivable.invoice_numbers),
            "issue_date": iso(receivable.issue_date),
            "due_date": iso(receivable.due_date),
            "service_description": receivable.service_description,
            "amount": receivable.amount,
            "amount_before_tax": receivable.amount_before_tax,
            "tax_amount": receivable.tax_amount,
            "currency": receivable.currency,
        },
        "debtor": {
            "company_name": receivable.debtor_company_name,
            "company_type": receivable.debtor_company_type,
            "siret": receivable.debtor_siret,
            "vat_number": receivable.debtor_vat_number,
            "address": receivable.debtor_address,
            "contacts": [contact_object(c) for c in view.contacts],
        },
        "metadata": dict(receivable.metadata_ or {}),
        "cancellation": (
            {"reason": receivable.cancel_reason, "notes": receivable.cancel_notes}
            if receivable.cancel_reason
            else None
        ),
        "created_at": iso(receivable.created_at),
    }


async def _objects(ctx: Context, items: Sequence[Receivable]) -> list[dict[str, Any]]:
    return [receivable_object(view) for view in await receivables.views(ctx, items)]


async def _one(ctx: Context, receivable: Receivable, status_code: int = 200) -> Response:
    (body,) = await _objects(ctx, [receivable])
    return JSONResponse(body, status_code=status_code)


@endpoint(idempotent=True)
async def create(request: Request) -> Response:
    """Submit a receivable."""
    ctx = context(request)
    receivable = await receivables.create(ctx, await json_body(request))
    return await _one(ctx, receivable, 201)


@endpoint
async def list_all(request: Request) -> Response:
    """Newest first, ``{data, has_more}``."""
    ctx = context(request)
    query = request.query_params
    page = await receivables.list_receivables(
        ctx,
        user_id=query.get("user_id"),
        status=query.get("status"),
        limit=receivables.parse_limit(query.get("limit")),
        starting_after=query.get("starting_after"),
    )
    return JSONResponse({"data": await _objects(ctx, page.items), "has_more": page.has_next})


@endpoint
async def get_one(request: Request) -> Response:
    """One receivable within reach."""
    ctx = context(request)
    return await _one(ctx, await receivables.get(ctx, request.path_params["id"]))


@endpoint
async def update(request: Request) -> Response:
    """Merge metadata."""
    ctx = context(request)
    receivable = await receivables.update_metadata(
        ctx, request.path_params["id"], await json_body(request)
    )
    return await _one(ctx, receivable)


@endpoint(idempotent=True)
async def cancel(request: Request) -> Response:
    """Cancel recovery."""
    ctx = context(request)
    receivable = await receivables.cancel(ctx, request.path_params["id"], await json_body(request))
    return await _one(ctx, receivable)


@endpoint(idempotent=True)
async def add_contact(request: Request) -> Response:
    """Add a debtor contact."""
    ctx = context(request)
    contact = await receivables.add_contact(
        ctx, request.path_params["id"], await json_body(request)
    )
    return JSONResponse(contact_object(contact), status_code=201)


@endpoint(idempotent=True)
async def submit_evidence(request: Request) -> Response:
    """Evidence against a dispute."""
    ctx = context(request)
    evidence = await receivables.submit_evidence(
        ctx, request.path_params["id"], await json_body(request)
    )
    receivable = await receivables.written(ctx, request.path_params["id"])
    return JSONResponse(
        {
            "id": evidence.public_id,
            "receivable_id": receivable.public_id,
            "status": receivable.status,
            "statement": evidence.statement,
            "documents": evidence.documents,
            "created_at": iso(evidence.created_at),
        }
    )


@endpoint(idempotent=True)
async def partial_payment(request: Request) -> Response:
    """The creditor's decision after a partial payment."""
    ctx = context(request)
    receivable = await receivables.decide_partial_payment(
        ctx, request.path_params["id"], await json_body(request)
    )
    return await _one(ctx, receivable)


routes = [
    Route("/v1/receivables", create, methods=["POST"]),
    Route("/v1/receivables", list_all, methods=["GET"]),
    Route("/v1/receivables/{id}", get_one, methods=["GET"]),
    Route("/v1/receivables/{id}", update, methods=["PATCH"]),
    Route("/v1/receivables/{id}/cancel", cancel, methods=["POST"]),
    Route("/v1/receivables/{id}/contacts", add_contact, methods=["POST"]),
    Route("/v1/receivables/{id}/evidence", submit_evidence, methods=["POST"]),
    Route("/v1/receivables/{id}/partial-payment", partial_payment, methods=["POST"]),
]
