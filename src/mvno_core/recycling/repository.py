"""Every query of the recycling domain (platforms, batches, deliveries, the holder check).

Writes of ``numbers`` are not here: they are pieces of ``numbers.statements`` joined to these statements.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.statements import Piece

PLATFORM_COLUMNS = "id, name, url, status, created_at, deactivated_at"
BATCH_COLUMNS = "id, status, created_at, numbers, number_count, deadline_at, released_at, release_reason"


# --- platforms ---


async def insert_platform(
    session: AsyncSession, *, platform_id: str, name: str, url: str, sealed: bytes, now: datetime, key_id: str
) -> Row[Any]:
    return (
        await session.execute(
            text(
                "INSERT INTO recycling_platforms (id, name, url, secret_sealed, status, created_at, "
                "created_by_key_id) VALUES (:id, :name, :url, :sealed, 'active', :now, :key_id) "
                f"RETURNING {PLATFORM_COLUMNS}"
            ),
            {"id": platform_id, "name": name, "url": url, "sealed": sealed, "now": now, "key_id": key_id},
        )
    ).one()


async def get_platform(session: AsyncSession, platform_id: str, *, lock: bool = False) -> Row[Any] | None:
    return (
        await session.execute(
            text(
                f"SELECT {PLATFORM_COLUMNS} FROM recycling_platforms WHERE id = :id"
                + (" FOR UPDATE" if lock else "")
            ),
            {"id": platform_id},
        )
    ).one_or_none()


async def list_platforms(
    session: AsyncSession, *, status: str | None, after_id: str | None, limit: int
) -> list[Row[Any]]:
    result = await session.execute(
        text(
            f"SELECT {PLATFORM_COLUMNS} FROM recycling_platforms "
            "WHERE (CAST(:after AS text) IS NULL OR id > :after) "
            "AND (CAST(:status AS text) IS NULL OR status = :status) ORDER BY id LIMIT :limit"
        ),
        {"after": after_id, "status": status, "limit": limit},
    )
    return list(result)


async def deactivate_platform(session: AsyncSession, platform_id: str, now: datetime) -> int:
    """Deactivate, and abandon its pending deliveries (they must not hold batches back any more);
    returns how many deliveries were abandoned."""
    abandoned = await session.scalar(
        text(
            "WITH p AS (UPDATE recycling_platforms SET status = 'inactive', deactivated_at = :now "
            "WHERE id = :id AND status = 'active' RETURNING id), "
            "d AS (UPDATE recycling_deliveries r SET status = 'abandoned', closed_at = :now, "
            "leased_until = NULL FROM p WHERE r.platform_id = p.id AND r.status = 'pending' "
            "RETURNING 1) SELECT count(*) FROM d"
        ),
        {"id": platform_id, "now": now},
    )
    return int(abandoned or 0)


async def any_active_platform(session: AsyncSession) -> bool:
    found = await session.scalar(text("SELECT 1 FROM recycling_platforms WHERE status = 'active' LIMIT 1"))
    return found is not None


async def sealed_secret(session: AsyncSession, platform_id: str) -> bytes:
    sealed: bytes = await session.scalar(
        text("SELECT secret_sealed FROM recycling_platforms WHERE id = :id"), {"id": platform_id}
    )
    return bytes(sealed)


# --- batches ---


def new_batch_pieces(*, batch_id: str, now: datetime, deadline: datetime) -> list[Piece]:
    """The batch row and one pending delivery per active platform, from the numbers just held for it
    (CTE ``held``: msisdn, last_cancelled_at); nothing at all when no number was due."""
    return [
        Piece(
            "batch",
            "INSERT INTO recycling_batches (id, status, created_at, numbers, number_count, deadline_at) "
            "SELECT :batch_id, 'pending', :now, jsonb_agg(jsonb_build_object('msisdn', h.msisdn, "
            "'last_cancelled_at', h.last_cancelled_at) ORDER BY h.msisdn), count(*), :deadline "
            "FROM held h HAVING count(*) > 0 RETURNING id, number_count",
            {"batch_id": batch_id, "now": now, "deadline": deadline},
        ),
        Piece(
            "deliveries",
            "INSERT INTO recycling_deliveries (batch_id, platform_id, status, attempts, next_attempt_at) "
            "SELECT b.id, p.id, 'pending', 0, :now FROM batch b CROSS JOIN recycling_platforms p "
            "WHERE p.status = 'active' RETURNING platform_id",
        ),
    ]


NEW_BATCH_RESULT = (
    "SELECT b.id, b.number_count, (SELECT array_agg(platform_id ORDER BY platform_id) FROM deliveries) "
    "AS platform_ids FROM batch b"
)


async def get_batch(session: AsyncSession, batch_id: str) -> Row[Any] | None:
    return (
        await session.execute(
            text(f"SELECT {BATCH_COLUMNS} FROM recycling_batches WHERE id = :id"), {"id": batch_id}
        )
    ).one_or_none()


async def list_batches(
    session: AsyncSession, *, status: str | None, before_id: str | None, limit: int
) -> list[Row[Any]]:
    """Newest first (ids are time-ordered ULIDs)."""
    result = await session.execute(
        text(
            f"SELECT {BATCH_COLUMNS} FROM recycling_batches "
            "WHERE (CAST(:before AS text) IS NULL OR id < :before) "
            "AND (CAST(:status AS text) IS NULL OR status = :status) ORDER BY id DESC LIMIT :limit"
        ),
        {"before": before_id, "status": status, "limit": limit},
    )
    return list(result)


async def deliveries_of(session: AsyncSession, batch_id: str) -> list[Row[Any]]:
    result = await session.execute(
        text(
            "SELECT d.platform_id, p.name AS platform_name, d.status, d.attempts, d.last_attempt_at, "
            "d.last_status_code, d.last_error, d.next_attempt_at, d.acknowledged_at "
            "FROM recycling_deliveries d JOIN recycling_platforms p ON p.id = d.platform_id "
            "WHERE d.batch_id = :id ORDER BY d.platform_id"
        ),
        {"id": batch_id},
    )
    return list(result)


# A pending batch is ready when no delivery is pending any more (all acknowledged, or abandoned with their
# platform) or its deadline has come. ``SKIP LOCKED``: two sweeps never release the same batch.
_READY_BATCH = text(
    "SELECT b.id, b.number_count, CASE WHEN NOT EXISTS (SELECT 1 FROM recycling_deliveries d "
    "WHERE d.batch_id = b.id AND d.status = 'pending') THEN 'acknowledged' ELSE 'deadline' END AS reason "
    "FROM recycling_batches b WHERE b.status = 'pending' AND (b.deadline_at <= :now OR NOT EXISTS "
    "(SELECT 1 FROM recycling_deliveries d WHERE d.batch_id = b.id AND d.status = 'pending')) "
    "ORDER BY b.created_at, b.id LIMIT 1 FOR UPDATE OF b SKIP LOCKED"
)


async def ready_batch(session: AsyncSession, now: datetime) -> Row[Any] | None:
    return (await session.execute(_READY_BATCH, {"now": now})).first()


async def close_batch(session: AsyncSession, batch_id: str, reason: str, now: datetime) -> list[str]:
    """Mark the batch released and expire the deliveries still pending (their retries stop); returns
    the ids of the platforms whose delivery expired."""
    result = await session.execute(
        text(
            "WITH b AS (UPDATE recycling_batches SET status = 'released', released_at = :now, "
            "release_reason = :reason WHERE id = :id AND status = 'pending' RETURNING id) "
            "UPDATE recycling_deliveries d SET status = 'expired', closed_at = :now, leased_until = NULL "
            "FROM b WHERE d.batch_id = b.id AND d.status = 'pending' RETURNING d.platform_id"
        ),
        {"id": batch_id, "reason": reason, "now": now},
    )
    return sorted(row.platform_id for row in result)


# --- deliveries ---


async def due_deliveries(session: AsyncSession, now: datetime, limit: int) -> list[Row[Any]]:
    result = await session.execute(
        text(
            "SELECT d.batch_id, d.platform_id FROM recycling_deliveries d "
            "JOIN recycling_batches b ON b.id = d.batch_id "
            "WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND b.status = 'pending' "
            "AND (d.leased_until IS NULL OR d.leased_until < :now) "
            "ORDER BY d.next_attempt_at LIMIT :limit"
        ),
        {"now": now, "limit": limit},
    )
    return list(result)


async def lease_delivery(
    session: AsyncSession, batch_id: str, platform_id: str, now: datetime, until: datetime
) -> RowMapping | None:
    """Take the delivery for one attempt (committed before anything is sent): re-checked under the row
    lock, so a concurrent sweep that wanted it finds it leased and moves on."""
    row = (
        await session.execute(
            text(
                "UPDATE recycling_deliveries d SET leased_until = :until FROM recycling_platforms p, "
                "recycling_batches b WHERE d.batch_id = :batch_id AND d.platform_id = :platform_id "
                "AND p.id = d.platform_id AND b.id = d.batch_id AND d.status = 'pending' "
                "AND p.status = 'active' AND b.status = 'pending' AND d.next_attempt_at <= :now "
                "AND (d.leased_until IS NULL OR d.leased_until < :now) "
                "RETURNING d.batch_id, d.platform_id, d.attempts, d.leased_until, p.url, p.secret_sealed, "
                "b.created_at, b.deadline_at, b.numbers"
            ),
            {"batch_id": batch_id, "platform_id": platform_id, "now": now, "until": until},
        )
    ).first()
    return row._mapping if row is not None else None


async def record_attempt(
    session: AsyncSession,
    *,
    batch_id: str,
    platform_id: str,
    lease: datetime,
    acknowledged: bool,
    now: datetime,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None,
) -> bool:
    """Count the attempt and record its outcome, only while this worker's lease still holds the row
    (a worker that outlived its lease must not overwrite its successor's result)."""
    moved = await session.scalar(
        text(
            "UPDATE recycling_deliveries SET attempts = attempts + 1, last_attempt_at = :now, "
            "last_status_code = :status_code, last_error = :error, leased_until = NULL, "
            "status = CASE WHEN :ok THEN 'acknowledged' ELSE status END, "
            "acknowledged_at = CASE WHEN :ok THEN CAST(:now AS timestamptz) END, "
            "closed_at = CASE WHEN :ok THEN CAST(:now AS timestamptz) END, "
            "next_attempt_at = CASE WHEN :ok THEN NULL ELSE CAST(:next AS timestamptz) END "
            "WHERE batch_id = :batch_id AND platform_id = :platform_id AND status = 'pending' "
            "AND leased_until = :lease RETURNING 1"
        ),
        {
            "batch_id": batch_id,
            "platform_id": platform_id,
            "lease": lease,
            "ok": acknowledged,
            "now": now,
            "status_code": status_code,
            "error": error,
            "next": next_attempt_at,
        },
    )
    return moved is not None


# --- the holder check ---


async def holder_history(session: AsyncSession, msisdn: str) -> RowMapping | None:
    """What the CAMARA check needs of one number: its MVNO, status, last cancellation, and when its
    current line (if it is in use) began."""
    row = (
        await session.execute(
            text(
                "SELECT b.mvno_id, n.status, n.last_cancelled_at, "
                "CASE WHEN n.status = 'in_use' THEN l.activated_at END AS held_since "
                "FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
                "LEFT JOIN lines l ON l.id = n.line_id WHERE n.msisdn = :msisdn"
            ),
            {"msisdn": msisdn},
        )
    ).first()
    return row._mapping if row is not None else None
