"""Secrets: passwords (argon2), tokens and keys (SHA-256), and secrets kept to be used (Fernet)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet

_hasher = PasswordHasher()
_ALPHABET = string.ascii_letters + string.digits
# Verified against when the email is unknown, so a miss costs the same as a wrong password.
_DUMMY_HASH = _hasher.hash("debtgraph-timing-equaliser")


def random_string(length: int = 40) -> str:
    """A random alphanumeric string from the OS CSPRNG."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def public_id(prefix: str) -> str:
    """A prefixed opaque identifier such as ``rcv_…``."""
    return f"{prefix}_{random_string(24)}"


def hash_token(token: str) -> str:
    """Hex SHA-256 of a high-entropy token (fast lookup; the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash, burn the same time and fail."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def _fernet(key: str) -> Fernet:
    # Fernet wants 32 url-safe base64 bytes; SECRET_KEY is any string, so derive them from it.
    digest = hashlib.sha256(b"debtgraph-stored-secrets:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(key: str, secret: str) -> str:
    """Encrypt a secret the server must use again (a webhook signing secret) with ``key``."""
    return _fernet(key).encrypt(secret.encode()).decode()


def decrypt_secret(key: str, token: str) -> str:
    """The secret :func:`encrypt_secret` stored; raises when ``key`` is not the one used."""
    return _fernet(key).decrypt(token.encode()).decode()
