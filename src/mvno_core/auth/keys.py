"""API key secrets: generation and hashing.

Keys carry 256 random bits, so a plain SHA-256 is a safe at-rest form (no salt or slow hash is needed
against guessing) and lets authentication be one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "mvk_"


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hint_of(secret: str) -> str:
    """Enough to tell keys apart in a list (prefix + 4 characters, 24 bits), too little to matter."""
    return secret[: len(KEY_PREFIX) + 4]
