"""The event feed: positioned events in position order.

Positions are gap-free and become visible in increasing order (``events/sequencer.py``), so everything
at or below the highest position a statement sees is visible to it. Each poll scans at most
``feed_scan_window`` positions: a filtered poll (``types=`` or a partner's scope) that matches nothing
still returns a cursor past what it scanned, and the next poll starts there instead of rescanning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, text

from mvno_core.kernel.context import RequestContext


@dataclass(frozen=True, slots=True)
class FeedPage:
    rows: list[RowMapping]
    next_position: int


async def feed(
    ctx: RequestContext,
    *,
    after: int,
    types: list[str] | None,
    limit: int,
    scan_window: int,
) -> FeedPage:
    clauses = ["e.position > :after", "e.position <= b.upto"]
    params: dict[str, Any] = {"after": after, "limit": limit, "window": scan_window}
    scope = ctx.principal.mvno_scope()
    if scope is not None:
        clauses.append("e.mvno_id = :scope")
        params["scope"] = scope
    if types:
        clauses.append("e.type = ANY(:types)")
        params["types"] = types
    # One statement, one snapshot: the bound and the rows below it are read together, so the cursor
    # can never pass a row this statement did not see.
    result = await ctx.session.execute(
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
    fetched = [r._mapping for r in result]
    upto = int(fetched[0]["upto"]) if fetched else after
    rows = [r for r in fetched if r["id"] is not None]
    # A full page: more may follow right after its last row. Otherwise everything up to the bound
    # was scanned, matching or not, and the next poll starts after it.
    next_position = int(rows[-1]["position"]) if len(rows) == limit else max(after, upto)
    return FeedPage(rows=rows, next_position=next_position)
