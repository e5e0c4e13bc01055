"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The secret is ``whsec_`` + base64 of 24 random bytes; the signature of a delivery is
``v1,`` + base64(HMAC-SHA256(secret bytes, "{webhook-id}.{webhook-timestamp}.{body}")). Several
signatures, space-separated, are allowed: during a rotation's grace period both secrets sign, so a
receiver holding either accepts the delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from mvno_core.subscribers.pii import KeyRing

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets)


def _context(endpoint_id: str) -> str:
    return f"webhook_endpoint:{endpoint_id}:secret"


def seal(keys: KeyRing, endpoint_id: str, secret: str) -> bytes:
    """Encrypt the secret at rest (AES-256-GCM with the PII key ring, bound to this endpoint)."""
    return keys.encrypt(secret, context=_context(endpoint_id))


def unseal(keys: KeyRing, endpoint_id: str, sealed: bytes) -> str:
    return keys.decrypt(sealed, context=_context(endpoint_id))
