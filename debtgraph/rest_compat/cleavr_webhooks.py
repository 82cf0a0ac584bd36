"""``/v1/webhooks…`` exactly as the Cleavr seed shows them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.webhooks.models import Webhook
from debtgraph.resolvers import webhooks
from debtgraph.rest_compat.cleavr import endpoint
from debtgraph.rest_compat.common import JSONResponse, context, iso, json_body


def webhook_object(webhook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """The seed's ``Webhook``; ``secret`` only on create (PRODUCT.md §5), plus its state."""
    body: dict[str, Any] = {
        "id": webhook.public_id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "active": webhook.active,
        "disabled_at": iso(webhook.disabled_at),
        "created_at": iso(webhook.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


@endpoint(idempotent=True)
async def create(request: Request) -> Response:
    """Register a webhook: 201 with its secret, shown this once."""
    ctx = context(request)
    created = await webhooks.create(ctx, await json_body(request))
    return JSONResponse(webhook_object(created.webhook, created.secret), status_code=201)


@endpoint
async def list_all(request: Request) -> Response:
    """The caller's webhooks, a bare array as the seed shows (no secrets)."""
    ctx = context(request)
    return JSONResponse([webhook_object(w) for w in await webhooks.list_webhooks(ctx)])


@endpoint
async def delete(request: Request) -> Response:
    """204: nothing more is delivered to it."""
    ctx = context(request)
    await webhooks.delete(ctx, request.path_params["id"])
    return Response(status_code=204)


@endpoint(idempotent=True)
async def rotate_secret(request: Request) -> Response:
    """``{"secret"}``: the new one; the old one keeps signing for 24 hours."""
    ctx = context(request)
    rotated = await webhooks.rotate_secret(ctx, request.path_params["id"])
    return JSONResponse({"secret": rotated.secret})


routes = [
    Route("/v1/webhooks", create, methods=["POST"]),
    Route("/v1/webhooks", list_all, methods=["GET"]),
    Route("/v1/webhooks/{id}", delete, methods=["DELETE"]),
    Route("/v1/webhooks/{id}/rotate-secret", rotate_secret, methods=["POST"]),
]
