"""Webhooks: endpoints, deliveries and delivery attempts."""
