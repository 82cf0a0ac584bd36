"""Background tasks. Importing this package registers every task."""

from debtgraph.jobs import (
    outbox,  # noqa: F401  (registers outbox.relay)
    uploads,  # noqa: F401  (registers uploads.ingest, uploads.resume)
)
