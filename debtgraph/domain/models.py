"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from debtgraph.domain.core.base import Base
from debtgraph.domain.core.idempotency import IdempotencyKey
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import AccessToken, User
from debtgraph.domain.debtors.models import (
    BlacklistedIban,
    Debtor,
    FinalDecline,
    Upload,
    UploadRange,
)
from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.domain.oauth.models import (
    ApiKey,
    AuthorizationCode,
    OAuthToken,
    Platform,
    PlatformConnection,
)
from debtgraph.domain.payments.models import BillingAttempt, VopLog
from debtgraph.domain.receivables.models import (
    Contact,
    Evidence,
    Receivable,
    ReceivableEvent,
)
from debtgraph.domain.webhooks.models import (
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEventType,
)

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
    "FinalDecline",
    "IdempotencyKey",
    "OAuthToken",
    "Platform",
    "PlatformConnection",
    "Receivable",
    "ReceivableEvent",
    "Upload",
    "UploadRange",
    "User",
    "VopLog",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "WebhookEventType",
]
