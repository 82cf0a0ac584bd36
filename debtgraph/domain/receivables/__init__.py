"""Receivables: models, status machine, creation payload, soft rules, recovery, changes."""
