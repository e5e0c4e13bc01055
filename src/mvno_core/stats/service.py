"""Counts for dashboards: one read-only statement, one snapshot, so the figures agree with each other.

Not on any hot path: it scans numbers and lines of the MVNO asked for (all of them when none is given).
Days are China Standard Time calendar days (Asia/Shanghai), the days the MVNOs report in.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text

from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.problems import NotFound

DAYS = 30

_STATS = text(
    """
    WITH
    numbers_by AS (
        SELECT n.status, count(*) AS n FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix
        WHERE CAST(:mvno_id AS text) IS NULL OR b.mvno_id = :mvno_id GROUP BY n.status),
    lines_by AS (
        SELECT status, count(*) AS n FROM lines
        WHERE CAST(:mvno_id AS text) IS NULL OR mvno_id = :mvno_id GROUP BY status),
    holds_by AS (
        SELECT h.reason, count(*) AS n FROM line_holds h JOIN lines l ON l.id = h.line_id
        WHERE h.lifted_at IS NULL AND (CAST(:mvno_id AS text) IS NULL OR l.mvno_id = :mvno_id)
        GROUP BY h.reason),
    days AS (
        SELECT CAST(d AS date) AS day
        FROM generate_series(CAST(:first_day AS date), CAST(:last_day AS date), interval '1 day') AS d),
    activated AS (
        SELECT CAST(activated_at AT TIME ZONE 'Asia/Shanghai' AS date) AS day, count(*) AS n FROM lines
        WHERE activated_at >= CAST(:first_day AS timestamp) AT TIME ZONE 'Asia/Shanghai'
          AND (CAST(:mvno_id AS text) IS NULL OR mvno_id = :mvno_id) GROUP BY 1),
    ended AS (
        SELECT CAST(ended_at AT TIME ZONE 'Asia/Shanghai' AS date) AS day, count(*) AS n FROM lines
        WHERE ended_at >= CAST(:first_day AS timestamp) AT TIME ZONE 'Asia/Shanghai'
          AND (CAST(:mvno_id AS text) IS NULL OR mvno_id = :mvno_id) GROUP BY 1),
    people AS (
        SELECT count(*) AS total, count(*) FILTER (WHERE real_name_status = 'verified') AS verified
        FROM subscribers WHERE CAST(:mvno_id AS text) IS NULL OR mvno_id = :mvno_id)
    SELECT
        (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM numbers_by) AS numbers,
        (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM lines_by) AS lines,
        (SELECT coalesce(jsonb_object_agg(reason, n), '{}') FROM holds_by) AS holds,
        (SELECT jsonb_agg(jsonb_build_array(to_char(days.day, 'YYYY-MM-DD'), coalesce(a.n, 0),
                coalesce(e.n, 0)) ORDER BY days.day)
         FROM days LEFT JOIN activated a ON a.day = days.day LEFT JOIN ended e ON e.day = days.day) AS daily,
        people.total, people.verified
    FROM people
    """
)


async def stats(ctx: RequestContext, *, mvno_id: str | None, today: date, first_day: date) -> dict[str, Any]:
    principal = ctx.principal
    if mvno_id is not None:
        principal.ensure_can_see(mvno_id, "MVNO", mvno_id)
        exists = await ctx.session.scalar(text("SELECT 1 FROM mvnos WHERE id = :id"), {"id": mvno_id})
        if exists is None:
            raise NotFound.of("MVNO", mvno_id)
    scope = principal.mvno_scope() or mvno_id
    row = (
        await ctx.session.execute(_STATS, {"mvno_id": scope, "first_day": first_day, "last_day": today})
    ).one()
    return {"mvno_id": scope, **row._asdict()}
