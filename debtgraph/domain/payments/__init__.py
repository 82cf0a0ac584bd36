"""Payments: verification of payee (VOP), SEPA direct-debit billing and SEPA files."""
