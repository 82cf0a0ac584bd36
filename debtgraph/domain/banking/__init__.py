"""Bank accounts: IBAN parsing, validation and enrichment from the bank registry."""
