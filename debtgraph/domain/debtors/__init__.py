"""Debtor uploads: models, CSV reader, ingestion, validation, blacklist and dashboard."""
