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
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.problems import (
    IdempotencyKeyInFlight,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    register_constraints,
)
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import Piece

# The single-bigint advisory-lock space (other locks use the two-int form, a separate space); a 64-bit
# hash keeps false "in flight" answers from colliding keys out of reach.
LOCK_SQL = "pg_try_advisory_xact_lock(hashtextextended(:scope, 0))"
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


def fingerprint(method: str, path: str, body: bytes, *, secret: str) -> str:
    """Keyed hash of the request; JSON bodies are canonicalised so key order and whitespace do not matter.

    Keyed with the caller's API key secret (HMAC-SHA-256), which the database never holds (it keeps a
    hash of it): bodies carry names and ID numbers, and a plain hash of a body with an 11-digit-ish
    unknown can be reversed by trying every value. Scope is (API key, Idempotency-Key), so the same
    secret always computes both fingerprints being compared.
    """
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body  # not JSON (or absurdly nested): the raw bytes are the fingerprint
    digest = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    for part in (method.encode(), path.encode(), canonical):
        digest.update(part)
        digest.update(b"\x00")
    return digest.hexdigest()


_BEGIN = text(
    # One round trip: take the key's lock (without waiting) and read its record. The record is read on
    # the statement's snapshot, taken just before the lock: if the first request committed in between,
    # this one runs again and its record insert breaks pk_idempotency_keys, so its effect rolls back
    # and the client is told to retry (409, Retry-After), which then replays. Never two effects.
    f"SELECT {LOCK_SQL} AS locked, k.fingerprint, k.status_code, k.response_headers, k.response_body "
    "FROM (SELECT 1) AS one LEFT JOIN idempotency_keys k ON k.api_key_id = :k AND k.key = :key"
)

_INSERT_COLUMNS = (
    "api_key_id, key, fingerprint, method, path, status_code, response_headers, response_body, "
    "created_at, expires_at"
)


async def begin(
    session: AsyncSession, *, api_key_id: str, key: str, request_fingerprint: str
) -> StoredResponse | IdempotencyClaim:
    """Claim the key for this transaction, or return the stored response to replay."""
    row = (
        await session.execute(_BEGIN, {"scope": lock_scope(api_key_id, key), "k": api_key_id, "key": key})
    ).one()
    if not row.locked:
        raise IdempotencyKeyInFlight("A request with this Idempotency-Key is still being processed.")
    if row.fingerprint is None:
        return IdempotencyClaim(api_key_id=api_key_id, key=key, fingerprint=request_fingerprint)
    if row.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request; use a new key.")
    return StoredResponse(
        status_code=row.status_code,
        headers=dict(row.response_headers),
        body=bytes(row.response_body),
    )


def _record_params(
    claim: IdempotencyClaim,
    *,
    method: str,
    path: str,
    status_code: int,
    headers: dict[str, str],
    body: bytes,
    now: datetime,
    ttl: timedelta,
) -> dict[str, Any]:
    kept = {name.lower(): value for name, value in headers.items() if name.lower() in REPLAYED_HEADERS}
    return {
        "idem_k": claim.api_key_id,
        "idem_key": claim.key,
        "idem_fp": claim.fingerprint,
        "idem_method": method,
        "idem_path": path,
        "idem_status": status_code,
        "idem_headers": json.dumps(kept),
        "idem_body": body,
        "idem_now": now,
        "idem_expires": now + ttl,
    }


_VALUES = (
    ":idem_k, :idem_key, :idem_fp, :idem_method, :idem_path, :idem_status, CAST(:idem_headers AS jsonb), "
    ":idem_body, :idem_now, :idem_expires"
)


def record_piece(
    claim: IdempotencyClaim,
    reply: Reply,
    *,
    method: str,
    path: str,
    now: datetime,
    ttl: timedelta,
    only_if: str,
) -> Piece:
    """The record of ``reply`` as a statement piece, written only if ``only_if`` (SQL) holds: a use case
    joins it to the statement that makes the effect, so the key exists exactly when the effect does."""
    params = _record_params(
        claim,
        method=method,
        path=path,
        status_code=reply.status_code,
        headers=reply.headers,
        body=reply.body,
        now=now,
        ttl=ttl,
    )
    return Piece(
        "idempotency_record",
        f"INSERT INTO idempotency_keys ({_INSERT_COLUMNS}) SELECT {_VALUES} WHERE {only_if}",
        params,
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
    params = _record_params(
        claim,
        method=method,
        path=path,
        status_code=status_code,
        headers=headers,
        body=body,
        now=now,
        ttl=ttl,
    )
    await session.execute(
        text(f"INSERT INTO idempotency_keys ({_INSERT_COLUMNS}) VALUES ({_VALUES})"), params
    )


async def prune_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(text("DELETE FROM idempotency_keys WHERE expires_at < :now"), {"now": now})
    return int(getattr(result, "rowcount", 0) or 0)


# Two requests with one key that both passed the lookup (the second read its snapshot before the first
# committed): the loser's record insert breaks the primary key, its effect rolls back, and the client is
# told to retry, which replays the winner's response.
register_constraints({"pk_idempotency_keys": IdempotencyKeyInFlight})
