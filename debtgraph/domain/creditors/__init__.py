"""Creditors: users and tokens, onboarding requirements, KYB, the user payload, state changes."""
