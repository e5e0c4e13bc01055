"""Reservation queries. Every write runs as one composed statement (``kernel.statements``) whose pieces
come from ``numbers.statements`` (the number's move) and ``reservations.statements`` (the row)."""

from __future__ import annotations

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.statements import Piece, run, run_all
from mvno_core.reservations.statements import RESERVATION_COLUMNS

# What a claim statement answers: the new reservation, and the lapsed one it ended (if any).
CLAIM_RESULT = (
    "SELECT r.id, r.msisdn, r.mvno_id, r.status, r.created_at, r.expires_at, r.ended_at, "
    "l.id AS lapsed_id, l.mvno_id AS lapsed_mvno_id, l.expires_at AS lapsed_expires_at "
    "FROM reservation r LEFT JOIN lapsed l ON TRUE"
)


async def claim(session: AsyncSession, pieces: list[Piece]) -> RowMapping | None:
    """Run a claim statement built of ``pieces`` (CTEs ``reservation`` and ``lapsed`` among them)."""
    return await run(session, pieces, CLAIM_RESULT)


async def release(session: AsyncSession, pieces: list[Piece]) -> RowMapping | None:
    return await run(session, pieces, "SELECT id FROM released")


async def expire(session: AsyncSession, pieces: list[Piece]) -> list[RowMapping]:
    return await run_all(session, pieces, "SELECT id, msisdn, mvno_id, expires_at FROM expired")


async def get(session: AsyncSession, reservation_id: str, *, lock: bool = False) -> RowMapping | None:
    locking = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = :id{locking}"),
            {"id": reservation_id},
        )
    ).first()
    return row._mapping if row else None


async def ids_for_number(session: AsyncSession, msisdn: str, limit: int) -> list[str]:
    """The number's newest reservations (any status), by the msisdn index."""
    rows = await session.execute(
        text("SELECT id FROM reservations WHERE msisdn = :msisdn ORDER BY id DESC LIMIT :limit"),
        {"msisdn": msisdn, "limit": limit},
    )
    return [str(row[0]) for row in rows]
