"""Runs the feed sequencer promptly after commits: the server's lifespan and ``mvno-core sweep --follow``.

Three things wake it: a commit in this process that wrote events (``Database.on_events_committed``,
no round trip), a ``NOTIFY mvno_events`` from another process (one dedicated ``LISTEN`` connection),
and, as a fallback, ``idle_seconds`` without either. Wake-ups that arrive while it runs coalesce into
one more run, so a burst of commits costs a few sequencer runs, not one each.

Under load, commits arrive faster than a run takes, and back-to-back runs would position one or two
events each: a round trip, the lock and an UPDATE per activation, in the server's CPU and the
database's. So after each run the sequencer lets commits gather for ``gather_seconds`` (the first
event after a quiet spell is still positioned at once); the feed's lag grows by at most that much.
Runs go over one dedicated autocommit connection of its own, not the engine's pool: a pool checkout,
its reset and SQLAlchemy's layers cost more CPU than the statement's round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from mvno_core.events.sequencer import POSITION_BATCH_SQL
from mvno_core.kernel.db import EVENTS_CHANNEL, Database

log = logging.getLogger(__name__)

SEQUENCER_APPLICATION_NAME = "mvno-core feed sequencer"  # as pg_stat_activity shows it

# When another process's sequencer holds the lock, its snapshot may predate our commit: try again soon.
_LOCK_BUSY_RETRY_SECONDS = 0.02


class FeedSequencer:
    def __init__(self, db: Database, *, batch: int, idle_seconds: float, gather_seconds: float = 0.0) -> None:
        self.db = db
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.gather_seconds = gather_seconds
        self._wake = asyncio.Event()
        self.listening = asyncio.Event()  # set once LISTEN is in place (tests wait for it)
        self._conninfo = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self.runs = 0  # calls of the positioning function so far (a test counts them)

    def wake(self) -> None:
        self._wake.set()

    def attach(self) -> None:
        """Be woken by this process's own commits (instead of their NOTIFY)."""
        self.db.on_events_committed.append(self.wake)

    def detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.db.on_events_committed.remove(self.wake)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
                self._wake.clear()
                await self.sequence_now()
                if self.gather_seconds:
                    await asyncio.sleep(self.gather_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self._close()

    async def sequence_now(self) -> int:
        """Position everything committed so far; waits out another sequencer rather than skip."""
        while True:
            try:
                positioned = await self._position_pending()
            except Exception:
                log.exception("feed sequencer failed; retrying on the next wake-up")
                await self._close()
                return 0
            if positioned is not None:
                return positioned
            await asyncio.sleep(_LOCK_BUSY_RETRY_SECONDS)

    async def _position_pending(self) -> int | None:
        """``sequencer.position_pending`` over the sequencer's own connection."""
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, application_name=SEQUENCER_APPLICATION_NAME
            )
        total = 0
        while True:
            self.runs += 1
            cursor = await self._connection.execute(POSITION_BATCH_SQL, (self.batch,))
            row = await cursor.fetchone()
            positioned = None if row is None or row[0] is None else int(row[0])
            if positioned is None:
                return None if total == 0 else total
            total += positioned
            if positioned < self.batch:
                return total

    async def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._connection.close()
            self._connection = None

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening.set()
                    self.wake()  # catch up on whatever was committed while nobody listened
                    async for _ in conn.notifies():
                        self.wake()
            except (psycopg.Error, OSError):
                self.listening.clear()
                log.warning("feed listener lost its connection; reconnecting")
                await asyncio.sleep(1.0)
