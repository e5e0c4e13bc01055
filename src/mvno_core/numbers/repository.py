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

# "This number may be claimed now": available, or its reservation has lapsed. The leading IN matches the
# predicate of the partial index ix_numbers_claimable (msisdn order), so claims and availability searches
# walk only numbers that could be free, never the in-use and quarantined ones; the few reserved rows the
# index holds are filtered by the second condition.
CLAIMABLE = "(n.status IN ('available', 'reserved') AND (n.status = 'available' OR n.reserved_until <= :now))"

STATUS_FILTERS = {
    "available": CLAIMABLE,
    "reserved": "(n.status = 'reserved' AND n.reserved_until > :now)",
    "in_use": "n.status = 'in_use'",
    "quarantined": "n.status = 'quarantined'",
}

SELECT_NUMBERS = (
    f"SELECT n.msisdn, {EFFECTIVE_STATUS} AS status, n.grade, b.id AS block_id, b.mvno_id, b.host, "
    "b.segment, b.province, b.city, n.line_id, "
    "CASE WHEN n.status = 'reserved' AND n.reserved_until > :now THEN n.reserved_until END "
    "AS reserved_until, n.quarantine_until "
    "FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix"
)


async def plan_per_pattern(session: AsyncSession) -> None:
    """Keep pattern queries on custom plans for the rest of this transaction.

    psycopg prepares a statement after 5 runs, and PostgreSQL may then run it with one generic plan that
    ignores the parameters; for ``LIKE :pattern`` that plan is a full scan. Set per transaction, not per
    connection: a connection-wide setting would also re-plan the foreign-key checks of every inserted
    number (10,000 per block allocation, +50% measured).
    """
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


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
        if pattern.reversed_like is not None:
            # The same match, reversed, so it is a range scan of ix_numbers_msisdn_reversed. Only one of
            # the two forms is sent: given both, the planner multiplies their selectivities and
            # underestimates the rows ~100-fold (then sorts thousands of rows instead of walking the PK).
            clauses.append("reverse(n.msisdn) LIKE :reversed_like")
            params["reversed_like"] = pattern.reversed_like
        else:
            clauses.append("n.msisdn LIKE :like")
            params["like"] = pattern.like
    return clauses, params


async def get(session: AsyncSession, msisdn: str, now: datetime) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"{SELECT_NUMBERS} WHERE n.msisdn = :msisdn"), {"msisdn": msisdn, "now": now}
        )
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
    if criteria.get("pattern") is not None:
        await plan_per_pattern(session)
    if after_msisdn is not None:
        clauses.append("n.msisdn > :after")
        params["after"] = after_msisdn
    where = " AND ".join(clauses) or "TRUE"
    rows = await session.execute(
        text(f"{SELECT_NUMBERS} WHERE {where} ORDER BY n.msisdn LIMIT :limit"),
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
