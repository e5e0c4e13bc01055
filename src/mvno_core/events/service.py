"""The event feed: positioned events in position order.

Positions are gap-free and become visible in increasing order (``events/sequencer.py``), so everything
at or below the highest position a statement sees is visible to it. Each poll scans at most
``feed_scan_window`` positions: a filtered poll (``types=`` or a partner's scope) that matches nothing
still returns a cursor past what it scanned, and the next poll starts there instead of rescanning.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import RowMapping

from mvno_core.events import repository
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
    fetched = await repository.feed_scan(
        ctx.session,
        after=after,
        mvno_id=ctx.principal.mvno_scope(),
        types=types,
        limit=limit,
        scan_window=scan_window,
    )
    upto = int(fetched[0]["upto"]) if fetched else after
    rows = [r for r in fetched if r["id"] is not None]
    # A full page: more may follow right after its last row. Otherwise everything up to the bound
    # was scanned, matching or not, and the next poll starts after it.
    next_position = int(rows[-1]["position"]) if len(rows) == limit else max(after, upto)
    return FeedPage(rows=rows, next_position=next_position)
