"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from debtgraph.domain.base import Base
from debtgraph.domain.billing import BillingAttempt, VopLog
from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.domain.idempotency import IdempotencyKey
from debtgraph.domain.oauth import (
    ApiKey,
    AuthorizationCode,
    OAuthToken,
    Platform,
    PlatformConnection,
)
from debtgraph.domain.outbox import Event
from debtgraph.domain.receivables import Contact, Evidence, Receivable, ReceivableEvent
from debtgraph.domain.uploads import BlacklistedIban, Debtor, Upload
from debtgraph.domain.users import AccessToken, User
from debtgraph.domain.webhooks import Webhook, WebhookDelivery, WebhookDeliveryAttempt

__all__ = [
    "AccessToken",
    "ApiKey",
    "AuthorizationCode",
    "Base",
    "BillingAttempt",
    "BlacklistedIban",
    "Contact",
    "Debtor",
    "Event",
    "Evidence",
    "ExtractionResult",
    "IdempotencyKey",
    "OAuthToken",
    "Platform",
    "PlatformConnection",
    "Receivable",
    "ReceivableEvent",
    "Upload",
    "User",
    "VopLog",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
]
