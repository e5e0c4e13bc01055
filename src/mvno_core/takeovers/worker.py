"""Runs takeovers: every ``running`` one, batch by batch, one transaction per batch.

Called by the sweeper (``mvno-core sweep`` and the in-server loop) and kicked right after a takeover
starts; a worker that dies mid-way leaves the takeover ``running`` at its last committed batch, and the
next call continues from there. The rest of the service keeps serving: a batch locks only the rows it
moves, for the length of one batch.
"""

from __future__ import annotations

import logging

from mvno_core.kernel.clock import Clock
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.principal import SYSTEM
from mvno_core.takeovers import service

log = logging.getLogger(__name__)


async def run_pending(
    db: Database,
    clock: Clock,
    settings: Settings,
    *,
    takeover_id: str | None = None,
    max_batches: int | None = None,
) -> int:
    """Run batches until no running takeover is left unlocked (or ``max_batches``); returns how many."""
    batches = 0
    while max_batches is None or batches < max_batches:
        async with db.transaction() as session:
            ctx = RequestContext(
                session=session, principal=SYSTEM, request_id=None, now=clock.now(), settings=settings
            )
            ran = await service.run_batch(ctx, takeover_id)
        if ran is None:
            break
        batches += 1
    return batches


async def kick(db: Database, clock: Clock, settings: Settings, takeover_id: str) -> None:
    """Run a just-started takeover now rather than at the next sweep (errors: the sweep retries)."""
    try:
        await run_pending(db, clock, settings, takeover_id=takeover_id)
    except Exception:
        log.exception("takeover %s: batch failed; the sweeper resumes it", takeover_id)
