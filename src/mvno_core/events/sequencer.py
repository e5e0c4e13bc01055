"""Gives committed events their feed position (the audit sequencer's way: one at a time, in batches).

A writer inserts its event with ``position`` NULL and never waits for anything. One sequencer at a time
(transaction-scoped advisory lock) takes the committed, unpositioned rows it can see and numbers them
``head + 1, head + 2, …`` in one UPDATE. A row whose transaction commits later is simply numbered by a
later run, above everything served so far: the feed serves positioned rows only, and positions become
visible batch by batch in increasing order, so a consumer can never move its cursor past an event that
will still appear. Positions are plain data, so a cursor survives a dump and restore or a new primary,
and no open transaction anywhere holds the feed back.

The run is the SQL function ``events_position_pending`` (migration ``0005_ledger``), called in
autocommit: one round trip, so it stays prompt when the server is busy (each await of a busy event loop
waits behind every request in flight).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mvno_core.kernel.db import Database

FEED_SEQUENCER_LOCK = (2, 1)  # taken inside events_position_pending

POSITION_BATCH_SQL = "SELECT events_position_pending(%s)"  # for a plain psycopg connection
_POSITION_BATCH = text("SELECT events_position_pending(:batch)")


async def position_batch(conn: AsyncConnection, batch: int) -> int | None:
    """Position up to ``batch`` events (``conn`` in autocommit): how many, or None when another
    sequencer holds the lock (the caller retries shortly, so a wake-up is never lost)."""
    positioned = await conn.scalar(_POSITION_BATCH, {"batch": batch})
    return None if positioned is None else int(positioned)


async def position_pending(db: Database, batch: int) -> int | None:
    """Position what is committed now, one transaction per batch (each commit makes its batch visible
    to the feed). Stops at the first short batch; None if another sequencer was busy at the start."""
    total = 0
    async with db.engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            positioned = await position_batch(conn, batch)
            if positioned is None:
                return None if total == 0 else total
            total += positioned
            if positioned < batch:
                return total
