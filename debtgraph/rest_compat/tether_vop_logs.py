"""``GET /api/admin/vop-logs`` exactly as tether-api.md shows it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.resolvers import vop_logs
from debtgraph.resolvers.pagination import parse_page_params
from debtgraph.rest_compat.common import JSONResponse, operator_context
from debtgraph.rest_compat.tether_debtors import vop_log_json


async def list_vop_logs(request: Request) -> Response:
    """``GET /api/admin/vop-logs`` with the ``upload_id``, ``debtor_id`` and ``result`` filters."""
    ctx = operator_context(request)
    query = request.query_params
    page, per_page = parse_page_params(query.get("page"), query.get("per_page"))
    result = await vop_logs.list_vop_logs(
        ctx,
        page=page,
        per_page=per_page,
        upload_id=query.get("upload_id"),
        debtor_id=query.get("debtor_id"),
        result=query.get("result"),
    )
    return JSONResponse(
        {"data": [vop_log_json(log) for log in result.items], "meta": result.meta()}
    )


routes = [Route("/api/admin/vop-logs", list_vop_logs, methods=["GET"])]
