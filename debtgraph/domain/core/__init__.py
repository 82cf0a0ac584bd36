"""Shared by every area: model base, database, clock, event bus, outbox, throttle, idempotency."""
