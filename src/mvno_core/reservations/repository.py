"""Reservation claims: race-free by construction.

A specific number is claimed by one conditional UPDATE of its row: concurrent claimers queue on the row
lock and re-check the condition, so exactly one wins. "Any number" picks with ``FOR UPDATE SKIP LOCKED``,
so concurrent claimers take different rows instead of waiting on (or failing over) the same one.
Each claim and its reservation row are one statement (one round trip).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.numbers.repository import CLAIMABLE, NumberQuery

_CREATE_RESERVATION = """
, reservation AS (
    INSERT INTO reservations (id, msisdn, mvno_id, status, created_at, expires_at, created_by_key_id)
    SELECT :rid, msisdn, :mvno_id, 'active', :now, :expires_at, :key_id FROM claimed
    RETURNING id, msisdn, mvno_id, status, created_at, expires_at, ended_at
)
SELECT * FROM reservation
"""

_CLAIM_SET = "SET status = 'reserved', reservation_id = :rid, reserved_until = :expires_at"


async def claim_specific(session: AsyncSession, *, msisdn: str, params: dict[str, Any]) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                f"""
                WITH claimed AS (
                    UPDATE numbers n {_CLAIM_SET}
                    FROM blocks b
                    WHERE n.msisdn = :msisdn AND b.prefix = n.block_prefix
                      AND b.mvno_id = :mvno_id AND b.status = 'active' AND {CLAIMABLE}
                    RETURNING n.msisdn
                ){_CREATE_RESERVATION}
                """
            ),
            {**params, "msisdn": msisdn},
        )
    ).first()
    return row._mapping if row else None


async def claim_any(session: AsyncSession, query: NumberQuery, params: dict[str, Any]) -> RowMapping | None:
    """Claim the lowest claimable number matching ``query`` (see ``NumberQuery`` for the two shapes)."""
    pick = query.claim_statement()
    row = (
        await session.execute(
            text(
                f"""
                WITH pick AS ({pick}),
                claimed AS (
                    UPDATE numbers n {_CLAIM_SET} FROM pick WHERE n.msisdn = pick.msisdn
                    RETURNING n.msisdn
                ){_CREATE_RESERVATION}
                """
            ),
            {**query.params, **params},
        )
    ).first()
    return row._mapping if row else None


async def get(session: AsyncSession, reservation_id: str, *, lock: bool = False) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                "SELECT id, msisdn, mvno_id, status, created_at, expires_at, ended_at "
                f"FROM reservations WHERE id = :id{' FOR UPDATE' if lock else ''}"
            ),
            {"id": reservation_id},
        )
    ).first()
    return row._mapping if row else None


async def release(session: AsyncSession, reservation_id: str, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE numbers SET status = 'available', reservation_id = NULL, reserved_until = NULL "
            "WHERE reservation_id = :id AND status = 'reserved'"
        ),
        {"id": reservation_id},
    )
    await session.execute(
        text("UPDATE reservations SET status = 'released', ended_at = :now WHERE id = :id"),
        {"id": reservation_id, "now": now},
    )


async def expire_due(session: AsyncSession, now: datetime, batch: int) -> list[RowMapping]:
    """Write down lapsed reservations and free their numbers (if still theirs); one batch."""
    rows = await session.execute(
        text(
            """
            WITH due AS (
                SELECT id FROM reservations
                WHERE status = 'active' AND expires_at <= :now
                ORDER BY expires_at LIMIT :batch FOR UPDATE SKIP LOCKED
            ), expired AS (
                UPDATE reservations r SET status = 'expired', ended_at = r.expires_at
                FROM due WHERE r.id = due.id
                RETURNING r.id, r.msisdn, r.mvno_id, r.expires_at
            ), freed AS (
                UPDATE numbers n
                SET status = 'available', reservation_id = NULL, reserved_until = NULL
                FROM expired e
                WHERE n.msisdn = e.msisdn AND n.reservation_id = e.id AND n.status = 'reserved'
                RETURNING n.msisdn
            )
            SELECT e.id, e.msisdn, e.mvno_id, e.expires_at,
                   EXISTS (SELECT 1 FROM freed f WHERE f.msisdn = e.msisdn) AS freed
            FROM expired e
            """
        ),
        {"now": now, "batch": batch},
    )
    return [r._mapping for r in rows]
