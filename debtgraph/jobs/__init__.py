"""Background tasks. Importing this package registers every task."""

from debtgraph.jobs import (
    billing,  # noqa: F401  (registers billing.submit, billing.retry)
    idempotency,  # noqa: F401  (registers idempotency.purge)
    outbox,  # noqa: F401  (registers outbox.relay)
    receivables,  # noqa: F401  (registers receivables.start_pending)
    uploads,  # noqa: F401  (registers uploads.ingest, uploads.resume)
    vop,  # noqa: F401  (registers vop.check_upload, vop.resume)
    webhooks,  # noqa: F401  (registers webhooks.deliver, webhooks.sweep)
)
