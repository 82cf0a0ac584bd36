"""``GET /v1/reports/stats`` and the commission price list (``/v1/commission/…``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.resolvers import reports
from debtgraph.rest_compat.cleavr import endpoint
from debtgraph.rest_compat.common import JSONResponse, context, json_body


@endpoint
async def stats(request: Request) -> Response:
    """The seed's ``RecoveryStats`` over the caller's receivables created in the period."""
    ctx = context(request)
    period = reports.parse_period(request.query_params.get("period"))
    result = await reports.recovery_stats(ctx, period, request.query_params.get("currency"))
    # The seed's shape: the amounts' currency is the one asked (EUR by default), not a field.
    shown = result.as_dict()
    del shown["currency"]
    return JSONResponse(shown)


@endpoint
async def rates(request: Request) -> Response:
    """The published bands: days past due at submission → rate in percent."""
    bands = reports.commission_rates(context(request))
    return JSONResponse(
        {
            "currency": "EUR",
            "basis": "days_overdue_at_submission",
            "data": [
                {"min_days": b.min_days, "max_days": b.max_days, "rate": b.rate} for b in bands
            ],
        }
    )


@endpoint(idempotent=True)
async def calculate(request: Request) -> Response:
    """Rate, commission and net for an amount and a due date, today."""
    ctx = context(request)
    body = await json_body(request)
    quote = reports.commission_quote(ctx, body)
    return JSONResponse(
        {
            "amount": quote.commission + quote.net,
            "due_date": body.get("due_date"),
            "days_overdue": quote.days_overdue,
            "rate": quote.rate,
            "commission": quote.commission,
            "net": quote.net,
        }
    )


routes = [
    Route("/v1/reports/stats", stats, methods=["GET"]),
    Route("/v1/commission/rates", rates, methods=["GET"]),
    Route("/v1/commission/calculate", calculate, methods=["POST"]),
]
