"""``/v1/receivables…`` (all but ``/ocr``) exactly as the Cleavr seed shows them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.receivables import changes as receivable_service
from debtgraph.domain.receivables.models import Receivable
from debtgraph.resolvers import receivables
from debtgraph.resolvers.context import Context
from debtgraph.rest_compat.cleavr import endpoint
from debtgraph.rest_compat.common import JSONResponse, context, iso, json_body


async def _one(ctx: Context, receivable: Receivable, status_code: int = 200) -> Response:
    (body,) = await receivables.objects(ctx, [receivable])
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
    return JSONResponse(
        {"data": await receivables.objects(ctx, page.items), "has_more": page.has_next}
    )


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
    return JSONResponse(receivable_service.contact_object(contact), status_code=201)


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
