"""Webhook secrets and signatures (PRODUCT.md §5).

- Secrets are ``whsec_`` + base64 of 32 random bytes: the Standard Webhooks form, so any
  Standard Webhooks library takes them as they are.
- ``Cleavr-Signature`` is the hex HMAC-SHA256 of the raw body, keyed with the secret exactly as
  it was shown (its UTF-8 bytes, ``whsec_`` included): what an existing integration computes
  with ``hmac.new(secret.encode(), body, sha256).hexdigest()``.
- ``webhook-signature`` is ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`` where the
  key is the base64-decoded part after ``whsec_`` (the Standard Webhooks rule).
- During the 24 hours after a rotation both secrets sign: ``webhook-signature`` carries two
  space-separated signatures (the Standard Webhooks list form) and ``Cleavr-Signature`` two
  comma-separated hex digests (an HTTP list: the same as sending the header twice), the new
  secret's first. A receiver accepts the body when one of them matches its secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from standardwebhooks.webhooks import Webhook as StandardWebhook

SECRET_PREFIX = "whsec_"
# How long the secret a rotation replaced keeps signing, beside the new one.
PREVIOUS_SECRET_TTL = timedelta(hours=24)


def new_secret() -> str:
    """A fresh signing secret, ``whsec_…``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def cleavr_signature(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body keyed with the secret as shown."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Signer:
    """Signs with the current secret and, during a rotation's overlap, the previous one."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = list(secrets)
        # Parsing the key is the costly part of signing; do it once per webhook and batch.
        self._standard = [StandardWebhook(s) for s in self.secrets]

    def headers(self, message_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
        """The signature headers of one delivery attempt."""
        text = body.decode()
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(
                w.sign(msg_id=message_id, timestamp=timestamp, data=text) for w in self._standard
            ),
            "Cleavr-Signature": ",".join(cleavr_signature(s, body) for s in self.secrets),
        }


def signing_secrets(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign now: the current one, and the previous one until it expires."""
    if previous is not None and previous_expires_at is not None and previous_expires_at > now:
        return [current, previous]
    return [current]
