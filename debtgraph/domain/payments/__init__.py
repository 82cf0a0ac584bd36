"""Payments: IBAN checks, verification of payee (VOP) and the billing models."""
