"""Gives committed events their feed position (the audit sequencer's way: one at a time, in batches).

A writer inserts its event with ``position`` NULL and never waits for anything. One sequencer at a time
(transaction-scoped advisory lock) takes the committed, unpositioned rows it can see and numbers them
``head + 1, head + 2, …`` in one UPDATE. A row whose transaction commits later is simply numbered by a
later run, above everything served so far: the feed serves positioned rows only, and positions become
visible batch by batch in increasing order, so a consumer can never move its cursor past an event that
will still appear. Positions are plain data, so a cursor survives a dump and restore or a new primary,
and no open transaction anywhere holds the feed back.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.db import Database

FEED_SEQUENCER_LOCK = (2, 1)

_POSITION_BATCH = text(
    """
    WITH head AS (
        SELECT coalesce(max(position), 0) AS last FROM events WHERE position IS NOT NULL
    ), pending AS (
        SELECT id, row_number() OVER (ORDER BY seq) AS n
        FROM (SELECT id, seq FROM events WHERE position IS NULL ORDER BY seq LIMIT :batch) AS p
    )
    UPDATE events e SET position = head.last + pending.n
    FROM head, pending WHERE e.id = pending.id
    """
)


async def position_batch(session: AsyncSession, batch: int) -> int | None:
    """Position up to ``batch`` events in the caller's transaction: how many, or None when another
    sequencer holds the lock (the caller retries shortly, so a wake-up is never lost)."""
    got_lock = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
        {"a": FEED_SEQUENCER_LOCK[0], "b": FEED_SEQUENCER_LOCK[1]},
    )
    if not got_lock:
        return None
    result = await session.execute(_POSITION_BATCH, {"batch": batch})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def position_pending(db: Database, batch: int) -> int | None:
    """Position what is committed now, one transaction per batch (each commit makes its batch visible
    to the feed). Stops at the first short batch; None if another sequencer was busy at the start."""
    total = 0
    while True:
        async with db.transaction() as session:
            positioned = await position_batch(session, batch)
        if positioned is None:
            return None if total == 0 else total
        total += positioned
        if positioned < batch:
            return total
