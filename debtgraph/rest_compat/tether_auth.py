"""``POST /api/login``, ``POST /api/logout``, ``GET /api/user`` exactly as tether-api.md shows."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from debtgraph.domain.creditors.models import User
from debtgraph.resolvers import auth
from debtgraph.rest_compat.common import JSONResponse, context, json_body, operator_context


def user_json(user: User) -> dict[str, object]:
    """The operator as the seed's login response shows it."""
    return {"id": user.id, "name": user.name, "email": user.email}


async def login(request: Request) -> Response:
    """Exchange email + password for a token shown once."""
    body = await json_body(request)
    result = await auth.login(context(request), body.get("email"), body.get("password"))
    return JSONResponse({"token": result.token, "user": user_json(result.user)})


async def logout(request: Request) -> Response:
    """Revoke the token the request came with."""
    await auth.logout(operator_context(request))
    return JSONResponse({"message": "Logged out successfully."})


async def current_user(request: Request) -> Response:
    """The signed-in operator."""
    user = await auth.me(operator_context(request))
    assert user is not None  # an operator principal always has a user
    return JSONResponse(user_json(user))


routes = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/user", current_user, methods=["GET"]),
]
