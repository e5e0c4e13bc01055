"""Number queries. Reads present a reservation past ``reserved_until`` as ``available``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.numbers.patterns import NumberPattern

EFFECTIVE_STATUS = (
    "CASE WHEN n.status = 'reserved' AND n.reserved_until <= :now THEN 'available' ELSE n.status END"
)

# The condition "this number may be claimed now" (available, or its reservation has lapsed).
CLAIMABLE = "(n.status = 'available' OR (n.status = 'reserved' AND n.reserved_until <= :now))"

STATUS_FILTERS = {
    "available": CLAIMABLE,
    "reserved": "(n.status = 'reserved' AND n.reserved_until > :now)",
    "in_use": "n.status = 'in_use'",
    "quarantined": "n.status = 'quarantined'",
}

_SELECT = (
    f"SELECT n.msisdn, {EFFECTIVE_STATUS} AS status, n.grade, b.id AS block_id, b.mvno_id, b.host, "
    "b.segment, b.province, b.city, n.line_id, "
    "CASE WHEN n.status = 'reserved' AND n.reserved_until > :now THEN n.reserved_until END "
    "AS reserved_until, n.quarantine_until "
    "FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix"
)


def criteria_sql(
    *,
    mvno_id: str | None,
    status: str | None,
    province: str | None,
    segment: str | None,
    grade: str | None,
    pattern: NumberPattern | None,
) -> tuple[list[str], dict[str, Any]]:
    """WHERE clauses (over ``n`` numbers and ``b`` blocks) and their parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if mvno_id is not None:
        clauses.append("b.mvno_id = :mvno_id")
        params["mvno_id"] = mvno_id
    if status is not None:
        clauses.append(STATUS_FILTERS[status])
    if province is not None:
        clauses.append("b.province = :province")
        params["province"] = province
    if segment is not None:
        clauses.append("b.segment = :segment")
        params["segment"] = segment
    if grade is not None:
        clauses.append("n.grade = :grade")
        params["grade"] = grade
    if pattern is not None:
        clauses.append("n.msisdn LIKE :like")
        params["like"] = pattern.like
        if pattern.reversed_like is not None:
            # Same condition, reversed, so the planner can range-scan ix_numbers_msisdn_reversed.
            clauses.append("reverse(n.msisdn) LIKE :reversed_like")
            params["reversed_like"] = pattern.reversed_like
    return clauses, params


async def get(session: AsyncSession, msisdn: str, now: datetime) -> RowMapping | None:
    row = (
        await session.execute(text(f"{_SELECT} WHERE n.msisdn = :msisdn"), {"msisdn": msisdn, "now": now})
    ).first()
    return row._mapping if row else None


async def search(
    session: AsyncSession,
    *,
    now: datetime,
    after_msisdn: str | None,
    limit: int,
    **criteria: Any,
) -> list[RowMapping]:
    clauses, params = criteria_sql(**criteria)
    if after_msisdn is not None:
        clauses.append("n.msisdn > :after")
        params["after"] = after_msisdn
    where = " AND ".join(clauses) or "TRUE"
    rows = await session.execute(
        text(f"{_SELECT} WHERE {where} ORDER BY n.msisdn LIMIT :limit"),
        {**params, "now": now, "limit": limit},
    )
    return [r._mapping for r in rows]


async def holder_history(session: AsyncSession, msisdn: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                "SELECT n.last_cancelled_at, b.mvno_id FROM numbers n "
                "JOIN blocks b ON b.prefix = n.block_prefix WHERE n.msisdn = :msisdn"
            ),
            {"msisdn": msisdn},
        )
    ).first()
    return row._mapping if row else None
