"""The event feed.

Order is (``txid``, ``seq``): the writing transaction's id, then insertion order. Only rows whose
transaction id is below the oldest still-running transaction (``pg_snapshot_xmin``) are served; every such
transaction has finished, so nothing can later commit *behind* a position already handed out. A plain
``bigserial`` cursor would skip an event whose transaction commits after a later id was served.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, text

from mvno_core.kernel.context import RequestContext


async def feed(
    ctx: RequestContext,
    *,
    after: tuple[int, int],
    types: list[str] | None,
    limit: int,
) -> list[RowMapping]:
    clauses = [
        "txid < (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint",
        "(txid, seq) > (:after_txid, :after_seq)",
    ]
    params: dict[str, Any] = {"after_txid": after[0], "after_seq": after[1], "limit": limit}
    scope = ctx.principal.mvno_scope()
    if scope is not None:
        clauses.append("mvno_id = :scope")
        params["scope"] = scope
    if types:
        clauses.append("type = ANY(:types)")
        params["types"] = types
    rows = await ctx.session.execute(
        text(
            "SELECT id, type, occurred_at, mvno_id, subject_kind, subject_id, data, txid, seq "
            f"FROM events WHERE {' AND '.join(clauses)} ORDER BY txid, seq LIMIT :limit"
        ),
        params,
    )
    return [r._mapping for r in rows]
