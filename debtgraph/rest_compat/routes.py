"""Every legacy REST route. An area appends its module's ``routes`` here."""

from __future__ import annotations

from starlette.routing import BaseRoute

from debtgraph.rest_compat import (
    cleavr_extraction,
    cleavr_receivables,
    cleavr_reports,
    cleavr_users,
    cleavr_webhooks,
    oauth,
    openapi,
    tether_auth,
    tether_billing,
    tether_debtors,
    tether_uploads,
    tether_vop_logs,
)

ROUTES: list[BaseRoute] = [
    *tether_auth.routes,
    *cleavr_users.routes,
    # Before /v1/receivables/{id}, so that "ocr" is never read as a receivable id.
    *cleavr_extraction.routes,
    *cleavr_receivables.routes,
    *oauth.routes,
    *cleavr_reports.routes,
    *cleavr_webhooks.routes,
    *openapi.routes,
    *tether_uploads.routes,
    *tether_debtors.routes,
    *tether_billing.routes,
    *tether_vop_logs.routes,
]
