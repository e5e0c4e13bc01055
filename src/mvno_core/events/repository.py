"""Event feed queries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession


async def feed_scan(
    session: AsyncSession,
    *,
    after: int,
    mvno_id: str | None,
    types: list[str] | None,
    limit: int,
    scan_window: int,
) -> list[RowMapping]:
    """Up to ``limit`` positioned events after ``after`` and within ``scan_window`` positions of it, each
    row carrying ``upto`` (the last position scanned); one row with NULL event columns when none match."""
    clauses = ["e.position > :after", "e.position <= b.upto"]
    params: dict[str, Any] = {"after": after, "limit": limit, "window": scan_window}
    if mvno_id is not None:
        clauses.append("e.mvno_id = :scope")
        params["scope"] = mvno_id
    if types:
        clauses.append("e.type = ANY(:types)")
        params["types"] = types
    # One statement, one snapshot: the bound and the rows below it are read together, so the cursor
    # can never pass a row this statement did not see.
    result = await session.execute(
        text(
            "WITH b AS (SELECT least(coalesce(max(position), 0), CAST(:after AS bigint) + :window) AS upto "
            "FROM events WHERE position IS NOT NULL) "
            "SELECT b.upto, f.* FROM b LEFT JOIN LATERAL ("
            "SELECT e.id, e.type, e.occurred_at, e.mvno_id, e.subject_kind, e.subject_id, e.data, e.position "
            f"FROM events e WHERE {' AND '.join(clauses)} ORDER BY e.position LIMIT :limit"
            ") AS f ON TRUE"
        ),
        params,
    )
    return [r._mapping for r in result]
