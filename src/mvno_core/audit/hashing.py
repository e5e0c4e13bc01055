"""Canonical hashing of audit entries (pure; used when writing, sequencing and verifying)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def content_hash(
    *,
    entry_id: str,
    recorded_at: datetime,
    actor_key_id: str,
    actor_role: str,
    actor_mvno_id: str | None,
    action: str,
    subject_kind: str,
    subject_id: str,
    mvno_id: str | None,
    request_id: str | None,
    data: dict[str, Any],
) -> str:
    payload = [
        entry_id,
        canonical_time(recorded_at),
        actor_key_id,
        actor_role,
        actor_mvno_id,
        action,
        subject_kind,
        subject_id,
        mvno_id,
        request_id,
        data,
    ]
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def chain_hash(prev_hash: str, entry_content_hash: str) -> str:
    return hashlib.sha256(f"{prev_hash}:{entry_content_hash}".encode()).hexdigest()
