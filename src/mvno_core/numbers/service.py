"""Number reads: one number, search, recycled-number check."""

from __future__ import annotations

from datetime import date, datetime, time

from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.problems import NotFound
from mvno_core.numbers import patterns, repository
from mvno_core.numbers.schemas import NumberChanges, NumberRead, to_read


async def get_visible(ctx: RequestContext, msisdn: str) -> NumberRead:
    row = await repository.get(ctx.session, msisdn, ctx.now)
    if row is None:
        raise NotFound.of("Number", msisdn)
    ctx.principal.ensure_can_see(row["mvno_id"], "Number", msisdn)
    return to_read(row)


async def search(
    ctx: RequestContext,
    *,
    mvno_id: str | None,
    status: str | None,
    province: str | None,
    segment: str | None,
    grade: str | None,
    pattern: str | None,
    after_msisdn: str | None,
    limit: int,
) -> list[NumberRead]:
    visible, mvno_id = ctx.principal.narrow(mvno_id)
    if not visible:
        return []
    query = repository.NumberQuery(
        mvno_id=mvno_id,
        status=status,
        province=province,
        segment=segment,
        grade=grade,
        pattern=patterns.parse(pattern) if pattern is not None else None,
    )
    rows = await repository.search(ctx.session, query, now=ctx.now, after_msisdn=after_msisdn, limit=limit)
    return [to_read(r) for r in rows]


async def changes_since(ctx: RequestContext, msisdn: str, since: date) -> NumberChanges:
    """The holder changed since ``since`` iff the number was cancelled (then possibly reissued) on or
    after that date. Moving between MVNOs in a takeover keeps the holder, so it is not a change."""
    row = await repository.holder_history(ctx.session, msisdn)
    if row is None:
        raise NotFound.of("Number", msisdn)
    ctx.principal.ensure_can_see(row["mvno_id"], "Number", msisdn)
    last: datetime | None = row["last_cancelled_at"]
    # A date from a Chinese platform means that day in China (UTC+8), not in UTC.
    since_start = datetime.combine(since, time.min, tzinfo=CHINA_TIME)
    return NumberChanges(
        msisdn=msisdn,
        since=since,
        changed=last is not None and last >= since_start,
        last_cancelled_at=last,
    )
