"""Safe reissue (二次号码焕新): the sweeper's three steps for numbers whose quarantine has ended.

With at least one active recycling platform, such a number is not released directly (``ops/sweeper``
skips ``cancellations.timers.release_due``). Instead, each sweep:

1. **forms** at most one batch of up to ``recycling_batch_size`` due numbers (they stay ``quarantined``
   with ``reissue_batch_id`` set) and one pending delivery per active platform, in one transaction;
2. **delivers** due deliveries: a signed POST (Standard Webhooks, the webhook worker's signer, URL check,
   client and backoff) of the batch to the platform; a 2xx acknowledges it, anything else schedules a
   retry with backoff. Each delivery is leased (committed) before it is sent, so two sweeps never send
   the same attempt twice, and one platform's failures never hold another's acknowledgement;
3. **releases** ready batches, one transaction each: every delivery acknowledged (or abandoned with its
   deactivated platform) → reason ``acknowledged``; otherwise at ``deadline_at``
   (``recycling_ack_deadline_hours`` after forming) → reason ``deadline``, the still-pending deliveries
   ``expired``. Its numbers become ``available`` with ``reissued_at`` set, each with a ``number.released``
   event.

A delivery killed between the send and the record of its answer is sent again when its lease runs out,
with the same ``webhook-id`` (the batch id), which platforms use to drop duplicates.

Every step is safe under concurrent sweeps: numbers and batches are taken ``FOR UPDATE SKIP LOCKED`` and
changed by conditional updates, so a number joins one batch and a batch is released once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import RowMapping

from mvno_core.audit import journal
from mvno_core.audit.journal import Subject, record_many
from mvno_core.kernel.clock import Clock
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.principal import SYSTEM
from mvno_core.kernel.statements import run, run_all
from mvno_core.numbers import statements as number_moves
from mvno_core.recycling import repository
from mvno_core.recycling.service import secret_context
from mvno_core.subscribers import pii
from mvno_core.webhooks import worker

log = logging.getLogger(__name__)
DELIVERIES_PER_SWEEP = 1000
RELEASES_PER_SWEEP = 100
PAYLOAD_TYPE = "numbers.recycling"


@dataclass(slots=True)
class ReissueReport:
    batches_formed: int = 0
    numbers_batched: int = 0
    deliveries_acknowledged: int = 0
    deliveries_failed: int = 0
    batches_released: int = 0
    numbers_released: int = 0


async def platforms_registered(db: Database) -> bool:
    """Whether ended quarantines go through reissue batches (true) or are released directly (false)."""
    async with db.transaction() as session:
        return await repository.any_active_platform(session)


async def sweep(
    db: Database, clock: Clock, settings: Settings, *, client: httpx.AsyncClient | None = None
) -> ReissueReport:
    report = ReissueReport()
    await form_batch(db, clock, settings, report)
    await deliver_due(db, clock, settings, report, client=client)
    await release_ready(db, clock, settings, report)
    return report


def _context(session: Any, now: datetime, settings: Settings) -> RequestContext:
    return RequestContext(session=session, principal=SYSTEM, request_id=None, now=now, settings=settings)


async def form_batch(db: Database, clock: Clock, settings: Settings, report: ReissueReport) -> None:
    """One batch per sweep (bounded): numbers held, batch row, a delivery per active platform, the
    journal entry, all in one transaction. No active platform or no due number: nothing."""
    async with db.transaction() as session:
        if not await repository.any_active_platform(session):
            return
        ctx = _context(session, clock.now(), settings)
        batch_id = new_id("rcb")
        deadline = ctx.now + timedelta(hours=settings.recycling_ack_deadline_hours)
        pieces = [
            *number_moves.hold_for_reissue(
                name="held", batch_id=batch_id, now=ctx.now, batch=settings.recycling_batch_size
            ),
            *repository.new_batch_pieces(batch_id=batch_id, now=ctx.now, deadline=deadline),
        ]
        formed = await run(session, pieces, repository.NEW_BATCH_RESULT)
        if formed is None:
            return
        batch = await repository.get_batch(session, batch_id)
        assert batch is not None  # written by the statement above, in this transaction
        platform_ids = list(formed["platform_ids"] or [])
        await journal.record(
            ctx,
            action="recycling_batch.created",
            subject=Subject("recycling_batch", batch_id),
            mvno_id=None,
            data={
                "number_count": formed["number_count"],
                "msisdns": [number["msisdn"] for number in batch.numbers],
                "platform_ids": platform_ids,
                "deadline_at": deadline.isoformat(),
            },
            event_type="recycling_batch.created",
            event_data={
                "number_count": formed["number_count"],
                "platform_ids": platform_ids,
                "deadline_at": deadline.isoformat(),
            },
        )
    report.batches_formed += 1
    report.numbers_batched += int(formed["number_count"])


def payload(delivery: RowMapping) -> bytes:
    """Standard Webhooks' ``{type, timestamp, data}``; ``data`` lists the numbers to unbind."""
    document = {
        "type": PAYLOAD_TYPE,
        "timestamp": delivery["created_at"].isoformat(),
        "data": {
            "batch_id": delivery["batch_id"],
            "created_at": delivery["created_at"].isoformat(),
            "deadline_at": delivery["deadline_at"].isoformat(),
            "numbers": [
                {
                    "msisdn": number["msisdn"],
                    "phone_number": "+86" + number["msisdn"],
                    "last_cancelled_at": number["last_cancelled_at"],
                }
                for number in delivery["numbers"]
            ],
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


async def deliver_due(
    db: Database,
    clock: Clock,
    settings: Settings,
    report: ReissueReport,
    *,
    client: httpx.AsyncClient | None = None,
) -> None:
    async with db.transaction() as session:
        due = await repository.due_deliveries(session, clock.now(), DELIVERIES_PER_SWEEP)
    if not due:
        return
    http = client or worker.new_client(settings)
    gate = asyncio.Semaphore(settings.webhook_concurrency)

    async def serve(batch_id: str, platform_id: str) -> None:
        async with gate:
            try:
                await _deliver_one(db, clock, settings, http, batch_id, platform_id, report)
            except Exception:
                log.exception(
                    "recycling delivery failed", extra={"batch_id": batch_id, "platform_id": platform_id}
                )

    try:
        await asyncio.gather(*(serve(row.batch_id, row.platform_id) for row in due))
    finally:
        if client is None:
            await http.aclose()


async def _deliver_one(
    db: Database,
    clock: Clock,
    settings: Settings,
    http: httpx.AsyncClient,
    batch_id: str,
    platform_id: str,
    report: ReissueReport,
) -> None:
    now = clock.now()
    # As long as one send and its bookkeeping can take (the webhook worker's lease).
    lease = now + timedelta(seconds=2 * settings.webhook_timeout_seconds + 30)
    async with db.transaction() as session:
        delivery = await repository.lease_delivery(session, batch_id, platform_id, now, lease)
    if delivery is None:
        return  # another sweep has it, or it is not due any more
    secret = pii.keyring(settings).decrypt(
        bytes(delivery["secret_sealed"]), context=secret_context(platform_id)
    )
    outcome = await worker.post_signed(http, settings, delivery["url"], batch_id, payload(delivery), [secret])
    attempts = int(delivery["attempts"]) + 1
    async with db.transaction() as session:
        done_at = clock.now()
        recorded = await repository.record_attempt(
            session,
            batch_id=batch_id,
            platform_id=platform_id,
            lease=lease,
            acknowledged=outcome.ok,
            now=done_at,
            status_code=outcome.status_code,
            error=outcome.error,
            next_attempt_at=None
            if outcome.ok
            else done_at + timedelta(seconds=worker.backoff_seconds(attempts, settings)),
        )
        if recorded and outcome.ok:
            await journal.record(
                _context(session, done_at, settings),
                action="recycling_batch.acknowledged",
                subject=Subject("recycling_batch", batch_id),
                mvno_id=None,
                data={"platform_id": platform_id, "attempts": attempts, "status_code": outcome.status_code},
                event_type="recycling_batch.acknowledged",
            )
    if recorded:
        if outcome.ok:
            report.deliveries_acknowledged += 1
        else:
            report.deliveries_failed += 1


async def release_ready(db: Database, clock: Clock, settings: Settings, report: ReissueReport) -> None:
    """Release ready batches, one transaction each (bounded per sweep; the next sweep goes on)."""
    for _ in range(RELEASES_PER_SWEEP):
        async with db.transaction() as session:
            ctx = _context(session, clock.now(), settings)
            ready = await repository.ready_batch(session, ctx.now)
            if ready is None:
                return
            expired = await repository.close_batch(session, ready.id, ready.reason, ctx.now)
            released = await run_all(
                session,
                [number_moves.release_reissue_batch(name="released", batch_id=ready.id, now=ctx.now)],
                "SELECT r.msisdn, b.mvno_id FROM released r "
                "JOIN blocks b ON b.prefix = substr(r.msisdn, 1, 7)",
            )
            await record_many(
                ctx,
                [
                    (
                        "number.released",
                        Subject("number", row["msisdn"]),
                        row["mvno_id"],
                        {
                            "msisdn": row["msisdn"],
                            "reason": "quarantine_ended",
                            "reissue_batch_id": ready.id,
                            "reissue_release_reason": ready.reason,
                        },
                    )
                    for row in released
                ],
                event_type="number.released",
            )
            await journal.record(
                ctx,
                action="recycling_batch.released",
                subject=Subject("recycling_batch", ready.id),
                mvno_id=None,
                data={
                    "reason": ready.reason,
                    "numbers_released": len(released),
                    "unacknowledged_platform_ids": expired,
                },
                event_type="recycling_batch.released",
            )
        report.batches_released += 1
        report.numbers_released += len(released)
