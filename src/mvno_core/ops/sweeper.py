"""Timers: ``mvno-core sweep`` and the in-server loop run the same steps.

Each step works in batches, one transaction per batch, so a long backlog never holds one huge transaction
and an interrupted sweep loses nothing (the next run continues where it stopped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mvno_core.audit import sequencer
from mvno_core.audit.checkpoints import AuditKeyring
from mvno_core.cancellations import timers as quarantine
from mvno_core.events import sequencer as feed_sequencer
from mvno_core.kernel import idempotency
from mvno_core.kernel.clock import Clock
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.principal import SYSTEM
from mvno_core.lines import timers as line_timers
from mvno_core.lines.timers import TimerReport
from mvno_core.recycling import reissue
from mvno_core.recycling.reissue import ReissueReport
from mvno_core.reservations import service as reservations
from mvno_core.subscribers import retention
from mvno_core.takeovers import worker as takeovers
from mvno_core.webhooks import worker as webhook_worker

log = logging.getLogger(__name__)
LINE_TIMER_BATCH = 500
PURGE_BATCH = 500
QUARANTINE_BATCH = 1000
TAKEOVER_BATCHES_PER_SWEEP = 200


@dataclass(slots=True)
class SweepReport:
    reservations_expired: int = 0
    audit_linked: int = 0
    events_positioned: int = 0
    idempotency_pruned: int = 0
    numbers_released: int = 0
    takeover_batches: int = 0
    webhook_deliveries_pruned: int = 0
    errors: list[str] = field(default_factory=list)
    line_timers: TimerReport = field(default_factory=TimerReport)
    identities_purged: int = 0
    reissue: ReissueReport = field(default_factory=ReissueReport)


async def sweep_once(
    db: Database, clock: Clock, settings: Settings, *, keyring: AuditKeyring | None = None
) -> SweepReport:
    report = SweepReport()
    keyring = keyring or AuditKeyring(settings.signing_key_path())

    async def drain(step: Callable[[RequestContext], Awaitable[int]], batch: int) -> int:
        """Run ``step`` one transaction per batch until a batch comes back short."""
        total = 0
        while True:
            async with db.transaction() as session:
                ctx = RequestContext(
                    session=session, principal=SYSTEM, request_id=None, now=clock.now(), settings=settings
                )
                done = await step(ctx)
            total += done
            if done < batch:
                return total

    async def line_timer_batch(ctx: RequestContext) -> int:
        done = await line_timers.run_due(ctx, batch=LINE_TIMER_BATCH)
        report.line_timers.add(done)
        return done.busiest

    report.reservations_expired = await drain(lambda ctx: reservations.expire_due(ctx, batch=1000), 1000)
    await drain(line_timer_batch, LINE_TIMER_BATCH)
    # With a recycling platform registered, ended quarantines wait in reissue batches until the
    # platforms acknowledged them or a deadline passed (recycling/reissue.py); without one, released here.
    if not await reissue.platforms_registered(db):
        report.numbers_released = await drain(
            lambda ctx: quarantine.release_due(ctx, batch=QUARANTINE_BATCH), QUARANTINE_BATCH
        )
    report.reissue = await reissue.sweep(db, clock, settings)
    report.numbers_released += report.reissue.numbers_released
    # Running takeovers continue here, batch by batch (each its own transaction), from their cursor;
    # bounded, so a huge one cannot hold back the other timers (the next sweep goes on).
    report.takeover_batches = await takeovers.run_pending(
        db, clock, settings, max_batches=TAKEOVER_BATCHES_PER_SWEEP
    )
    report.identities_purged = await drain(
        lambda ctx: retention.purge_expired(ctx, batch=PURGE_BATCH), PURGE_BATCH
    )
    async with db.transaction() as session:
        report.idempotency_pruned = await idempotency.prune_expired(session, clock.now())
    report.webhook_deliveries_pruned = await webhook_worker.prune_log(db, clock.now(), settings)
    # Sequencing last, so the audit rows and events written above are linked and positioned in the
    # same sweep (the feed's listener usually got there first; this is the fallback). Then a signed
    # checkpoint of the new chain head.
    report.events_positioned = await feed_sequencer.position_pending(db, settings.feed_sequencer_batch) or 0
    report.audit_linked = await sequencer.link_pending(
        db, settings.audit_sequencer_batch, keyring=keyring, clock=clock
    )
    return report


async def run_forever(
    db: Database, clock: Clock, settings: Settings, *, keyring: AuditKeyring | None = None
) -> None:
    """The in-server timer loop; an error in one round is logged and the loop goes on."""
    keyring = keyring or AuditKeyring(settings.signing_key_path())
    while True:
        try:
            report = await sweep_once(db, clock, settings, keyring=keyring)
            if report.reservations_expired or report.audit_linked:
                log.debug(
                    "sweep",
                    extra={
                        "reservations_expired": report.reservations_expired,
                        "audit_linked": report.audit_linked,
                    },
                )
        except Exception:
            log.exception("sweep failed; retrying next round")
        await asyncio.sleep(settings.sweep_interval_seconds)
