"""Every legacy REST route. An area appends its module's ``routes`` here."""

from __future__ import annotations

from starlette.routing import BaseRoute

from debtgraph.rest_compat import tether_auth

ROUTES: list[BaseRoute] = [
    *tether_auth.routes,
]
