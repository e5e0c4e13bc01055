"""Idempotency-Key handling for POST requests.

Scope is (API key, Idempotency-Key). The request first takes a transaction-scoped advisory lock on that
pair *without waiting*: if another transaction holds it, the first request is still running (409
``idempotency_key_in_flight``). Holding the lock, a stored record means replay (same fingerprint) or misuse
(422 ``idempotency_key_reused``). A 2xx response is stored in the same transaction as its effect, so the
key exists exactly when the effect does. Error responses are not stored: they had no effect, and a retry
after the cause is fixed must be able to succeed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.problems import (
    IdempotencyKeyInFlight,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    register_constraints,
)

# The single-bigint advisory-lock space (other locks use the two-int form, a separate space); a 64-bit
# hash keeps false "in flight" answers from colliding keys out of reach.
LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtextextended(:scope, 0))"
MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = ("location",)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    api_key_id: str
    key: str
    fingerprint: str


def lock_scope(api_key_id: str, key: str) -> str:
    # Key ids never contain ':', so the pair is unambiguous.
    return f"{api_key_id}:{key}"


def validate_key(raw: str) -> str:
    if not raw or len(raw) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid("Idempotency-Key must be 1 to 255 characters.")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise IdempotencyKeyInvalid("Idempotency-Key must not contain control characters.")
    return raw


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of the request; JSON bodies are canonicalised so key order and whitespace do not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body  # not JSON (or absurdly nested): the raw bytes are the fingerprint
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(part)
        digest.update(b"\x00")
    return digest.hexdigest()


async def begin(
    session: AsyncSession, *, api_key_id: str, key: str, request_fingerprint: str
) -> StoredResponse | IdempotencyClaim:
    """Claim the key for this transaction, or return the stored response to replay."""
    locked = await session.scalar(text(LOCK_SQL), {"scope": lock_scope(api_key_id, key)})
    if not locked:
        raise IdempotencyKeyInFlight("A request with this Idempotency-Key is still being processed.")
    row = (
        await session.execute(
            text(
                "SELECT fingerprint, status_code, response_headers, response_body "
                "FROM idempotency_keys WHERE api_key_id = :k AND key = :key"
            ),
            {"k": api_key_id, "key": key},
        )
    ).first()
    if row is None:
        return IdempotencyClaim(api_key_id=api_key_id, key=key, fingerprint=request_fingerprint)
    if row.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request; use a new key.")
    return StoredResponse(
        status_code=row.status_code,
        headers=dict(row.response_headers),
        body=bytes(row.response_body),
    )


async def complete(
    session: AsyncSession,
    claim: IdempotencyClaim,
    *,
    method: str,
    path: str,
    status_code: int,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    ttl: timedelta,
) -> None:
    kept = {name: value for name, value in headers.items() if name.lower() in REPLAYED_HEADERS}
    await session.execute(
        text(
            "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, method, path, status_code, "
            "response_headers, response_body, created_at, expires_at) VALUES (:k, :key, :fp, :method, "
            ":path, :status, CAST(:headers AS jsonb), :body, :now, :expires)"
        ),
        {
            "k": claim.api_key_id,
            "key": claim.key,
            "fp": claim.fingerprint,
            "method": method,
            "path": path,
            "status": status_code,
            "headers": json.dumps(kept),
            "body": body,
            "now": now,
            "expires": now + ttl,
        },
    )


async def prune_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(text("DELETE FROM idempotency_keys WHERE expires_at < :now"), {"now": now})
    return int(getattr(result, "rowcount", 0) or 0)


# Two requests with one key that both passed the lookup (the second read its snapshot before the first
# committed): the loser's record insert breaks the primary key, its effect rolls back, and the client is
# told to retry, which replays the winner's response.
register_constraints({"pk_idempotency_keys": IdempotencyKeyInFlight})
