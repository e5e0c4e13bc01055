"""Runs the feed sequencer promptly after commits: the server's lifespan and ``mvno-core sweep --follow``.

Three things wake it: a commit in this process that wrote events (``Database.on_events_committed``,
no round trip), a ``NOTIFY mvno_events`` from another process (one dedicated ``LISTEN`` connection),
and, as a fallback, ``idle_seconds`` without either. Wake-ups that arrive while it runs coalesce into
one more run, so a burst of commits costs a few sequencer runs, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy.engine import make_url

from mvno_core.events.sequencer import position_pending
from mvno_core.kernel.db import EVENTS_CHANNEL, Database

log = logging.getLogger(__name__)

# When another process's sequencer holds the lock, its snapshot may predate our commit: try again soon.
_LOCK_BUSY_RETRY_SECONDS = 0.02


class FeedSequencer:
    def __init__(self, db: Database, *, batch: int, idle_seconds: float) -> None:
        self.db = db
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        self.listening = asyncio.Event()  # set once LISTEN is in place (tests wait for it)

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
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def sequence_now(self) -> int:
        """Position everything committed so far; waits out another sequencer rather than skip."""
        while True:
            try:
                positioned = await position_pending(self.db, self.batch)
            except Exception:
                log.exception("feed sequencer failed; retrying on the next wake-up")
                return 0
            if positioned is not None:
                return positioned
            await asyncio.sleep(_LOCK_BUSY_RETRY_SECONDS)

    async def _listen(self) -> None:
        conninfo = make_url(self.db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening.set()
                    self.wake()  # catch up on whatever was committed while nobody listened
                    async for _ in conn.notifies():
                        self.wake()
            except (psycopg.Error, OSError):
                self.listening.clear()
                log.warning("feed listener lost its connection; reconnecting")
                await asyncio.sleep(1.0)
